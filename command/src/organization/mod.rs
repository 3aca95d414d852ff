//! The Organization aggregate: the billing and management unit that owns workspaces.

mod aggregate;
mod commands;
mod events;

pub use aggregate::{Organization, OrganizationError};
pub use commands::OrganizationCommand;
pub use events::OrganizationEvent;
