//! `hexabase role` and `hexabase clusterrole`: a project's roles and the groups given them,
//! and cluster roles given to groups across a workspace.

use clap::Subcommand;

use super::connection::{Api, Page, Scope};
use super::error::{input, CliError};
use super::output::{show, Output, Table};
use super::resolve;
use crate::api::types;
use crate::id::is_id;

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create a custom role in a project from Kubernetes PolicyRules.
    Create {
        project: String,
        name: String,
        /// A rule: `apiGroups=apps;resources=deployments,pods;verbs=get,list`, optionally
        /// `;resourceNames=…`; apiGroups defaults to the core group. Repeatable.
        #[arg(long = "rule", required = true)]
        rules: Vec<String>,
        /// The project's workspace: lets PROJECT be a name.
        #[arg(long)]
        workspace: Option<String>,
    },
    /// The project's roles: the presets admin, edit, view and the custom ones.
    List {
        project: String,
        /// The project's workspace: lets PROJECT be a name.
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Give a group a role in a project (ROLE: admin, edit, view, or a custom role's id or
    /// name).
    Assign {
        project: String,
        group: String,
        role: String,
        /// The project's workspace: lets PROJECT and GROUP be names.
        #[arg(long)]
        workspace: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterRoleCommand {
    /// Give a group a preset cluster role (admin, edit, view) across the workspace.
    Assign {
        ws: String,
        group: String,
        role: String,
    },
}

/// A rule as `--rule` writes it.
pub fn parse_rule(text: &str) -> Result<types::PolicyRuleSpec, CliError> {
    let usage = |why: String| CliError::Usage(format!("--rule `{text}`: {why}"));
    let (mut api_groups, mut resources, mut verbs, mut resource_names) = (None, None, None, None);
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, values) = part
            .split_once('=')
            .ok_or_else(|| usage(format!("`{part}` is not key=values")))?;
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().trim_matches('"').to_owned())
            .collect();
        let slot = match key.trim() {
            "apiGroups" | "api_groups" => &mut api_groups,
            "resources" => &mut resources,
            "verbs" => &mut verbs,
            "resourceNames" | "resource_names" => &mut resource_names,
            other => {
                return Err(usage(format!(
                    "unknown key `{other}` (apiGroups, resources, verbs, resourceNames)"
                )))
            }
        };
        *slot = Some(values);
    }
    Ok(types::PolicyRuleSpec {
        api_groups: api_groups.unwrap_or_else(|| vec![String::new()]),
        resources: resources.ok_or_else(|| usage("no resources=".into()))?,
        verbs: verbs.ok_or_else(|| usage("no verbs=".into()))?,
        resource_names: resource_names.unwrap_or_default(),
    })
}

/// A rule as `--rule` writes it, from a role's JSON.
fn rule_text(rule: &types::PolicyRuleSpec) -> String {
    let mut text = format!(
        "apiGroups={};resources={};verbs={}",
        rule.api_groups.join(","),
        rule.resources.join(","),
        rule.verbs.join(",")
    );
    if !rule.resource_names.is_empty() {
        text.push_str(&format!(";resourceNames={}", rule.resource_names.join(",")));
    }
    text
}

fn rules_text(rules: Option<&serde_json::Value>) -> String {
    match rules {
        None => "-".into(),
        Some(value) => match serde_json::from_value::<Vec<types::PolicyRuleSpec>>(value.clone()) {
            Ok(rules) => rules.iter().map(rule_text).collect::<Vec<_>>().join(" | "),
            Err(_) => value.to_string(),
        },
    }
}

/// Every page carries the presets too: they are taken once, from the first.
impl Page for types::ProjectRoleList {
    type Item = types::ProjectRole;
    fn split(self) -> (Vec<types::ProjectRole>, Option<String>) {
        let mut roles = self.presets;
        roles.extend(self.items);
        (roles, self.next_cursor)
    }
}

/// PROJECT or GROUP as an id, or (given the workspace) looked up by name.
async fn in_workspace(
    api: &mut Api,
    workspace: Option<&str>,
    kind: &str,
    arg: &str,
) -> Result<String, CliError> {
    let prefix = if kind == "project" { "prj-" } else { "grp-" };
    let workspace = match workspace {
        Some(ws) => Some(resolve::workspace_ref(api, ws).await?),
        None => None,
    };
    match workspace.as_deref() {
        Some(ws) if kind == "project" => resolve::project(api, ws, arg).await,
        Some(ws) => resolve::group(api, ws, arg).await,
        None if is_id(arg, prefix) => Ok(arg.to_owned()),
        None => Err(CliError::Usage(format!(
            "`{arg}` is not a {kind} id ({prefix}…): give --workspace to name it by name"
        ))),
    }
}

