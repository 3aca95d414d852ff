//! `hexabase group`: a workspace's groups and their members.

use clap::Subcommand;

use super::connection::{Api, Scope};
use super::error::{input, CliError};
use super::output::{done, or_dash, show, time, Output, Table};
use super::resolve;
use crate::api::types;

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group (letters, digits, `-_.`; unique in the workspace).
    Create {
        ws: String,
        name: String,
        /// The parent group (id or name); default: WorkspaceMembers.
        #[arg(long)]
        parent: Option<String>,
    },
    /// The workspace's groups.
    List { ws: String },
    /// Add a member of the organization (user id) to a group (id or name).
    AddMember {
        ws: String,
        group: String,
        user: String,
    },
}

pub async fn run(api: &mut Api, command: GroupCommand, output: Output) -> Result<(), CliError> {
    match command {
        GroupCommand::Create { ws, name, parent } => {
            let ws = &resolve::workspace_ref(api, &ws).await?;
            let parent_id = match parent {
                Some(parent) => Some(input("parent", &resolve::group(api, ws, &parent).await?)?),
                None => None,
            };
            let body = &types::CreateGroup {
                name: input("name", &name)?,
                parent_id,
            };
            api.settle(Scope::Workspace(ws)).await;
            let created = api
                .call(|c| async move { c.create_group(ws, None, body).await })
                .await?;
            api.wrote(Some(created.position)).await;
            show(output, &created, |g| {
                Table::details(&[
                    ("ID", g.id.clone()),
                    ("NAME", g.name.clone()),
                    ("PARENT", or_dash(g.parent_id.as_deref())),
                ])
            })
        }
        GroupCommand::List { ws } => {
            let ws = resolve::workspace_ref(api, &ws).await?;
            let groups = resolve::groups(api, &ws).await?;
            show(output, &groups, |groups| {
                let mut table = Table::new(&["ID", "NAME", "PARENT", "PRESET", "CREATED"]);
                for g in groups {
                    table.row(vec![
                        g.id.clone(),
                        g.name.clone(),
                        or_dash(g.parent_id.as_deref()),
                        if g.preset { "yes" } else { "no" }.into(),
                        time(&g.created_at),
                    ]);
                }
                table
            })
        }
        GroupCommand::AddMember { ws, group, user } => {
            let ws = &resolve::workspace_ref(api, &ws).await?;
            let group = &resolve::group(api, ws, &group).await?;
            let body = &types::AddMember {
                user_id: input("user", &user)?,
            };
            api.settle(Scope::Workspace(ws)).await;
            let written = api
                .call(|c| async move { c.add_group_member(ws, group, None, body).await })
                .await?;
            api.wrote(written.position).await;
            done(output, &written, &format!("Added {user} to {group}."))
        }
    }
}
