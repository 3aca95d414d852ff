//! Sagas: what the control plane does outside its own database — creating each workspace's
//! cluster, keeping it in step with the workspace's projects, roles and groups, and tearing it
//! down — as durable sequences of idempotent steps whose progress is logged in Postgres, so a
//! killed worker's saga is resumed by another worker or by itself on restart.
//!
//! * `billing`: Stripe customers, webhooks' effects, and suspension for non-payment.
//! * `driver`: the seam between a saga and whatever runs a workspace's cluster (`local`: a
//!   kube-apiserver per workspace on this machine; `vcluster`: the vCluster chart on a host).

pub mod billing;
pub mod driver;
pub mod engine;
pub mod quota;
pub mod triggers;
pub mod workspace;
