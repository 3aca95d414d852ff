//! The organization's billing sagas: its Stripe customer, its admins' notifications, and what
//! payment means for its workspaces (suspended when the deadline passes unpaid, resumed when
//! paid, moved to the plan the subscription pays for).

use std::collections::BTreeSet;

use async_nats::jetstream;
use cqrs_es::AggregateError;
use hexabase_command::metadata::CommandMetadata;
use hexabase_command::organization::{Organization, OrganizationCommand, OrganizationError};
use hexabase_command::store::load_state;
use hexabase_command::workspace::{Workspace, WorkspaceCommand, WorkspaceError, WorkspaceStatus};
use hexabase_command::{OrganizationId, WorkspaceId};
use serde_json::{json, Value};

use super::{CUSTOMER, NOTIFICATION_SUBJECT, NOTIFY, PLAN, RESUME, SUSPEND};
use crate::engine::{action, Cx, Saga, Step, StepError};
use crate::workspace::Env;

pub struct CreateCustomer;
pub struct NotifyAdmins;
pub struct SuspendWorkspaces;
pub struct ResumeWorkspaces;
pub struct ApplyPlan;

fn organization_id(cx: &Cx<'_, Env>) -> Result<OrganizationId, StepError> {
    OrganizationId::parse(&cx.saga.aggregate_id).map_err(|e| StepError::Permanent(e.to_string()))
}

async fn organization(cx: &Cx<'_, Env>) -> Result<(OrganizationId, Organization), StepError> {
    let id = organization_id(cx)?;
    let org = load_state(&cx.env.pool, id.as_str())
        .await
        .map_err(|e| StepError::Transient(format!("cannot read the organization: {e}")))?;
    Ok((id, org))
}

/// Record `command` on the organization, as the saga.
async fn record(cx: &Cx<'_, Env>, command: OrganizationCommand) -> Result<(), StepError> {
    let id = organization_id(cx)?;
    let metadata = CommandMetadata::for_saga(&cx.saga.id, cx.saga.correlation_id.as_deref());
    match cx
        .env
        .organizations
        .execute_with_metadata(id.as_str(), command, metadata)
        .await
    {
        Ok(()) => Ok(()),
        Err(AggregateError::UserError(e)) => Err(StepError::Permanent(e.to_string())),
        Err(e) => Err(StepError::Transient(e.to_string())),
    }
}

/// Run `command` on the workspace `ws` as the saga; `Ok(false)` when the workspace is in no
/// state to (gone, being deleted, failed), which billing leaves alone.
async fn on_workspace(
    cx: &Cx<'_, Env>,
    ws: &WorkspaceId,
    command: WorkspaceCommand,
) -> Result<bool, StepError> {
    let metadata = CommandMetadata::for_saga(&cx.saga.id, cx.saga.correlation_id.as_deref());
    match cx
        .env
        .workspaces
        .execute_with_metadata(ws.as_str(), command, metadata)
        .await
    {
        Ok(()) => Ok(true),
        Err(AggregateError::UserError(WorkspaceError::NotRunning(status)))
            if matches!(
                WorkspaceStatus::parse(status),
                Some(WorkspaceStatus::Requested | WorkspaceStatus::Provisioning)
            ) =>
        {
            Err(StepError::Transient(format!(
                "workspace {ws} is still {status}; waiting for it"
            )))
        }
        Err(AggregateError::UserError(_)) => Ok(false),
        Err(e) => Err(StepError::Transient(e.to_string())),
    }
}

fn skipped(why: &str) -> Result<Value, StepError> {
    Ok(json!({ "skipped": why }))
}

fn stripe_error(e: super::stripe::StripeFailure) -> StepError {
    if e.is_transient() {
        StepError::Transient(e.to_string())
    } else {
        StepError::Permanent(e.to_string())
    }
}

// billing.customer

