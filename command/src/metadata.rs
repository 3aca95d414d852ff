//! Metadata carried by every event: who caused it, under which request, and when.
//!
//! The event store adds the hash chain on top (see `store::chain`).

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::id::UserId;

pub const ACTOR: &str = "actor";
pub const REQUEST_ID: &str = "request_id";
pub const CORRELATION_ID: &str = "correlation_id";
pub const CAUSATION_ID: &str = "causation_id";
pub const TIME: &str = "time";

#[derive(Debug, Clone)]
pub struct CommandMetadata {
    pub actor: UserId,
    pub request_id: String,
    /// Ties together everything one user action caused, across aggregates and sagas.
    pub correlation_id: String,
    /// The request or event that directly caused this command.
    pub causation_id: String,
    pub time: DateTime<Utc>,
}

impl CommandMetadata {
    /// Metadata for a command issued directly by an HTTP request.
    pub fn for_request(actor: UserId, request_id: String) -> Self {
        Self {
            actor,
            correlation_id: request_id.clone(),
            causation_id: request_id.clone(),
            request_id,
            time: Utc::now(),
        }
    }

    pub fn new_request_id() -> String {
        Uuid::now_v7().to_string()
    }

    pub fn into_map(self) -> HashMap<String, String> {
        HashMap::from([
            (ACTOR.to_owned(), self.actor.to_string()),
            (REQUEST_ID.to_owned(), self.request_id),
            (CORRELATION_ID.to_owned(), self.correlation_id),
            (CAUSATION_ID.to_owned(), self.causation_id),
            (
                TIME.to_owned(),
                self.time.to_rfc3339_opts(SecondsFormat::Micros, true),
            ),
        ])
    }
}
