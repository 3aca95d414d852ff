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
    let mut metadata = input.metadata.clone();
    if let Value::Object(map) = &mut metadata {
        map.remove(HASH_KEY);
    }
    let mut text = String::new();
    text.push('[');
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
    hex(digest(&SHA256, text.as_bytes()).as_ref())
}

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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
}
