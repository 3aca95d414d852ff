//! Keeping a ready workspace's cluster in step with the workspace (on the events that change
//! its projects, roles, assignments, group names or plan, and on the maintenance pass): one
//! step that reads the workspace's current state, applies every object it asks for and prunes
//! the managed objects it no longer names. Level-triggered, so the order and number of
//! triggers do not matter, and a pending run is merged into the one running before it.

use hexabase_command::workspace::WorkspaceStatus;
use serde_json::{json, Value};

use super::objects::desired;
use super::{cluster_spec, driver_error, state, state_and_quota, Env, RECONCILE};
use crate::engine::{action, Cx, Saga, Step, StepError};

pub struct ReconcileWorkspace;

async fn reconcile(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let (_, state) = state(cx).await?;
    // Before provisioning is done, its own steps apply the state; after deletion there is no
    // cluster.
    if state.is_none_or(|s| s.status != WorkspaceStatus::Ready) {
        return Ok(json!({ "skipped": "the workspace is not Ready" }));
    }
    // The cluster itself follows the workspace too (a plan change upgrades a vCluster's
    // release); unchanged, this changes nothing.
    let spec = cluster_spec(cx).await?;
    cx.env.driver.create(&spec).await.map_err(driver_error)?;
    let (ws, state, quota) = state_and_quota(cx).await?;
    let objects = desired(&state, &quota, &cx.env.layout);
    let client = cx
        .env
        .driver
        .admin_client(&ws)
        .await
        .map_err(driver_error)?;
    let applied = super::apply::apply(&client, &objects).await?;
    let finalize = !cx.env.driver.runs_controllers();
    if finalize {
        super::apply::aggregate_cluster_roles(&client).await?;
    }
    let pruned = super::apply::prune(&client, ws.as_str(), &objects, finalize).await?;
    Ok(json!({ "applied": applied, "pruned": pruned }))
}

impl Saga<Env> for ReconcileWorkspace {
    fn kind(&self) -> &'static str {
        RECONCILE
    }

    fn coalesces(&self) -> bool {
        true
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![Step {
            name: "apply",
            action: action(|cx| Box::pin(reconcile(cx))),
            undo: None,
        }]
    }
}
