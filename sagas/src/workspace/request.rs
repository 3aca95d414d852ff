//! Making a workspace's request whole (on the organization's `WorkspaceAttached`): a workspace
//! is requested in two steps — the organization records it (deciding whether the caller may),
//! then the workspace records itself. Should the second never happen (the request failed after
//! the first, and the request's own undo failed too), this saga detaches the workspace from the
//! organization, so nothing is left half-recorded:
//!
//! 1. `confirm`: once the request has had its moment, the workspace exists — or the
//!    organization records `WorkspaceDetached`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::AggregateError;
use hexabase_command::metadata::CommandMetadata;
use hexabase_command::organization::OrganizationCommand;
use hexabase_command::store::load_state;
use hexabase_command::workspace::Workspace;
use hexabase_command::{OrganizationId, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Env, CONFIRM};
use crate::engine::{action, Cx, Saga, Step, StepError};

/// How long after its attachment a workspace's own request may still be on its way.
const GRACE: Duration = Duration::from_secs(10);

pub struct ConfirmWorkspace;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Params {
    pub workspace_id: WorkspaceId,
    pub attached_at: DateTime<Utc>,
}

async fn confirm(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let params: Params = cx.params()?;
    let org = OrganizationId::parse(&cx.saga.aggregate_id)
        .map_err(|e| StepError::Permanent(e.to_string()))?;
    let due = params.attached_at + chrono::Duration::from_std(GRACE).unwrap_or_default();
    if let Ok(wait) = (due - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let workspace: Workspace = load_state(&cx.env.pool, params.workspace_id.as_str())
        .await
        .map_err(|e| StepError::Transient(format!("cannot read the workspace: {e}")))?;
    if workspace.organization().is_some() {
        return Ok(json!({ "requested": true }));
    }
    let metadata = CommandMetadata::for_saga(&cx.saga.id, cx.saga.correlation_id.as_deref());
    let detach = OrganizationCommand::DetachWorkspace {
        workspace_id: params.workspace_id.clone(),
    };
    match cx
        .env
        .organizations
        .execute_with_metadata(org.as_str(), detach, metadata)
        .await
    {
        Ok(()) => {
            tracing::warn!(workspace = %params.workspace_id, organization = %org, "a workspace whose request never completed was detached");
            Ok(json!({ "requested": false, "detached": true }))
        }
        Err(AggregateError::UserError(e)) => Err(StepError::Permanent(e.to_string())),
        Err(e) => Err(StepError::Transient(e.to_string())),
    }
}

impl Saga<Env> for ConfirmWorkspace {
    fn kind(&self) -> &'static str {
        CONFIRM
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![Step {
            name: "confirm",
            action: action(|cx| Box::pin(confirm(cx))),
            undo: None,
        }]
    }
}
