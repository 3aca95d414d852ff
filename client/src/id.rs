//! Ids as the control plane makes them (`org-…`, `ws-…`, `grp-…`): a readable prefix and 32
//! lower-case hex digits. Checked before an id names a file or goes into a URL.

/// `arg` is an id with `prefix`.
pub fn is_id(arg: &str, prefix: &str) -> bool {
    arg.strip_prefix(prefix).is_some_and(|suffix| {
        suffix.len() == 32
            && suffix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_prefix_and_32_hex_digits() {
        assert!(is_id("grp-0123456789abcdef0123456789abcdef", "grp-"));
        assert!(!is_id("grp-0123456789abcdef0123456789abcde", "grp-"));
        assert!(!is_id("grp-0123456789ABCDEF0123456789abcdef", "grp-"));
        assert!(!is_id("developers", "grp-"));
        assert!(!is_id("prj-0123456789abcdef0123456789abcdef", "grp-"));
    }
}