/// The idempotency key of the customer's creation, recorded before the call so a retry sends
/// the same one.
async fn customer_key(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    if cx.env.billing.stripe.is_none() {
        return skipped("billing is not configured");
    }
    let (_, org) = organization(cx).await?;
    if org.billing().customer_id.is_some() {
        return skipped("the organization has a Stripe customer");
    }
    Ok(json!({ "key": format!("customer-{}", uuid::Uuid::new_v4()) }))
}

async fn create_customer(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let key: Value = cx.output("key")?;
    let (Some(key), Some(stripe)) = (key["key"].as_str(), cx.env.billing.stripe.as_ref()) else {
        return skipped("no customer to create");
    };
    let (id, org) = organization(cx).await?;
    let customer = stripe
        .create_customer(&id, org.name(), key)
        .await
        .map_err(stripe_error)?;
    Ok(json!({ "customer_id": customer }))
}

async fn record_customer(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let created: Value = cx.output("create-customer")?;
    let Some(customer_id) = created["customer_id"].as_str() else {
        return Ok(Value::Null);
    };
    match record(
        cx,
        OrganizationCommand::RecordBillingCustomer {
            customer_id: customer_id.to_owned(),
        },
    )
    .await
    {
        // Deleted meanwhile: the customer stays in Stripe, unused.
        Err(StepError::Permanent(e)) if e == OrganizationError::NotFound.to_string() => {
            skipped("the organization is gone")
        }
        other => other.map(|()| Value::Null),
    }
}

impl Saga<Env> for CreateCustomer {
    fn kind(&self) -> &'static str {
        CUSTOMER
    }

    fn coalesces(&self) -> bool {
        true
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![
            Step {
                name: "key",
                action: action(|cx| Box::pin(customer_key(cx))),
                undo: None,
            },
            Step {
                name: "create-customer",
                action: action(|cx| Box::pin(create_customer(cx))),
                undo: None,
            },
            Step {
                name: "record-customer",
                action: action(|cx| Box::pin(record_customer(cx))),
                undo: None,
            },
        ]
    }
}

// billing.notify

async fn notify(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let (id, org) = organization(cx).await?;
    let billing = org.billing();
    let (kind, message) = if billing.is_suspended() {
        (
            "workspaces_suspended",
            format!(
                "The workspaces of {} are suspended until a payment succeeds.",
                org.name()
            ),
        )
    } else if let Some(grace) = billing.grace_until {
        (
            "payment_failed",
            format!(
                "A payment for {} failed. Its workspaces will be suspended after {} unless \
                 the payment succeeds.",
                org.name(),
                grace.to_rfc3339()
            ),
        )
    } else {
        return skipped("nothing to tell: the organization has paid meanwhile");
    };
    let env = &cx.env.billing;
    let subjects = vec![if env.subject_prefix.is_empty() {
        format!("{NOTIFICATION_SUBJECT}>")
    } else {
        format!("{}.{NOTIFICATION_SUBJECT}>", env.subject_prefix)
    }];
    cx.env
        .js
        .get_or_create_stream(jetstream::stream::Config {
            name: env.notification_stream.clone(),
            subjects,
            max_age: std::time::Duration::from_secs(30 * 24 * 3600),
            ..Default::default()
        })
        .await
        .map_err(|e| StepError::Transient(format!("the notification stream: {e}")))?;
    let admins = org.admin_ids();
    for admin in &admins {
        let body = json!({
            "kind": kind,
            "organization": id,
            "organization_name": org.name(),
            "user": admin,
            "message": message,
            "grace_until": billing.grace_until,
        });
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("{}-{admin}", cx.saga.id).as_str(),
        );
        cx.env
            .js
            .publish_with_headers(
                env.notification_subject(admin.as_str()),
                headers,
                body.to_string().into(),
            )
            .await
            .map_err(|e| StepError::Transient(format!("cannot publish a notification: {e}")))?
            .await
            .map_err(|e| StepError::Transient(format!("a notification was not stored: {e}")))?;
    }
    Ok(json!({ "notified": admins }))
}

