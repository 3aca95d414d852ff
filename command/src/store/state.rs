//! An aggregate's current state, folded from its events (for decisions a command handler makes
//! before choosing a command, such as which email a user's provider verified).

use cqrs_es::Aggregate;
use sqlx::PgPool;

use super::read::aggregate_events;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event {position} of {aggregate} cannot be read: {reason}")]
    Malformed {
        aggregate: String,
        position: i64,
        reason: String,
    },
}

pub async fn load_state<A: Aggregate>(pool: &PgPool, id: &str) -> Result<A, LoadError> {
    let mut state = A::default();
    for event in aggregate_events(pool, A::TYPE, id, 1, i64::MAX).await? {
        let payload: A::Event =
            serde_json::from_value(event.payload).map_err(|e| LoadError::Malformed {
                aggregate: format!("{}/{id}", A::TYPE),
                position: event.position,
                reason: e.to_string(),
            })?;
        state.apply(payload);
    }
    Ok(state)
}
