//! `hexabase workspace`: an organization's workspaces — requesting one, following it while it
//! is provisioned, its kubeconfig, suspending and resuming it, deleting it.

use std::time::Duration;

use clap::Subcommand;

use super::connection::{Api, Scope};
use super::error::{input, CliError};
use super::output::{emit, json_text, or_dash, show, time, Output, Table};
use super::resolve;
use crate::api::types;

/// How often `wait` looks at the workspace.
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Request a workspace (organization admins); it is then provisioned (see `wait`).
    Create {
        org: String,
        name: String,
        /// The plan (`GET /api/v1/plans`: starter, team, enterprise, …).
        #[arg(long)]
        plan: String,
    },
    /// The organization's workspaces you may see.
    List { org: String },
    /// One workspace (id or name): status, and while it provisions the step it is at.
    Get { org: String, ws: String },
    /// Follow a workspace until it is Ready (exit 0) or Failed (exit 9, with the reason),
    /// printing each provisioning step on stderr.
    Wait {
        org: String,
        ws: String,
        /// Give up after this many seconds (exit 10).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// The workspace's kubeconfig (JSON, which YAML readers take as it is).
    Kubeconfig { org: String, ws: String },
    /// Request the workspace's deletion (its cluster and data go).
    Delete { org: String, ws: String },
    /// Suspend the workspace (organization admins): its cluster stops, its data stays.
    Suspend {
        org: String,
        ws: String,
        /// Why (shown as the workspace's reason).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a suspended workspace (organization admins); `wait` follows it to Ready.
    Resume { org: String, ws: String },
}

fn details(w: &types::WorkspaceView) -> Table {
    let mut fields = vec![
        ("ID", w.id.clone()),
        ("NAME", w.name.clone()),
        ("ORGANIZATION", w.org_id.clone()),
        ("PLAN", w.plan.clone()),
        ("STATUS", w.status.clone()),
    ];
    if let Some(reason) = &w.status_reason {
        fields.push(("REASON", reason.clone()));
    }
    if let Some(progress) = &w.progress {
        fields.push(("STEP", progress_line(progress)));
    }
    fields.push(("CREATED", time(&w.created_at)));
    Table::details(&fields)
}

fn progress_line(progress: &types::WorkspaceProgress) -> String {
    let mut line = format!(
        "{} ({}, attempt {})",
        or_dash(progress.step.as_deref()),
        progress.state,
        progress.attempts
    );
    if let Some(error) = &progress.last_error {
        line.push_str(&format!(": {error}"));
    }
    line
}

pub async fn run(api: &mut Api, command: WorkspaceCommand, output: Output) -> Result<(), CliError> {
    match command {
        WorkspaceCommand::Create { org, name, plan } => {
            let org = &resolve::organization(api, &org).await?;
            let body = &types::CreateWorkspace {
                name: input("name", &name)?,
                plan: input("plan", &plan)?,
            };
            api.settle(Scope::Organization(org)).await;
            let accepted = api
                .call(|c| async move { c.create_workspace(org, None, body).await })
                .await?;
            api.wrote(Some(accepted.position)).await;
            show(output, &accepted, |w| {
                Table::details(&[
                    ("ID", w.id.clone()),
                    ("NAME", w.name.clone()),
                    ("PLAN", w.plan.clone()),
                    ("STATUS", w.status.clone()),
                ])
            })
        }
        WorkspaceCommand::List { org } => {
            let org = &resolve::organization(api, &org).await?;
            let workspaces = resolve::workspaces(api, org).await?;
            show(output, &workspaces, |workspaces| {
                let mut table = Table::new(&["ID", "NAME", "PLAN", "STATUS", "CREATED"]);
                for w in workspaces {
                    table.row(vec![
                        w.id.clone(),
                        w.name.clone(),
                        w.plan.clone(),
                        w.status.clone(),
                        time(&w.created_at),
                    ]);
                }
                table
            })
        }
        WorkspaceCommand::Get { org, ws } => {
            let org = &resolve::organization(api, &org).await?;
            let ws = &resolve::workspace(api, org, &ws).await?;
            let view = get(api, org, ws).await?;
            show(output, &view, details)
        }
        WorkspaceCommand::Wait { org, ws, timeout } => {
            let org = &resolve::organization(api, &org).await?;
            let ws = &resolve::workspace(api, org, &ws).await?;
            let view = wait(api, org, ws, Duration::from_secs(timeout)).await?;
            show(output, &view, details)
        }
        WorkspaceCommand::Kubeconfig { org, ws } => {
            let org = &resolve::organization(api, &org).await?;
            let ws = &resolve::workspace(api, org, &ws).await?;
            let kubeconfig = api
                .call(|c| async move { c.get_workspace_kubeconfig(org, ws).await })
                .await?;
            emit(&json_text(&kubeconfig)?)
        }
        WorkspaceCommand::Delete { org, ws } => {
            let org = &resolve::organization(api, &org).await?;
            let ws = &resolve::workspace(api, org, &ws).await?;
            api.settle(Scope::Organization(org)).await;
            let accepted = api
                .call(|c| async move { c.delete_workspace(org, ws).await })
                .await?;
            api.wrote(Some(accepted.position)).await;
            show(output, &accepted, |w| {
                Table::details(&[("ID", w.id.clone()), ("STATUS", w.status.clone())])
            })
        }
        WorkspaceCommand::Suspend { org, ws, reason } => {
            let org = &resolve::organization(api, &org).await?;
            let ws = &resolve::workspace(api, org, &ws).await?;
            let body = &types::SuspendWorkspace {
                reason: reason.as_deref().map(|r| input("reason", r)).transpose()?,
            };
            api.settle(Scope::Organization(org)).await;
            let accepted = api
                .call(|c| async move { c.suspend_workspace(org, ws, None, body).await })
                .await?;
            api.wrote(Some(accepted.position)).await;
            show(output, &accepted, |w| {
                Table::details(&[("ID", w.id.clone()), ("STATUS", w.status.clone())])
            })
        }
        WorkspaceCommand::Resume { org, ws } => {
            let org = &resolve::organization(api, &org).await?;
            let ws = &resolve::workspace(api, org, &ws).await?;
            api.settle(Scope::Organization(org)).await;
            let accepted = api
                .call(|c| async move { c.resume_workspace(org, ws, None).await })
                .await?;
            api.wrote(Some(accepted.position)).await;
            show(output, &accepted, |w| {
                Table::details(&[("ID", w.id.clone()), ("STATUS", w.status.clone())])
            })
        }
    }
}

async fn get(api: &mut Api, org: &str, ws: &str) -> Result<types::WorkspaceView, CliError> {
    let position = api.position();
    api.call(|c| async move { c.get_workspace(org, ws, position).await })
        .await
}

/// Follow the workspace until it is Ready; a line on stderr for each status, step and attempt.
async fn wait(
    api: &mut Api,
    org: &str,
    ws: &str,
    timeout: Duration,
) -> Result<types::WorkspaceView, CliError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_said = String::new();
    loop {
        let view = get(api, org, ws).await?;
        let said = match &view.progress {
            Some(progress) => format!("{}: {}", view.status, progress_line(progress)),
            None => view.status.clone(),
        };
        if said != last_said {
            eprintln!("{ws}: {said}");
            last_said = said;
        }
        let failed = |what: String| CliError::WorkspaceFailed {
            workspace: ws.to_owned(),
            what,
        };
        match view.status.as_str() {
            "Ready" => return Ok(view),
            "Failed" => {
                return Err(failed(format!(
                    "failed: {}",
                    view.status_reason.as_deref().unwrap_or("no reason given")
                )))
            }
            "Suspending" | "Suspended" | "Deleting" | "Deleted" => {
                return Err(failed(format!("will not be ready: it is {}", view.status)))
            }
            _ => {}
        }
        if tokio::time::Instant::now() + POLL > deadline {
            return Err(CliError::TimedOut {
                workspace: ws.to_owned(),
                seconds: timeout.as_secs(),
                status: view.status,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
