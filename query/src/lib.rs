//! Read side: queries over the read models, shaped for the API's reads.
//!
//! Everything here reads tables written by projectors (never the event store directly, except to
//! resolve a read-your-writes position), with bound parameters only.

pub mod audit;
pub mod billing;
pub mod consistency;
pub mod nodes;
pub mod organization;
pub mod page;
pub mod read_model;
pub mod user;
pub mod workspace;

pub use page::Page;
