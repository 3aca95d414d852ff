//! The `hexabase` CLI for the control plane's API, on the client generated from the OpenAPI
//! document (`crate::api`): signing in (`auth`), organizations and their members, workspaces,
//! projects, groups, roles and the event history. Each command prints a table, or with
//! `-o json` the API's JSON, and exits with a code a script can test (`error::exit`,
//! `docs/cli.md`).

mod auth;
mod connection;
pub mod error;
mod events;
mod groups;
mod orgs;
pub mod output;
mod projects;
mod resolve;
mod roles;
mod workspaces;

use std::process::ExitCode;

use clap::{Args, Subcommand};

use connection::Api;
pub use error::CliError;
pub use output::Output;

/// The flags every API command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// API commands' output: a table, or the API's JSON for scripts.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in to the control plane (the session in ~/.hexabase/session.json), sign out, or
    /// show who is signed in.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Organizations.
    #[command(subcommand)]
    Org(orgs::OrgCommand),
    /// An organization's members and invitations.
    #[command(subcommand)]
    Member(orgs::MemberCommand),
    /// Workspaces (each a Kubernetes cluster) of an organization.
    #[command(subcommand)]
    Workspace(workspaces::WorkspaceCommand),
    /// Projects (namespaces) of a workspace.
    #[command(subcommand)]
    Project(projects::ProjectCommand),
    /// Groups of a workspace and their members.
    #[command(subcommand)]
    Group(groups::GroupCommand),
    /// Roles of a project and who has them.
    #[command(subcommand)]
    Role(roles::RoleCommand),
    /// Cluster roles across a workspace.
    #[command(subcommand)]
    Clusterrole(roles::ClusterRoleCommand),
    /// An organization's event history, oldest first (organization admins).
    Events(events::EventsArgs),
}

/// Run `command`; errors are printed on stderr and give the exit code.
pub async fn run(command: Command, global: Global) -> ExitCode {
    match dispatch(command, global.output).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn dispatch(command: Command, output: Output) -> Result<(), CliError> {
    if let Command::Auth(command) = command {
        return auth::run(command, output).await;
    }
    let mut api = Api::connect().await?;
    match command {
        Command::Auth(_) => Ok(()),
        Command::Org(command) => orgs::run(&mut api, command, output).await,
        Command::Member(command) => orgs::run_member(&mut api, command, output).await,
        Command::Workspace(command) => workspaces::run(&mut api, command, output).await,
        Command::Project(command) => projects::run(&mut api, command, output).await,
        Command::Group(command) => groups::run(&mut api, command, output).await,
        Command::Role(command) => roles::run(&mut api, command, output).await,
        Command::Clusterrole(command) => roles::run_cluster(&mut api, command, output).await,
        Command::Events(args) => events::run(&mut api, args, output).await,
    }
}
