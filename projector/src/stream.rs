use std::time::Duration;

use async_nats::jetstream::{self, stream};
use hexabase_command::store::StoredEvent;

/// Where domain events travel on JetStream: one stream, one subject per aggregate
/// (`{prefix}.{AggregateType}.{aggregate-id}`).
#[derive(Debug, Clone)]
pub struct EventStream {
    pub stream: String,
    pub subject_prefix: String,
}

impl EventStream {
    pub fn subject_for(&self, event: &StoredEvent) -> String {
        format!(
            "{}.{}.{}",
            self.subject_prefix, event.aggregate_type, event.aggregate_id
        )
    }

    /// The subjects of one aggregate type's events.
    pub fn subjects_of(&self, aggregate_type: &str) -> String {
        format!("{}.{aggregate_type}.>", self.subject_prefix)
    }

    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    pub async fn ensure(
        &self,
        js: &jetstream::Context,
    ) -> Result<stream::Stream, jetstream::context::CreateStreamError> {
        js.get_or_create_stream(stream::Config {
            name: self.stream.clone(),
            subjects: vec![self.all_subjects()],
            storage: stream::StorageType::File,
            // Re-publishing after a relay crash within this window is dropped by JetStream;
            // beyond it, projections are idempotent anyway.
            duplicate_window: Duration::from_secs(10 * 60),
            ..Default::default()
        })
        .await
    }
}
