#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = hexabase::api::spec();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is out of date: regenerate it with \
         `cargo run -q -- openapi > openapi/openapi.json` and commit it"
    );
}

#[test]
fn every_api_operation_requires_a_bearer_token_and_posts_take_an_idempotency_key() {
    let spec: serde_json::Value = serde_json::from_str(&hexabase::api::spec()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    for (path, operations) in paths {
        assert!(path.starts_with("/api/v1/"), "{path}");
        for (method, operation) in operations.as_object().unwrap() {
            let security = operation["security"].as_array().map(Vec::len).unwrap_or(0);
            assert!(security > 0, "{method} {path} has no security requirement");
            if method == "post" {
                let params = operation["parameters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
                    "POST {path} does not document Idempotency-Key"
                );
            }
        }
    }
}