fn created(output: Output, item: &types::RbacCreatedItem) -> Result<(), CliError> {
    show(output, item, |i| Table::details(&[("ID", i.id.clone())]))
}

pub async fn run(api: &mut Api, command: RoleCommand, output: Output) -> Result<(), CliError> {
    match command {
        RoleCommand::Create {
            project,
            name,
            rules,
            workspace,
        } => {
            let project = &in_workspace(api, workspace.as_deref(), "project", &project).await?;
            let body = &types::CreateRole {
                name: input("name", &name)?,
                rules: rules
                    .iter()
                    .map(|r| parse_rule(r))
                    .collect::<Result<_, _>>()?,
            };
            api.settle(Scope::Project(project)).await;
            let item = api
                .call(|c| async move { c.create_role(project, None, body).await })
                .await?;
            api.wrote(Some(item.position)).await;
            created(output, &item)
        }
        RoleCommand::List { project, workspace } => {
            let project = &in_workspace(api, workspace.as_deref(), "project", &project).await?;
            let roles = resolve::roles(api, project).await?;
            show(output, &roles, |roles| {
                let mut table = Table::new(&["ID", "NAME", "PRESET", "RULES"]);
                for r in roles {
                    table.row(vec![
                        r.id.clone(),
                        r.name.clone(),
                        if r.preset { "yes" } else { "no" }.into(),
                        rules_text(r.rules.as_ref()),
                    ]);
                }
                table
            })
        }
        RoleCommand::Assign {
            project,
            group,
            role,
            workspace,
        } => {
            let project = &in_workspace(api, workspace.as_deref(), "project", &project).await?;
            let group = in_workspace(api, workspace.as_deref(), "group", &group).await?;
            let role = resolve::role(api, project, &role).await?;
            let body = &types::CreateAssignment {
                group_id: input("group", &group)?,
                role: input("role", &role)?,
            };
            api.settle(Scope::Project(project)).await;
            let item = api
                .call(|c| async move { c.create_role_assignment(project, None, body).await })
                .await?;
            api.wrote(Some(item.position)).await;
            created(output, &item)
        }
    }
}

pub async fn run_cluster(
    api: &mut Api,
    command: ClusterRoleCommand,
    output: Output,
) -> Result<(), CliError> {
    match command {
        ClusterRoleCommand::Assign { ws, group, role } => {
            let ws = &resolve::workspace_ref(api, &ws).await?;
            let group = resolve::group(api, ws, &group).await?;
            let body = &types::CreateClusterAssignment {
                group_id: input("group", &group)?,
                cluster_role: input("role", &role)?,
            };
            api.settle(Scope::Workspace(ws)).await;
            let item = api
                .call(|c| async move { c.create_cluster_role_assignment(ws, None, body).await })
                .await?;
            api.wrote(Some(item.position)).await;
            created(output, &item)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_reads_as_kubernetes_writes_it() {
        let rule = parse_rule("apiGroups=apps;resources=deployments,pods;verbs=get,list").unwrap();
        assert_eq!(rule.api_groups, ["apps"]);
        assert_eq!(rule.resources, ["deployments", "pods"]);
        assert_eq!(rule.verbs, ["get", "list"]);
        assert!(rule.resource_names.is_empty());
        assert_eq!(
            rule_text(&rule),
            "apiGroups=apps;resources=deployments,pods;verbs=get,list"
        );
    }

    #[test]
    fn the_core_group_is_the_default_and_names_are_optional() {
        let rule = parse_rule("resources=configmaps;verbs=get;resourceNames=settings").unwrap();
        assert_eq!(rule.api_groups, [""]);
        assert_eq!(rule.resource_names, ["settings"]);
        let rule = parse_rule("apiGroups=;resources=pods;verbs=*").unwrap();
        assert_eq!(rule.api_groups, [""]);
    }

    #[test]
    fn a_rule_without_resources_or_verbs_or_with_unknown_keys_is_refused() {
        for bad in [
            "verbs=get",
            "resources=pods",
            "resources=pods;verbs=get;colour=blue",
            "pods",
        ] {
            assert!(matches!(parse_rule(bad), Err(CliError::Usage(_))), "{bad}");
        }
    }
}
