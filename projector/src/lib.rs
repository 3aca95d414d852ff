//! From the event store to the read models.
//!
//! * `relay` publishes outbox rows to JetStream in commit order, de-duplicated by position.
//! * `runner` drives one durable JetStream consumer per projection.
//! * `projection::apply_batch` is the one idempotent apply path, shared by the live runner and
//!   `replay`, which rebuilds a read model from the event store alone.

pub mod audit;
mod billing;
pub mod organization;
mod projection;
pub mod relay;
mod replay;
mod runner;
mod stream;
pub mod user;
pub mod workspace;

use std::sync::Arc;

pub use projection::{apply_batch, Applied, ByPosition, Projection, ProjectionError};
pub use replay::replay;
pub use runner::{consumer_name, run_projection};
pub use stream::EventStream;

/// Every projection the worker runs, by name.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(organization::OrganizationsProjection),
        Arc::new(audit::AuditProjection),
        Arc::new(user::UsersProjection),
        Arc::new(workspace::WorkspacesProjection),
    ]
}

pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}

#[cfg(test)]
mod tests {
    use hexabase_query::read_model;

    // Reads wait on the read models `query` describes while the worker runs the projections
    // listed here: a read model without its projection would keep reads waiting for good.
    #[test]
    fn every_read_model_is_built_by_its_projection() {
        let projections: Vec<&str> = super::all().iter().map(|p| p.name()).collect();
        let models: Vec<&str> = read_model::all().iter().map(|m| m.name).collect();
        assert_eq!(projections, models);
        for model in read_model::all() {
            let projection = super::by_name(model.name).expect("a projection by that name");
            assert_eq!(projection.model(), *model);
        }
    }
}
