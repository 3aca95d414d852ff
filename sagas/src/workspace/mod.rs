//! The workspace's sagas: `provision` (on `WorkspaceRequested`), `delete` (on
//! `WorkspaceDeletionRequested`), `suspend` and `resume` (on their requests), `nodes` (on
//! requests for dedicated nodes and their release), and `reconcile` (on the events that change what the cluster
//! should hold, and on the maintenance pass), with what they share: the environment, the
//! commands they record on the workspace, and which events start them.

pub mod apply;
mod delete;
pub mod hnc;
mod kinds;
mod nodes;
pub mod objects;
mod provision;
mod reconcile;
mod request;
mod suspend;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_es::{Aggregate, AggregateError};
use hexabase_command::metadata::CommandMetadata;
use hexabase_command::organization::Organization;
use hexabase_command::store::{load_state, Cqrs, StoredEvent};
use hexabase_command::workspace::{ClusterState, Workspace, WorkspaceCommand, WorkspaceError};
use hexabase_command::{OrganizationId, WorkspaceId};
use serde_json::{json, Value};
use sqlx::PgPool;

pub use delete::DeleteWorkspace;
pub use nodes::DedicateNodes;
pub use objects::Quota;
pub use provision::ProvisionWorkspace;
pub use reconcile::ReconcileWorkspace;
pub use request::ConfirmWorkspace;
pub use suspend::{ResumeWorkspace, SuspendWorkspace};

use hexabase_identity::issuer::authentication_configuration;

use crate::driver::{ClusterDriver, ClusterSpec, DriverError};
use crate::engine::log::NewSaga;
use crate::engine::{Aggregate as SagaAggregate, Cx, Registry, StepError, Triggers};

/// What the workspace's sagas work with.
pub struct Env {
    pub pool: PgPool,
    pub workspaces: Cqrs<Workspace>,
    pub organizations: Cqrs<Organization>,
    pub driver: Arc<dyn ClusterDriver>,
    /// Each plan's quota, by plan id.
    pub quotas: BTreeMap<String, Quota>,
    /// The control plane's OIDC issuer (its public URL), which the API servers trust.
    pub issuer: String,
    /// The CA of the issuer's serving certificate, when it is not a public one.
    pub issuer_ca: Option<String>,
    /// How long one attempt waits for a new API server to answer `/readyz`.
    pub ready_timeout: Duration,
    /// How the clusters are laid out (`workspace.*`: the hierarchy, HNC's image).
    pub layout: objects::WorkspaceSettings,
    /// JetStream, for what sagas publish (the admins' notifications).
    pub js: async_nats::jetstream::Context,
    /// Stripe and the billing rules.
    pub billing: crate::billing::env::BillingEnv,
}

pub const PROVISION: &str = "workspace.provision";
pub const DELETE: &str = "workspace.delete";
pub const RECONCILE: &str = "workspace.reconcile";
pub const CONFIRM: &str = "workspace.confirm";
pub const SUSPEND: &str = "workspace.suspend";
pub const RESUME: &str = "workspace.resume";
pub const NODES: &str = "workspace.nodes";

/// Every saga of a workspace.
pub fn registry() -> Registry<Env> {
    Registry::default()
        .with(ProvisionWorkspace)
        .with(DeleteWorkspace)
        .with(ReconcileWorkspace)
        .with(ConfirmWorkspace)
        .with(SuspendWorkspace)
        .with(ResumeWorkspace)
        .with(DedicateNodes)
}

/// The workspace a saga works for.
fn workspace_of(cx: &Cx<'_, Env>) -> Result<WorkspaceId, StepError> {
    WorkspaceId::parse(&cx.saga.aggregate_id).map_err(|e| StepError::Permanent(e.to_string()))
}

/// The workspace's current state, from the event store.
async fn state(cx: &Cx<'_, Env>) -> Result<(WorkspaceId, Option<ClusterState>), StepError> {
    let ws = workspace_of(cx)?;
    let workspace: Workspace = load_state(&cx.env.pool, ws.as_str())
        .await
        .map_err(|e| StepError::Transient(format!("cannot read the workspace: {e}")))?;
    Ok((ws, workspace.cluster_state()))
}

