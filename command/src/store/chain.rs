//! The per-aggregate hash chain.
//!
//! `hash(n) = sha256(canonical([hash(n-1), type, id, sequence, event_type, version, payload,
//! metadata without the hash]))`, hex-encoded, with `hash(0) = ""`. JSON is canonicalised (object
//! keys sorted, no whitespace) so the hash does not depend on how Postgres or serde order keys.

use ring::digest::{digest, SHA256};
use serde_json::Value;

pub const HASH_KEY: &str = "hash";

pub struct ChainInput<'a> {
    pub prev_hash: &'a str,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub payload: &'a Value,
    pub metadata: &'a Value,
}

pub fn event_hash(input: &ChainInput<'_>) -> String {
    let mut text = Vec::with_capacity(512);
    text.push(b'[');
    for part in [input.prev_hash, input.aggregate_type, input.aggregate_id] {
        json(&mut text, part);
        text.push(b',');
    }
    json(&mut text, &input.sequence);
    for part in [input.event_type, input.event_version] {
        text.push(b',');
        json(&mut text, part);
    }
    text.push(b',');
    canonical(input.payload, &mut text, None);
    text.push(b',');
    canonical(input.metadata, &mut text, Some(HASH_KEY));
    text.push(b']');
    hex(digest(&SHA256, &text).as_ref())
}

/// `value` as compact JSON, the same text `serde_json` prints for it.
fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Strings, numbers and the other scalars always serialise, and writing into a vector
    // cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Objects with their keys sorted (at the top level without `skip`), everything else compact.
fn canonical(value: &Value, out: &mut Vec<u8>, skip: Option<&str>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map
                .iter()
                .filter(|(key, _)| Some(key.as_str()) != skip)
                .collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json(out, key.as_str());
                out.push(b':');
                canonical(item, out, None);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out, None);
            }
            out.push(b']');
        }
        scalar => json(out, scalar),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input<'a>(payload: &'a Value, metadata: &'a Value) -> ChainInput<'a> {
        ChainInput {
            prev_hash: "",
            aggregate_type: "Organization",
            aggregate_id: "org-1",
            sequence: 1,
            event_type: "OrganizationCreated",
            event_version: "1",
            payload,
            metadata,
        }
    }

    #[test]
    fn key_order_and_the_hash_itself_do_not_matter() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        let m1 = json!({"actor": "u"});
        let m2 = json!({"actor": "u", "hash": "whatever"});
        assert_eq!(event_hash(&input(&a, &m1)), event_hash(&input(&b, &m2)));
    }

    #[test]
    fn any_change_changes_the_hash() {
        let p = json!({"name": "Acme"});
        let m = json!({"actor": "u"});
        let base = event_hash(&input(&p, &m));
        assert_eq!(base.len(), 64);
        assert_ne!(base, event_hash(&input(&json!({"name": "Acme2"}), &m)));
        assert_ne!(base, event_hash(&input(&p, &json!({"actor": "v"}))));
        let mut other = input(&p, &m);
        other.prev_hash = "00";
        assert_ne!(base, event_hash(&other));
        let mut other = input(&p, &m);
        other.sequence = 2;
        assert_ne!(base, event_hash(&other));
    }

    /// The chain's text as first defined (built from `Value`s printed one by one), which every
    /// hash already in a store was computed from.
    fn reference_hash(input: &ChainInput<'_>) -> String {
        fn canonical(value: &Value, out: &mut String) {
            match value {
                Value::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    out.push('{');
                    for (i, key) in keys.into_iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&Value::from(key.as_str()).to_string());
                        out.push(':');
                        canonical(&map[key], out);
                    }
                    out.push('}');
                }
                Value::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        canonical(item, out);
                    }
                    out.push(']');
                }
                scalar => out.push_str(&scalar.to_string()),
            }
        }
        let mut metadata = input.metadata.clone();
        if let Value::Object(map) = &mut metadata {
            map.remove(HASH_KEY);
        }
        let mut text = String::from("[");
        for (i, part) in [
            Value::from(input.prev_hash),
            Value::from(input.aggregate_type),
            Value::from(input.aggregate_id),
            Value::from(input.sequence),
            Value::from(input.event_type),
            Value::from(input.event_version),
        ]
        .iter()
        .chain([input.payload, &metadata])
        .enumerate()
        {
            if i > 0 {
                text.push(',');
            }
            canonical(part, &mut text);
        }
        text.push(']');
        digest(&SHA256, text.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn hashes_already_stored_still_match() {
        let payload = json!({
            "OrganizationRenamed": {
                "name": "Ac\"me\\ \u{1}\n\u{e9}\u{1F600}",
                "z": [1, -2, 3.5, 1e300, null, true, false, {"b": [], "a": {}}],
                "a": {"y": "\t", "x": 0.1},
            }
        });
        let metadata = json!({"actor": "hxb-usr-1", "time": "2026-01-01T00:00:00Z", "hash": "x"});
        let mut chained = input(&payload, &metadata);
        chained.prev_hash = "9f\"ab";
        chained.sequence = i64::MAX;
        assert_eq!(event_hash(&chained), reference_hash(&chained));
        let scalar = json!("just a string");
        let listed = json!([{"hash": 1, "b": 2}]);
        let plain = input(&scalar, &listed);
        assert_eq!(event_hash(&plain), reference_hash(&plain));
        assert_eq!(event_hash(&plain).len(), 64);
    }
}
