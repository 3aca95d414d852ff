//! The control plane's API client, generated at build time from `openapi/openapi.json` by
//! progenitor (see `build.rs`): the `Client` with one method per operation, and `types`.

#![allow(
    clippy::all,
    clippy::pedantic,
    dead_code,
    missing_docs,
    unused_imports,
    unused_qualifications
)]

include!(concat!(env!("OUT_DIR"), "/codegen.rs"));