/// Record `command` on the workspace, as the saga (system actor, the triggering request's
/// correlation id, the saga as cause). A concurrent change to the workspace is retried.
async fn record(cx: &Cx<'_, Env>, command: WorkspaceCommand) -> Result<(), StepError> {
    let ws = workspace_of(cx)?;
    let metadata = CommandMetadata::for_saga(&cx.saga.id, cx.saga.correlation_id.as_deref());
    match cx
        .env
        .workspaces
        .execute_with_metadata(ws.as_str(), command, metadata)
        .await
    {
        Ok(()) => Ok(()),
        Err(AggregateError::UserError(e @ WorkspaceError::BeingDeleted)) => {
            Err(StepError::Permanent(e.to_string()))
        }
        Err(AggregateError::UserError(e)) => Err(StepError::Permanent(e.to_string())),
        Err(e) => Err(StepError::Transient(e.to_string())),
    }
}

/// What a workspace saga records when one of its steps failed for good: the history shows the
/// task, the step and why.
async fn record_step_failure(
    cx: &Cx<'_, Env>,
    step: &str,
    reason: &str,
) -> Result<Value, StepError> {
    record(
        cx,
        WorkspaceCommand::RecordStepFailure {
            task: cx.saga.id.clone(),
            step: step.to_owned(),
            reason: reason.to_owned(),
        },
    )
    .await?;
    done()
}

/// The workspace's state as its cluster should hold it, and the quota of its plan; a
/// workspace gone, or a plan not in the catalogue, fails for good.
async fn state_and_quota(
    cx: &Cx<'_, Env>,
) -> Result<(WorkspaceId, ClusterState, Quota), StepError> {
    let (ws, state) = state(cx).await?;
    let state = state.ok_or_else(|| StepError::Permanent("the workspace does not exist".into()))?;
    let quota = cx.env.quotas.get(&state.plan).cloned().ok_or_else(|| {
        StepError::Permanent(format!("plan `{}` is not in the catalogue", state.plan))
    })?;
    Ok((ws, state, quota))
}

/// What the driver creates (or brings up to date) the workspace's cluster with: its API server
/// trusting the control plane for this workspace's tokens, the plan's quota.
async fn cluster_spec(cx: &Cx<'_, Env>) -> Result<ClusterSpec, StepError> {
    let (ws, state, quota) = state_and_quota(cx).await?;
    if !cx.env.issuer.starts_with("https://") {
        return Err(StepError::Permanent(format!(
            "the control plane's issuer `{}` (http.public_url) is not https; a workspace's API \
             server trusts only an https issuer",
            cx.env.issuer
        )));
    }
    Ok(ClusterSpec {
        authentication: authentication_configuration(
            &cx.env.issuer,
            &ws,
            cx.env.issuer_ca.as_deref(),
        ),
        workspace: ws,
        organization: state.organization,
        quota,
        dedicated: !state.dedicated_nodes.is_empty(),
    })
}

fn driver_error(error: DriverError) -> StepError {
    match error {
        DriverError::Transient(e) => StepError::Transient(e),
        DriverError::Permanent(e) => StepError::Permanent(e),
        DriverError::NotFound(e) => StepError::Transient(format!("workspace {e} has no cluster")),
    }
}

fn done() -> Result<Value, StepError> {
    Ok(Value::Null)
}

/// Which of a workspace's events start its sagas, and on which task subject they travel.
pub struct WorkspaceTriggers;

const PROVISIONING_SUBJECT: &str = "vcluster.provisioning.";
const HIERARCHY_SUBJECT: &str = "vcluster.hnc.";

