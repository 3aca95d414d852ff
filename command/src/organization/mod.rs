//! The Organization aggregate: the billing and management unit that owns workspaces.

mod aggregate;
pub mod billing;
mod commands;
mod events;

pub use aggregate::{Organization, OrganizationError};
pub use billing::{Billing, PaymentState, SubscriptionState};
pub use commands::OrganizationCommand;
pub use events::OrganizationEvent;
