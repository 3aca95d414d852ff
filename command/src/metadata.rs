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

/// The actor of what the control plane does on its own (start-up, schedules such as signing-key
/// rotation). It is not a user id, so it is never mistaken for a person.
pub const SYSTEM_ACTOR: &str = "system";

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
        metadata_map(
            self.actor.to_string(),
            self.request_id,
            self.correlation_id,
            self.causation_id,
            self.time,
        )
    }

    /// Metadata of a command a saga issues: the actor is [`SYSTEM_ACTOR`], the correlation id
    /// that of the request whose event started the saga (so its whole story reads together),
    /// the causation the saga (`task-…`).
    pub fn for_saga(saga: &str, correlation_id: Option<&str>) -> HashMap<String, String> {
        let request_id = Self::new_request_id();
        metadata_map(
            SYSTEM_ACTOR.to_owned(),
            request_id.clone(),
            correlation_id.map_or(request_id, str::to_owned),
            saga.to_owned(),
            Utc::now(),
        )
    }

    /// Metadata of a command a saga issues on account of something outside the control plane
    /// (`cause`: a Stripe event's id), within the saga's correlation.
    pub fn for_saga_caused_by(
        cause: &str,
        correlation_id: Option<&str>,
    ) -> HashMap<String, String> {
        let request_id = Self::new_request_id();
        metadata_map(
            SYSTEM_ACTOR.to_owned(),
            request_id.clone(),
            correlation_id.map_or(request_id, str::to_owned),
            cause.to_owned(),
            Utc::now(),
        )
    }

    /// Metadata of a command the control plane issues on its own: the actor is
    /// [`SYSTEM_ACTOR`], `cause` names what triggered it (e.g. `keyring:sessions`), and the
    /// command gets a request id of its own.
    pub fn for_system(cause: &str) -> HashMap<String, String> {
        let request_id = Self::new_request_id();
        metadata_map(
            SYSTEM_ACTOR.to_owned(),
            request_id.clone(),
            request_id,
            cause.to_owned(),
            Utc::now(),
        )
    }
}

fn metadata_map(
    actor: String,
    request_id: String,
    correlation_id: String,
    causation_id: String,
    time: DateTime<Utc>,
) -> HashMap<String, String> {
    HashMap::from([
        (ACTOR.to_owned(), actor),
        (REQUEST_ID.to_owned(), request_id),
        (CORRELATION_ID.to_owned(), correlation_id),
        (CAUSATION_ID.to_owned(), causation_id),
        (
            TIME.to_owned(),
            time.to_rfc3339_opts(SecondsFormat::Micros, true),
        ),
    ])
}
