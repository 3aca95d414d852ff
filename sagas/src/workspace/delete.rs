//! Deleting a workspace (on `WorkspaceDeletionRequested`), after any provisioning saga of the
//! workspace has stopped (a workspace's sagas run one at a time, in order), so nothing is left
//! half-built:
//!
//! 1. `delete-cluster`: the driver removes the cluster and all its data (with it go the
//!    namespaces, quotas and RBAC provisioning made); a cluster never made is already gone.
//! 2. `release-nodes`: its dedicated nodes go back to the host's free pool.
//! 3. `deleted`: record `WorkspaceDeleted` (status `Deleted`).
//! 4. `detach`: the organization lets go of it (`WorkspaceDetached`), so it no longer holds the
//!    organization's deletion back.

use cqrs_es::AggregateError;
use hexabase_command::metadata::CommandMetadata;
use hexabase_command::organization::OrganizationCommand;
use hexabase_command::workspace::WorkspaceCommand;
use serde_json::Value;

use super::{done, driver_error, record, record_step_failure, state, workspace_of, Env, DELETE};
use crate::engine::{action, Cx, Saga, Step, StepError, StepFuture};

pub struct DeleteWorkspace;

async fn delete_cluster(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let ws = workspace_of(cx)?;
    cx.env.driver.delete(&ws).await.map_err(driver_error)?;
    done()
}

async fn release_nodes(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let ws = workspace_of(cx)?;
    cx.env
        .driver
        .release_nodes(&ws, &std::collections::BTreeSet::new())
        .await
        .map_err(driver_error)?;
    done()
}

async fn deleted(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    record(cx, WorkspaceCommand::CompleteDeletion).await?;
    done()
}

async fn detach(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let ws = workspace_of(cx)?;
    let (_, state) = state(cx).await?;
    let Some(state) = state else {
        return done();
    };
    let metadata = CommandMetadata::for_saga(&cx.saga.id, cx.saga.correlation_id.as_deref());
    let command = OrganizationCommand::DetachWorkspace { workspace_id: ws };
    match cx
        .env
        .organizations
        .execute_with_metadata(state.organization.as_str(), command, metadata)
        .await
    {
        Ok(()) => done(),
        Err(AggregateError::UserError(e)) => Err(StepError::Permanent(e.to_string())),
        Err(e) => Err(StepError::Transient(e.to_string())),
    }
}

impl Saga<Env> for DeleteWorkspace {
    fn kind(&self) -> &'static str {
        DELETE
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![
            Step {
                name: "delete-cluster",
                action: action(|cx| Box::pin(delete_cluster(cx))),
                undo: None,
            },
            Step {
                name: "release-nodes",
                action: action(|cx| Box::pin(release_nodes(cx))),
                undo: None,
            },
            Step {
                name: "deleted",
                action: action(|cx| Box::pin(deleted(cx))),
                undo: None,
            },
            Step {
                name: "detach",
                action: action(|cx| Box::pin(detach(cx))),
                undo: None,
            },
        ]
    }

    fn unwinding<'a>(
        &'a self,
        cx: &'a Cx<'a, Env>,
        step: &'a str,
        reason: &'a str,
    ) -> StepFuture<'a> {
        Box::pin(record_step_failure(cx, step, reason))
    }
}
