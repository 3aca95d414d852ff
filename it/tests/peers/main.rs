//! Smoke tests proving each test peer is the real program.

mod billing;
mod common;
mod crash;
mod hnc;
mod identity;
mod kube;
mod kubectl_login;
mod local_driver;
mod provisioning;
mod stripe;
mod vcluster_driver;
mod workspace_tokens;
