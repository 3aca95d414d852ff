//! The User aggregate: a person who signs in through one or more external identity providers.
//!
//! An identity is the pair (provider, subject) the provider vouches for. The first login
//! registers the user; later logins update what the provider says about them. A second
//! identity joins an account only when the signed-in user links it explicitly — never because
//! two providers report the same email.

mod aggregate;
mod commands;
mod events;

pub use aggregate::{User, UserError};
pub use commands::{ExternalProfile, UserCommand};
pub use events::{Identity, UserEvent};
