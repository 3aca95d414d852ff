//! Generates the control plane's API client from the committed OpenAPI document
//! (`openapi/openapi.json`) with progenitor, into `$OUT_DIR/codegen.rs`.
//!
//! The OAuth protocol's operations are left out: the pages a browser is sent to
//! (`/oauth/authorize`, `/oauth/device`, their approvals, answering HTML) and the endpoints that
//! answer RFC 6749 errors beside the API's own (`/oauth/token`, `/oauth/device_authorization`).
//! The CLI opens the former in a browser and speaks to the latter as any OAuth client does
//! (`src/oauth.rs`); progenitor needs one error shape an operation.

use std::env;
use std::fs::File;
use std::path::Path;

use serde_json::Value;

/// Whether `operation` belongs to the OAuth protocol: it answers a browser page, or errors of
/// more than one shape.
fn oauth_protocol(operation: &Value) -> bool {
    let Some(responses) = operation["responses"].as_object() else {
        return false;
    };
    let mut error_shapes = std::collections::BTreeSet::new();
    for (status, response) in responses {
        let Some(content) = response["content"].as_object() else {
            continue;
        };
        for (content_type, media) in content {
            if content_type.starts_with("text/html") {
                return true;
            }
            if !status.starts_with('2') {
                error_shapes.insert(media["schema"].to_string());
            }
        }
    }
    error_shapes.len() > 1
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = env::var("CARGO_MANIFEST_DIR")?;
    let document = Path::new(&manifest).join("../openapi/openapi.json");
    println!("cargo:rerun-if-changed={}", document.display());
    let mut spec: Value = serde_json::from_reader(File::open(&document)?)?;
    if let Some(paths) = spec["paths"].as_object_mut() {
        for item in paths.values_mut() {
            if let Some(item) = item.as_object_mut() {
                item.retain(|_, operation| !oauth_protocol(operation));
            }
        }
        paths.retain(|_, item| item.as_object().is_some_and(|item| !item.is_empty()));
    }
    let spec: openapiv3::OpenAPI = serde_json::from_value(spec)?;
    let tokens = progenitor::Generator::default().generate_tokens(&spec)?;
    let content = prettyplease::unparse(&syn::parse2(tokens)?);
    std::fs::write(Path::new(&env::var("OUT_DIR")?).join("codegen.rs"), content)?;
    Ok(())
}
