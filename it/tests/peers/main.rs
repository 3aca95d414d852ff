//! Smoke tests proving each test peer is the real program.

mod identity;
mod kube;
mod stripe;
mod workspace_tokens;