impl Saga<Env> for NotifyAdmins {
    fn kind(&self) -> &'static str {
        NOTIFY
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![Step {
            name: "notify",
            action: action(|cx| Box::pin(notify(cx))),
            undo: None,
        }]
    }
}

// billing.suspend

async fn record_suspension(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    record(
        cx,
        OrganizationCommand::SuspendForNonPayment {
            now: chrono::Utc::now(),
        },
    )
    .await?;
    Ok(Value::Null)
}

async fn suspend_workspaces(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let (_, org) = organization(cx).await?;
    let Some(workspaces) = org.billing().suspended.clone() else {
        return skipped("the organization paid before its deadline");
    };
    let reason = "payment overdue: suspended by billing until a payment succeeds".to_owned();
    let mut suspended = Vec::new();
    for ws in &workspaces {
        let command = WorkspaceCommand::RequestSuspension {
            actor: None,
            reason: Some(reason.clone()),
        };
        if on_workspace(cx, ws, command).await? {
            suspended.push(ws.clone());
        }
    }
    Ok(json!({ "suspended": suspended }))
}

impl Saga<Env> for SuspendWorkspaces {
    fn kind(&self) -> &'static str {
        SUSPEND
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![
            Step {
                name: "record",
                action: action(|cx| Box::pin(record_suspension(cx))),
                undo: None,
            },
            Step {
                name: "suspend-workspaces",
                action: action(|cx| Box::pin(suspend_workspaces(cx))),
                undo: None,
            },
        ]
    }
}

// billing.resume

async fn resume_workspaces(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    #[derive(serde::Deserialize)]
    struct Params {
        workspaces: BTreeSet<WorkspaceId>,
    }
    let params: Params = cx.params()?;
    let (_, org) = organization(cx).await?;
    if org.billing().is_suspended() {
        return skipped("suspended again since");
    }
    let mut resumed = Vec::new();
    for ws in &params.workspaces {
        if on_workspace(cx, ws, WorkspaceCommand::RequestResumption { actor: None }).await? {
            resumed.push(ws.clone());
        }
    }
    Ok(json!({ "resumed": resumed }))
}

impl Saga<Env> for ResumeWorkspaces {
    fn kind(&self) -> &'static str {
        RESUME
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![Step {
            name: "resume-workspaces",
            action: action(|cx| Box::pin(resume_workspaces(cx))),
            undo: None,
        }]
    }
}

// billing.plan

async fn apply_plan(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let (_, org) = organization(cx).await?;
    let Some(plan) = org
        .billing()
        .subscription
        .as_ref()
        .filter(|s| s.paying())
        .and_then(|s| s.plan.clone())
    else {
        return skipped("the subscription pays for no plan of the catalogue");
    };
    if !cx.env.quotas.contains_key(&plan) {
        return Err(StepError::Permanent(format!(
            "plan `{plan}` is not in the catalogue"
        )));
    }
    let mut moved = Vec::new();
    for ws in org.workspaces() {
        let workspace: Workspace = load_state(&cx.env.pool, ws.as_str())
            .await
            .map_err(|e| StepError::Transient(format!("cannot read workspace {ws}: {e}")))?;
        let Some(state) = workspace.cluster_state() else {
            continue;
        };
        if state.plan == plan {
            continue;
        }
        let command = WorkspaceCommand::ChangePlan { plan: plan.clone() };
        if on_workspace(cx, ws, command).await? {
            moved.push(ws.clone());
        }
    }
    Ok(json!({ "plan": plan, "moved": moved }))
}

impl Saga<Env> for ApplyPlan {
    fn kind(&self) -> &'static str {
        PLAN
    }

    fn coalesces(&self) -> bool {
        true
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![Step {
            name: "apply-plan",
            action: action(|cx| Box::pin(apply_plan(cx))),
            undo: None,
        }]
    }
}
