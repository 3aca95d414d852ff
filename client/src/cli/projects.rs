//! `hexabase project`: a workspace's projects (namespaces).

use clap::Subcommand;

use super::connection::{Api, Scope};
use super::error::{input, CliError};
use super::output::{done, or_dash, show, time, Output, Table};
use super::resolve;
use crate::api::types;

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project: a namespace (`NAME` a DNS-1123 label unique in the workspace).
    Create {
        ws: String,
        name: String,
        /// The parent project (id or name); default: at the top.
        #[arg(long)]
        parent: Option<String>,
    },
    /// The workspace's projects.
    List { ws: String },
    /// Delete a project (id or name; refused while it has child projects).
    Delete { ws: String, project: String },
}

pub async fn run(api: &mut Api, command: ProjectCommand, output: Output) -> Result<(), CliError> {
    match command {
        ProjectCommand::Create { ws, name, parent } => {
            let ws = &resolve::workspace_ref(api, &ws).await?;
            let parent_id = match parent {
                Some(parent) => Some(input("parent", &resolve::project(api, ws, &parent).await?)?),
                None => None,
            };
            let body = &types::CreateProject {
                name: input("name", &name)?,
                parent_id,
            };
            api.settle(Scope::Workspace(ws)).await;
            let created = api
                .call(|c| async move { c.create_project(ws, None, body).await })
                .await?;
            api.wrote(Some(created.position)).await;
            show(output, &created, |p| {
                Table::details(&[
                    ("ID", p.id.clone()),
                    ("NAME", p.name.clone()),
                    ("PARENT", or_dash(p.parent_id.as_deref())),
                ])
            })
        }
        ProjectCommand::List { ws } => {
            let ws = resolve::workspace_ref(api, &ws).await?;
            let projects = resolve::projects(api, &ws).await?;
            show(output, &projects, |projects| {
                let mut table = Table::new(&["ID", "NAME", "PARENT", "CREATED"]);
                for p in projects {
                    table.row(vec![
                        p.id.clone(),
                        p.name.clone(),
                        or_dash(p.parent_id.as_deref()),
                        time(&p.created_at),
                    ]);
                }
                table
            })
        }
        ProjectCommand::Delete { ws, project } => {
            let ws = &resolve::workspace_ref(api, &ws).await?;
            let project = &resolve::project(api, ws, &project).await?;
            api.settle(Scope::Workspace(ws)).await;
            let written = api
                .call(|c| async move { c.delete_project(ws, project).await })
                .await?;
            api.wrote(written.position).await;
            done(output, &written, &format!("Deleted project {project}."))
        }
    }
}
