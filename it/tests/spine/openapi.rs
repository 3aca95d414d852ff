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

/// Operations anyone may call: they are how a session starts.
const PUBLIC: &[(&str, &str)] = &[
    // The sign-in page lists the providers to sign in with.
    ("get", "/auth/providers"),
    ("post", "/auth/login/{provider}"),
    ("get", "/auth/login/{provider}/browser"),
    ("get", "/auth/callback/{provider}"),
    ("post", "/auth/refresh"),
    // Takes the bearer token or the cookies itself, so an expired session can still sign out.
    ("post", "/auth/logout"),
    // The OIDC provider's discovery document and keys, for the vClusters' API servers.
    ("get", "/.well-known/openid-configuration"),
    ("get", "/.well-known/jwks.json"),
    // Public clients authenticate with their PKCE verifier or refresh token.
    ("post", "/oauth/token"),
    // Machines without a browser start the device flow before anyone signs in.
    ("post", "/oauth/device_authorization"),
];

#[test]
fn every_operation_but_signing_in_requires_a_session_and_api_posts_take_an_idempotency_key() {
    let spec: serde_json::Value = serde_json::from_str(&hexabase::api::spec()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    for (path, operations) in paths {
        assert!(
            path.starts_with("/api/v1/")
                || path.starts_with("/auth/")
                || path.starts_with("/.well-known/")
                || path.starts_with("/oauth/"),
            "{path}"
        );
        for (method, operation) in operations.as_object().unwrap() {
            let security: Vec<String> = operation["security"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .flat_map(|s| {
                    s.as_object()
                        .cloned()
                        .unwrap_or_default()
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .collect();
            if PUBLIC.contains(&(method.as_str(), path.as_str())) {
                assert!(security.is_empty(), "{method} {path} is public");
                continue;
            }
            assert!(
                security.len() == 2,
                "{method} {path} must accept the bearer token and the session cookie: {security:?}"
            );
            if method == "post" && path.starts_with("/api/v1/") {
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
