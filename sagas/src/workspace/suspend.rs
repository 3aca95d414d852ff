//! Suspending and resuming a workspace's cluster (on `WorkspaceSuspensionRequested` and
//! `WorkspaceResumptionRequested`, in order with its other provisioning sagas):
//!
//! * `workspace.suspend`: `suspend-cluster` (the driver stops the control plane, keeping data
//!   and endpoint), then `suspended` records `WorkspaceSuspended`.
//! * `workspace.resume`: `resume-cluster` (the driver starts it again), `ready` (its API
//!   server answers), then `resumed` records `WorkspaceResumed` (status `Ready`, which brings
//!   a reconciliation of whatever changed meanwhile).
//!
//! A workspace being deleted meanwhile is left to its deletion: the steps do nothing. A step
//! that fails for good records `WorkspaceStepFailed`; the workspace stays `Suspending` or
//! `Resuming`, from where an organization admin can ask again either way.

use hexabase_command::workspace::{WorkspaceCommand, WorkspaceStatus};
use serde_json::{json, Value};

use super::{done, driver_error, record, record_step_failure, state, Env, RESUME, SUSPEND};
use crate::engine::{action, Cx, Saga, Step, StepError, StepFuture};

pub struct SuspendWorkspace;
pub struct ResumeWorkspace;

/// The workspace, unless it is being deleted (or gone).
async fn going_on(cx: &Cx<'_, Env>) -> Result<Option<hexabase_command::WorkspaceId>, StepError> {
    let (ws, state) = state(cx).await?;
    Ok(state
        .filter(|s| {
            !matches!(
                s.status,
                WorkspaceStatus::Deleting | WorkspaceStatus::Deleted
            )
        })
        .map(|_| ws))
}

fn skipped() -> Result<Value, StepError> {
    Ok(json!({ "skipped": "the workspace is being deleted" }))
}

async fn suspend_cluster(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let Some(ws) = going_on(cx).await? else {
        return skipped();
    };
    cx.env.driver.suspend(&ws).await.map_err(driver_error)?;
    done()
}

async fn suspended(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    record(cx, WorkspaceCommand::CompleteSuspension).await?;
    done()
}

async fn resume_cluster(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let Some(ws) = going_on(cx).await? else {
        return skipped();
    };
    cx.env.driver.resume(&ws).await.map_err(driver_error)?;
    done()
}

async fn ready(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let Some(ws) = going_on(cx).await? else {
        return skipped();
    };
    cx.env
        .driver
        .wait_ready(&ws, cx.env.ready_timeout)
        .await
        .map_err(driver_error)?;
    done()
}

async fn resumed(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    record(cx, WorkspaceCommand::CompleteResumption).await?;
    done()
}

impl Saga<Env> for SuspendWorkspace {
    fn kind(&self) -> &'static str {
        SUSPEND
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![
            Step {
                name: "suspend-cluster",
                action: action(|cx| Box::pin(suspend_cluster(cx))),
                undo: None,
            },
            Step {
                name: "suspended",
                action: action(|cx| Box::pin(suspended(cx))),
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

impl Saga<Env> for ResumeWorkspace {
    fn kind(&self) -> &'static str {
        RESUME
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![
            Step {
                name: "resume-cluster",
                action: action(|cx| Box::pin(resume_cluster(cx))),
                undo: None,
            },
            Step {
                name: "ready",
                action: action(|cx| Box::pin(ready(cx))),
                undo: None,
            },
            Step {
                name: "resumed",
                action: action(|cx| Box::pin(resumed(cx))),
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
