//! `hexabase org` and `hexabase member`: organizations, their members and invitations.

use clap::Subcommand;

use super::connection::{Api, Scope};
use super::error::{input, CliError};
use super::output::{done, or_dash, show, time, Output, Table};
use super::resolve;
use crate::api::types;

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization; you become its admin.
    Create { name: String },
    /// The organizations you belong to.
    List,
    /// One organization (id or name): details, members, pending invitations (for admins).
    Get { org: String },
    /// Delete an organization (admins; refused while it has workspaces).
    Delete { org: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MemberRole {
    Admin,
    Member,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Invite someone by email (admins); they join when they accept.
    Invite {
        org: String,
        email: String,
        /// The role they join with (default: member).
        #[arg(long, value_enum)]
        role: Option<MemberRole>,
    },
    /// The organization's members.
    List { org: String },
    /// Remove a member (admins; never the last admin), by user id or email.
    Remove { org: String, user: String },
}

pub async fn run(api: &mut Api, command: OrgCommand, output: Output) -> Result<(), CliError> {
    match command {
        OrgCommand::Create { name } => {
            let body = &types::CreateOrganization {
                name: input("name", &name)?,
            };
            let created = api
                .call(|c| async move { c.create_organization(None, body).await })
                .await?;
            api.wrote(Some(created.position)).await;
            show(output, &created, |o| {
                Table::details(&[
                    ("ID", o.id.clone()),
                    ("NAME", o.name.clone()),
                    ("ROLE", o.role.to_string()),
                ])
            })
        }
        OrgCommand::List => {
            let orgs = resolve::organizations(api).await?;
            show(output, &orgs, |orgs| {
                let mut table = Table::new(&["ID", "NAME", "ROLE", "CREATED"]);
                for o in orgs {
                    table.row(vec![
                        o.id.clone(),
                        o.name.clone(),
                        o.role.to_string(),
                        time(&o.created_at),
                    ]);
                }
                table
            })
        }
        OrgCommand::Get { org } => {
            let org = &resolve::organization(api, &org).await?;
            let position = api.position();
            let detail = api
                .call(|c| async move { c.get_organization(org, position).await })
                .await?;
            show(output, &detail, |o| {
                let mut table = Table::details(&[
                    ("ID", o.id.clone()),
                    ("NAME", o.name.clone()),
                    ("ROLE", o.role.to_string()),
                    ("CREATED", time(&o.created_at)),
                ]);
                for m in &o.members {
                    table.row(vec![
                        "MEMBER:".into(),
                        format!("{} {} since {}", m.user_id, m.role, time(&m.since)),
                    ]);
                }
                for i in &o.invitations {
                    table.row(vec![
                        "INVITED:".into(),
                        format!("{} as {} on {}", i.email, i.role, time(&i.invited_at)),
                    ]);
                }
                table
            })
        }
        OrgCommand::Delete { org } => {
            let org = &resolve::organization(api, &org).await?;
            api.settle(Scope::Organization(org)).await;
            let written = api
                .call(|c| async move { c.delete_organization(org).await })
                .await?;
            api.wrote(written.position).await;
            done(output, &written, &format!("Deleted organization {org}."))
        }
    }
}

pub async fn run_member(
    api: &mut Api,
    command: MemberCommand,
    output: Output,
) -> Result<(), CliError> {
    match command {
        MemberCommand::Invite { org, email, role } => {
            let org = &resolve::organization(api, &org).await?;
            let body = &types::InviteUser {
                email: input("email", &email)?,
                role: role.map(|role| match role {
                    MemberRole::Admin => types::Role::Admin,
                    MemberRole::Member => types::Role::Member,
                }),
            };
            api.settle(Scope::Organization(org)).await;
            let invited = api
                .call(|c| async move { c.invite_user(org, None, body).await })
                .await?;
            api.wrote(Some(invited.position)).await;
            show(output, &invited, |i| {
                Table::details(&[("INVITED", i.email.clone()), ("ROLE", i.role.to_string())])
            })
        }
        MemberCommand::List { org } => {
            let org = &resolve::organization(api, &org).await?;
            let members = resolve::members(api, org).await?;
            show(output, &members, |members| {
                let mut table = Table::new(&["USER", "EMAIL", "NAME", "ROLE", "SINCE"]);
                for m in members {
                    table.row(vec![
                        m.user_id.clone(),
                        or_dash(m.email.as_deref()),
                        or_dash(m.display_name.as_deref()),
                        m.role.to_string(),
                        time(&m.since),
                    ]);
                }
                table
            })
        }
        MemberCommand::Remove { org, user } => {
            let org = &resolve::organization(api, &org).await?;
            let user = &resolve::member(api, org, &user).await?;
            api.settle(Scope::Organization(org)).await;
            let written = api
                .call(|c| async move { c.remove_member(org, user).await })
                .await?;
            api.wrote(written.position).await;
            done(output, &written, &format!("Removed {user} from {org}."))
        }
    }
}
