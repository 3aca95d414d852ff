//! Provisioning a requested workspace (on `WorkspaceRequested`):
//!
//! 1. `start`: record `WorkspaceProvisioningStarted` (status `Provisioning`).
//! 2. `create-cluster`: the driver creates the cluster, its API server trusting the control
//!    plane as OIDC issuer for this workspace's tokens (groups prefixed `hxb:`).
//! 3. `endpoint`: wait for `/readyz`; record `EndpointAssigned` (server, CA).
//! 4. `namespaces`: a namespace per project, with the roles and role bindings of each project
//!    propagated to its descendants (by the control plane, or with `workspace.hierarchy =
//!    "hnc"` by HNC, which this step installs, each child's namespace placed below its
//!    parent's).
//! 5. `quotas`: the plan's ResourceQuota and LimitRange in every project namespace.
//! 6. `rbac`: `hxb:WSAdmins` → `cluster-admin`, `hxb:WorkspaceMembers` → `view`, and the
//!    cluster role assignments.
//! 7. `provisioned`: record `WorkspaceProvisioned` (status `Ready`).
//!
//! A step that fails for good records `WorkspaceStepFailed`; the undos then remove the
//! cluster (which takes what steps 4–6 made with it), and `WorkspaceProvisioningFailed`
//! records the reason.

use hexabase_command::workspace::WorkspaceCommand;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::objects::{desired, Kind};
use super::{
    cluster_spec, done, driver_error, record, record_step_failure, state_and_quota, workspace_of,
    Env, PROVISION,
};
use crate::engine::{action, Cx, Saga, Step, StepError, StepFuture};

pub struct ProvisionWorkspace;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EndpointOutput {
    server: String,
    ca_pem: String,
}

async fn start(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    record(
        cx,
        WorkspaceCommand::StartProvisioning {
            task: cx.saga.id.clone(),
        },
    )
    .await?;
    done()
}

async fn create_cluster(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let spec = cluster_spec(cx).await?;
    cx.env.driver.create(&spec).await.map_err(driver_error)?;
    done()
}

async fn delete_cluster(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let ws = workspace_of(cx)?;
    cx.env.driver.delete(&ws).await.map_err(driver_error)?;
    done()
}

async fn endpoint(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let ws = workspace_of(cx)?;
    let driver = &cx.env.driver;
    driver
        .wait_ready(&ws, cx.env.ready_timeout)
        .await
        .map_err(driver_error)?;
    let endpoint = driver.endpoint(&ws).await.map_err(driver_error)?;
    record(
        cx,
        WorkspaceCommand::AssignEndpoint {
            server: endpoint.server.clone(),
            ca_pem: endpoint.ca_pem.clone(),
        },
    )
    .await?;
    serde_json::to_value(EndpointOutput {
        server: endpoint.server,
        ca_pem: endpoint.ca_pem,
    })
    .map_err(|e| StepError::Permanent(e.to_string()))
}

/// Apply what the workspace's state asks for of `kinds`.
async fn apply_kinds(cx: &Cx<'_, Env>, kinds: &[Kind]) -> Result<Value, StepError> {
    let (ws, state, quota) = state_and_quota(cx).await?;
    let objects: Vec<_> = desired(&state, &quota, &cx.env.layout)
        .into_iter()
        .filter(|o| kinds.contains(&o.kind))
        .collect();
    let client = cx
        .env
        .driver
        .admin_client(&ws)
        .await
        .map_err(driver_error)?;
    let applied = super::apply::apply(&client, &objects).await?;
    Ok(serde_json::json!({ "applied": applied }))
}

async fn namespaces(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    apply_kinds(
        cx,
        &[
            Kind::Namespace,
            Kind::CustomResourceDefinition,
            Kind::ServiceAccount,
            Kind::Deployment,
            Kind::HierarchyConfiguration,
            Kind::Role,
            Kind::RoleBinding,
        ],
    )
    .await
}

async fn quotas(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    // A plan's quota Kubernetes would refuse fails here, not at the workspace's first project.
    let (_, _, quota) = state_and_quota(cx).await?;
    quota.check().map_err(StepError::Permanent)?;
    apply_kinds(cx, &[Kind::ResourceQuota, Kind::LimitRange]).await
}

async fn rbac(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    if !cx.env.driver.runs_controllers() {
        let ws = workspace_of(cx)?;
        let client = cx
            .env
            .driver
            .admin_client(&ws)
            .await
            .map_err(driver_error)?;
        super::apply::aggregate_cluster_roles(&client).await?;
    }
    apply_kinds(cx, &[Kind::ClusterRoleBinding]).await
}

async fn provisioned(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    record(cx, WorkspaceCommand::CompleteProvisioning).await?;
    done()
}

impl Saga<Env> for ProvisionWorkspace {
    fn kind(&self) -> &'static str {
        PROVISION
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![
            Step {
                name: "start",
                action: action(|cx| Box::pin(start(cx))),
                undo: None,
            },
            Step {
                name: "create-cluster",
                action: action(|cx| Box::pin(create_cluster(cx))),
                undo: Some(action(|cx| Box::pin(delete_cluster(cx)))),
            },
            Step {
                name: "endpoint",
                action: action(|cx| Box::pin(endpoint(cx))),
                undo: None,
            },
            Step {
                name: "namespaces",
                action: action(|cx| Box::pin(namespaces(cx))),
                undo: None,
            },
            Step {
                name: "quotas",
                action: action(|cx| Box::pin(quotas(cx))),
                undo: None,
            },
            Step {
                name: "rbac",
                action: action(|cx| Box::pin(rbac(cx))),
                undo: None,
            },
            Step {
                name: "provisioned",
                action: action(|cx| Box::pin(provisioned(cx))),
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

    fn failed<'a>(&'a self, cx: &'a Cx<'a, Env>, reason: &'a str) -> StepFuture<'a> {
        Box::pin(async move {
            record(
                cx,
                WorkspaceCommand::FailProvisioning {
                    reason: reason.to_owned(),
                },
            )
            .await?;
            done()
        })
    }
}