/// The events after which the cluster should hold something else.
const RECONCILED: &[&str] = &[
    "WorkspacePlanChanged",
    "GroupRenamed",
    "ProjectCreated",
    "ProjectMoved",
    "ProjectDeleted",
    "RoleCreated",
    "RoleRulesChanged",
    "RoleDeleted",
    "RoleAssigned",
    "RoleUnassigned",
    "ClusterRoleAssigned",
    "ClusterRoleUnassigned",
    // What changed while the cluster was suspended.
    "WorkspaceResumed",
];

fn kind_for(event_type: &str) -> Option<&'static str> {
    match event_type {
        "WorkspaceRequested" => Some(PROVISION),
        "WorkspaceDeletionRequested" => Some(DELETE),
        "WorkspaceSuspensionRequested" => Some(SUSPEND),
        "WorkspaceResumptionRequested" => Some(RESUME),
        "DedicatedNodesRequested" | "DedicatedNodeReleased" => Some(NODES),
        other if RECONCILED.contains(&other) => Some(RECONCILE),
        _ => None,
    }
}

#[async_trait]
impl Triggers<Env> for WorkspaceTriggers {
    fn sagas_for(&self, event: &StoredEvent) -> Vec<(&'static str, Value)> {
        if event.aggregate_type == Organization::TYPE {
            if event.event_type != "WorkspaceAttached" {
                return Vec::new();
            }
            let Some(workspace_id) = event.payload_as::<Value>().ok().and_then(|p| {
                p["WorkspaceAttached"]["workspace_id"]
                    .as_str()
                    .map(str::to_owned)
            }) else {
                return Vec::new();
            };
            let params = json!({ "workspace_id": workspace_id, "attached_at": event.recorded_at });
            return vec![(CONFIRM, params)];
        }
        if event.aggregate_type != Workspace::TYPE {
            return Vec::new();
        }
        kind_for(&event.event_type)
            .map(|kind| (kind, json!({ "event": event.event_type })))
            .into_iter()
            .collect()
    }

    fn subject_for(&self, event: &StoredEvent) -> Option<String> {
        if event.aggregate_type == Organization::TYPE && event.event_type == "WorkspaceAttached" {
            return Some(format!("{PROVISIONING_SUBJECT}{}", event.aggregate_id));
        }
        if event.aggregate_type != Workspace::TYPE {
            return None;
        }
        let prefix = match kind_for(&event.event_type)? {
            RECONCILE => HIERARCHY_SUBJECT,
            _ => PROVISIONING_SUBJECT,
        };
        Some(format!("{prefix}{}", event.aggregate_id))
    }

    fn aggregate_of(&self, subject: &str) -> Option<SagaAggregate> {
        let id = subject
            .strip_prefix(PROVISIONING_SUBJECT)
            .or_else(|| subject.strip_prefix(HIERARCHY_SUBJECT))?;
        let aggregate_type = if WorkspaceId::parse(id).is_ok() {
            Workspace::TYPE
        } else if OrganizationId::parse(id).is_ok() {
            Organization::TYPE
        } else {
            return None;
        };
        Some(SagaAggregate {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: id.to_owned(),
        })
    }

    /// Every ready workspace's cluster is reconciled once per period: objects deleted or
    /// edited by hand come back, objects whose resource is gone go.
    async fn maintenance(&self, env: &Env, period: i64) -> Result<Vec<NewSaga>, StepError> {
        let transient = |e: sqlx::Error| StepError::Transient(e.to_string());
        let ready: Vec<String> =
            sqlx::query_scalar("SELECT id FROM rm_workspaces WHERE status = 'Ready' ORDER BY id")
                .fetch_all(&env.pool)
                .await
                .map_err(transient)?;
        let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
            .fetch_one(&env.pool)
            .await
            .map_err(transient)?;
        Ok(ready
            .into_iter()
            .map(|id| NewSaga {
                kind: RECONCILE,
                aggregate_type: Workspace::TYPE.to_owned(),
                aggregate_id: id,
                trigger: format!("maintenance:{period}"),
                position: head,
                params: json!({ "maintenance": period }),
                correlation_id: None,
            })
            .collect())
    }
}
