//! Validated value types: parse, don't validate.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub message: String,
}

impl InvalidValue {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// A display name (organizations, later workspaces): 1–100 characters after trimming, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(InvalidValue::new(field, "must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue::new(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(InvalidValue::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, stored lower-cased so that invitations match regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim().to_ascii_lowercase();
        let invalid = || InvalidValue::new(field, "must be a valid email address");
        if value.len() > Self::MAX_LEN {
            return Err(InvalidValue::new(
                field,
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if local_ok && domain_ok {
            Ok(Self(value))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A group name: 1–63 characters of letters, digits, `-`, `_` and `.`, starting with a letter
/// or digit (it travels in the `groups` claim of kubectl tokens).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        let valid = !raw.is_empty()
            && raw.len() <= 63
            && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidValue::new(
                field,
                "must be 1–63 letters, digits, `-`, `_` or `.`, starting with a letter or digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A DNS-1123 label (Kubernetes namespace and role names): 1–63 lower-case letters, digits and
/// `-`, starting and ending with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DnsLabel(String);

impl DnsLabel {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let valid = !raw.is_empty()
            && raw.len() <= 63
            && raw.starts_with(alnum)
            && raw.ends_with(alnum)
            && raw.chars().all(|c| alnum(c) || c == '-');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidValue::new(
                field,
                "must be a DNS-1123 label: 1–63 lower-case letters, digits and `-`, starting and \
                 ending with a letter or digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("name", "  Acme ").unwrap().as_str(),
            "Acme"
        );
        assert!(DisplayName::parse("name", "   ").is_err());
        assert!(DisplayName::parse("name", &"x".repeat(101)).is_err());
        assert!(DisplayName::parse("name", &"é".repeat(100)).is_ok());
        assert!(DisplayName::parse("name", "a\u{0}b").is_err());
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            Email::parse("email", "Ada@Example.COM").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@-x.com",
            "a..b@example.com",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn group_names_and_dns_labels() {
        assert!(GroupName::parse("name", "Ops.Team_1").is_ok());
        for bad in ["", "-ops", "ops team", &"x".repeat(64)] {
            assert!(GroupName::parse("name", bad).is_err(), "{bad}");
        }
        assert!(DnsLabel::parse("name", "web-frontend-2").is_ok());
        for bad in ["", "Web", "-web", "web-", "web_app", &"a".repeat(64)] {
            assert!(DnsLabel::parse("name", bad).is_err(), "{bad}");
        }
    }
}
