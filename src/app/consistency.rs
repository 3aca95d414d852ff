//! Reading one's own writes: a write answers with its event's position; a read that passes it
//! waits (up to `http.read_wait_ms`) until the read models it reads — and the organization's
//! member list that authorizes it — reflect everything recorded up to there.

use std::time::Duration;

use cqrs_es::Aggregate;
use hexabase_command::organization::Organization;
use hexabase_command::store::StoredEvent;
use hexabase_command::workspace::Workspace;
use hexabase_command::{OrganizationId, WorkspaceId};
use hexabase_projector::{organization as org_projection, workspace as ws_projection};
use hexabase_query::consistency;
use hexabase_query::workspace as ws_query;
use tokio::time::Instant;

use super::App;
use crate::error::Result;

impl App {
    fn read_deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.settings.http.read_wait_ms)
    }

    /// Wait until `projection` has applied the event at `position`; returns that event.
    pub async fn wait_for(&self, projection: &str, position: i64) -> Result<StoredEvent> {
        Ok(consistency::wait_for(&self.pool, projection, position, self.read_deadline()).await?)
    }

    /// Wait until the organization projection reflects every event of `org` recorded at or
    /// before `position` (reads authorize from its member list).
    pub async fn wait_for_organization(&self, org: &OrganizationId, position: i64) -> Result<()> {
        Ok(consistency::wait_for_aggregate(
            &self.pool,
            org_projection::NAME,
            (Organization::TYPE, org.as_str()),
            position,
            self.read_deadline(),
        )
        .await?)
    }

    /// For a read of `projection` that passed `position`: wait for it and, for reads of one
    /// organization, for that organization's member list.
    pub(super) async fn consistent(
        &self,
        projection: &str,
        org: Option<&OrganizationId>,
        position: Option<i64>,
    ) -> Result<()> {
        if let Some(position) = position {
            self.wait_for(projection, position).await?;
            if let Some(org) = org {
                self.wait_for_organization(org, position).await?;
            }
        }
        Ok(())
    }

    /// For a read of a workspace's read models that passed `position`: wait for the workspace
    /// projection to reach it, and for the member list of the organization the event belongs
    /// to (it authorizes workspace reads) to reflect everything recorded up to there.
    pub(super) async fn consistent_workspace(&self, position: Option<i64>) -> Result<()> {
        let Some(position) = position else {
            return Ok(());
        };
        let event = self.wait_for(ws_projection::NAME, position).await?;
        let org = if event.aggregate_type == Organization::TYPE {
            OrganizationId::parse(&event.aggregate_id).ok()
        } else if event.aggregate_type == Workspace::TYPE {
            let ws = WorkspaceId::parse(&event.aggregate_id)?;
            ws_query::get_by_id(&self.pool, &ws)
                .await?
                .and_then(|row| OrganizationId::parse(&row.org_id).ok())
        } else {
            None
        };
        if let Some(org) = org {
            self.wait_for_organization(&org, position).await?;
        }
        Ok(())
    }
}
