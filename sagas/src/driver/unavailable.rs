//! The driver of a worker whose configured driver could not start (its programs missing, its
//! state directory unwritable): the worker keeps relaying and projecting, and every saga step
//! that needs a cluster fails for good with the reason, which the workspace's status shows.

use std::time::Duration;

use async_trait::async_trait;
use hexabase_command::WorkspaceId;
use tokio_util::sync::CancellationToken;

use super::{ClusterDriver, ClusterSpec, DriverError, Endpoint};

pub struct Unavailable {
    name: &'static str,
    reason: String,
}

impl Unavailable {
    pub fn new(name: &'static str, reason: String) -> Self {
        Self { name, reason }
    }

    fn refuse<T>(&self) -> Result<T, DriverError> {
        Err(DriverError::Permanent(format!(
            "the `{}` cluster driver cannot run: {}",
            self.name, self.reason
        )))
    }
}

#[async_trait]
impl ClusterDriver for Unavailable {
    fn name(&self) -> &'static str {
        self.name
    }

    fn runs_controllers(&self) -> bool {
        false
    }

    async fn create(&self, _spec: &ClusterSpec) -> Result<(), DriverError> {
        self.refuse()
    }

    async fn wait_ready(&self, _: &WorkspaceId, _: Duration) -> Result<(), DriverError> {
        self.refuse()
    }

    async fn endpoint(&self, _: &WorkspaceId) -> Result<Endpoint, DriverError> {
        self.refuse()
    }

    async fn admin_client(&self, _: &WorkspaceId) -> Result<kube::Client, DriverError> {
        self.refuse()
    }

    async fn delete(&self, _: &WorkspaceId) -> Result<(), DriverError> {
        self.refuse()
    }

    async fn suspend(&self, _: &WorkspaceId) -> Result<(), DriverError> {
        self.refuse()
    }

    async fn resume(&self, _: &WorkspaceId) -> Result<(), DriverError> {
        self.refuse()
    }

    async fn supervise(&self, shutdown: CancellationToken) {
        shutdown.cancelled().await
    }
}
