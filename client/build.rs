//! Generates the control plane's API client from the committed OpenAPI document
//! (`openapi/openapi.json`) with progenitor, into `$OUT_DIR/codegen.rs`.

use std::env;
use std::fs::File;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = env::var("CARGO_MANIFEST_DIR")?;
    let document = Path::new(&manifest).join("../openapi/openapi.json");
    println!("cargo:rerun-if-changed={}", document.display());
    let spec: openapiv3::OpenAPI = serde_json::from_reader(File::open(&document)?)?;
    let tokens = progenitor::Generator::default().generate_tokens(&spec)?;
    let content = prettyplease::unparse(&syn::parse2(tokens)?);
    std::fs::write(Path::new(&env::var("OUT_DIR")?).join("codegen.rs"), content)?;
    Ok(())
}
