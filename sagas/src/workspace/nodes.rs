//! Dedicated nodes on the host (on `DedicatedNodesRequested` and `DedicatedNodeReleased`),
//! level-triggered like `reconcile`: one run answers every request not answered yet and gives
//! back whatever the workspace no longer has.
//!
//! 1. `claim`: for each pending request, the driver labels and taints that many free nodes as
//!    the workspace's pool and `DedicatedNodesAssigned` records them; too few free records
//!    `DedicatedNodesRequestFailed` with the reason (and claims nothing).
//! 2. `release`: nodes labelled for the workspace that it no longer has go back to the pool.
//! 3. `cluster`: a Ready workspace's cluster follows (the `vcluster` driver upgrades the
//!    release to sync only the pool's nodes and to tolerate its taint, or back).
//!
//! A run that fails for good gives back what it claimed and did not record, and refuses the
//! requests still pending with the reason.

use std::collections::BTreeSet;

use hexabase_command::workspace::{WorkspaceCommand, WorkspaceStatus};
use serde_json::{json, Value};

use super::{cluster_spec, driver_error, record, state, Env, NODES};
use crate::driver::DriverError;
use crate::engine::{action, Cx, Saga, Step, StepError};

pub struct DedicateNodes;

async fn claim(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let (ws, state) = state(cx).await?;
    let Some(state) = state else {
        return Ok(json!({ "skipped": "the workspace does not exist" }));
    };
    if matches!(
        state.status,
        WorkspaceStatus::Deleting | WorkspaceStatus::Deleted
    ) {
        return Ok(json!({ "skipped": "the workspace is being deleted" }));
    }
    let mut answered = Vec::new();
    for (request, count) in &state.node_requests {
        let count_usize = usize::try_from(*count).unwrap_or(usize::MAX);
        let command = match cx
            .env
            .driver
            .claim_nodes(&ws, request.as_str(), count_usize)
            .await
        {
            Ok(nodes) => WorkspaceCommand::AssignDedicatedNodes {
                request: request.clone(),
                nodes,
            },
            Err(DriverError::Permanent(reason)) => WorkspaceCommand::FailDedicatedNodes {
                request: request.clone(),
                reason,
            },
            Err(e) => return Err(driver_error(e)),
        };
        record(cx, command).await?;
        answered.push(request.clone());
    }
    Ok(json!({ "answered": answered }))
}

/// Give back every node labelled for the workspace that its record does not name.
async fn release(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let (ws, state) = state(cx).await?;
    let keep: BTreeSet<String> = match state {
        Some(s)
            if !matches!(
                s.status,
                WorkspaceStatus::Deleting | WorkspaceStatus::Deleted
            ) =>
        {
            s.dedicated_nodes
        }
        _ => BTreeSet::new(),
    };
    cx.env
        .driver
        .release_nodes(&ws, &keep)
        .await
        .map_err(driver_error)?;
    Ok(json!({ "kept": keep }))
}

async fn cluster(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let (_, state) = state(cx).await?;
    if state.is_none_or(|s| s.status != WorkspaceStatus::Ready) {
        return Ok(json!({ "skipped": "the workspace is not Ready" }));
    }
    let spec = cluster_spec(cx).await?;
    cx.env.driver.create(&spec).await.map_err(driver_error)?;
    Ok(json!({ "dedicated": spec.dedicated }))
}

impl Saga<Env> for DedicateNodes {
    fn kind(&self) -> &'static str {
        NODES
    }

    fn coalesces(&self) -> bool {
        true
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![
            Step {
                name: "claim",
                action: action(|cx| Box::pin(claim(cx))),
                // What was claimed and not recorded goes back.
                undo: Some(action(|cx| Box::pin(release(cx)))),
            },
            Step {
                name: "release",
                action: action(|cx| Box::pin(release(cx))),
                undo: None,
            },
            Step {
                name: "cluster",
                action: action(|cx| Box::pin(cluster(cx))),
                undo: None,
            },
        ]
    }

    fn unwinding<'a>(
        &'a self,
        cx: &'a Cx<'a, Env>,
        step: &'a str,
        reason: &'a str,
    ) -> crate::engine::StepFuture<'a> {
        Box::pin(super::record_step_failure(cx, step, reason))
    }

    /// The requests still pending are answered: refused, with the reason.
    fn failed<'a>(&'a self, cx: &'a Cx<'a, Env>, reason: &'a str) -> crate::engine::StepFuture<'a> {
        Box::pin(async move {
            let (_, state) = state(cx).await?;
            for request in state
                .map(|s| s.node_requests)
                .unwrap_or_default()
                .into_keys()
            {
                let command = WorkspaceCommand::FailDedicatedNodes {
                    request,
                    reason: reason.to_owned(),
                };
                record(cx, command).await?;
            }
            Ok(Value::Null)
        })
    }
}
