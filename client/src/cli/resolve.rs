//! Every item of each list the commands show or look names up in, and things named on the
//! command line by id or by name (looked up in their list).

use super::connection::{Api, PAGE};
use super::error::CliError;
use crate::api::types;
use crate::id::is_id;

pub async fn organizations(api: &mut Api) -> Result<Vec<types::OrganizationView>, CliError> {
    let position = api.position();
    api.all(|c, cursor| async move {
        c.list_organizations(cursor.as_ref(), Some(PAGE), position)
            .await
    })
    .await
}

pub async fn workspaces(api: &mut Api, org: &str) -> Result<Vec<types::WorkspaceView>, CliError> {
    let position = api.position();
    api.all(|c, cursor| async move {
        c.list_workspaces(org, cursor.as_ref(), Some(PAGE), position)
            .await
    })
    .await
}

pub async fn projects(api: &mut Api, ws: &str) -> Result<Vec<types::Project>, CliError> {
    let position = api.position();
    api.all(|c, cursor| async move {
        c.list_projects(ws, cursor.as_ref(), Some(PAGE), position)
            .await
    })
    .await
}

pub async fn groups(api: &mut Api, ws: &str) -> Result<Vec<types::Group>, CliError> {
    let position = api.position();
    api.all(|c, cursor| async move {
        c.list_groups(ws, cursor.as_ref(), Some(PAGE), position)
            .await
    })
    .await
}

pub async fn members(api: &mut Api, org: &str) -> Result<Vec<types::OrganizationMember>, CliError> {
    let position = api.position();
    api.all(|c, cursor| async move {
        c.list_members(org, cursor.as_ref(), Some(PAGE), position)
            .await
    })
    .await
}

/// The project's roles, presets first.
pub async fn roles(api: &mut Api, project: &str) -> Result<Vec<types::ProjectRole>, CliError> {
    let position = api.position();
    let mut roles: Vec<types::ProjectRole> = api
        .all(|c, cursor| async move {
            c.list_roles(project, cursor.as_ref(), Some(PAGE), position)
                .await
        })
        .await?;
    let mut seen = std::collections::HashSet::new();
    roles.retain(|role| seen.insert(role.id.clone()));
    Ok(roles)
}

/// The id of the one item of `items` that `name` names.
fn pick<T>(
    kind: &str,
    name: &str,
    items: &[T],
    id: impl Fn(&T) -> &str,
    named: impl Fn(&T) -> bool,
) -> Result<String, CliError> {
    let found: Vec<&str> = items.iter().filter(|i| named(i)).map(&id).collect();
    match found.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(CliError::NotFound(format!("no {kind} named `{name}`"))),
        many => Err(CliError::Usage(format!(
            "{} {kind}s are named `{name}` ({}): name the one you mean by id",
            many.len(),
            many.join(", ")
        ))),
    }
}

pub async fn organization(api: &mut Api, arg: &str) -> Result<String, CliError> {
    if is_id(arg, "org-") {
        return Ok(arg.to_owned());
    }
    let orgs = organizations(api).await?;
    pick("organization", arg, &orgs, |o| &o.id, |o| o.name == arg)
}

pub async fn workspace(api: &mut Api, org: &str, arg: &str) -> Result<String, CliError> {
    if is_id(arg, "ws-") {
        return Ok(arg.to_owned());
    }
    let workspaces = workspaces(api, org).await?;
    pick("workspace", arg, &workspaces, |w| &w.id, |w| w.name == arg)
}

/// A workspace named on its own: its id (`ws-…`), or `ORG/WS` with either part an id or a name.
pub async fn workspace_ref(api: &mut Api, arg: &str) -> Result<String, CliError> {
    match arg.split_once('/') {
        Some((org, ws)) => {
            let org = organization(api, org).await?;
            workspace(api, &org, ws).await
        }
        None if is_id(arg, "ws-") => Ok(arg.to_owned()),
        None => Err(CliError::Usage(format!(
            "`{arg}` is not a workspace id (ws-…): name it as ORG/WS, e.g. acme/{arg}"
        ))),
    }
}

pub async fn project(api: &mut Api, ws: &str, arg: &str) -> Result<String, CliError> {
    if is_id(arg, "prj-") {
        return Ok(arg.to_owned());
    }
    let projects = projects(api, ws).await?;
    pick("project", arg, &projects, |p| &p.id, |p| p.name == arg)
}

pub async fn group(api: &mut Api, ws: &str, arg: &str) -> Result<String, CliError> {
    if is_id(arg, "grp-") {
        return Ok(arg.to_owned());
    }
    let groups = groups(api, ws).await?;
    pick("group", arg, &groups, |g| &g.id, |g| g.name == arg)
}

/// A member of the organization by user id or by the email of their latest sign-in.
pub async fn member(api: &mut Api, org: &str, arg: &str) -> Result<String, CliError> {
    if !arg.contains('@') {
        return Ok(arg.to_owned());
    }
    let members = members(api, org).await?;
    pick(
        "member",
        arg,
        &members,
        |m| &m.user_id,
        |m| {
            m.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(arg))
        },
    )
}

/// A project's role: a preset (`admin`, `edit`, `view`), a role id, or a custom role's name.
pub async fn role(api: &mut Api, project: &str, arg: &str) -> Result<String, CliError> {
    if matches!(arg, "admin" | "edit" | "view") || is_id(arg, "role-") {
        return Ok(arg.to_owned());
    }
    let roles = roles(api, project).await?;
    pick("role", arg, &roles, |r| &r.id, |r| r.name == arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_picks_one_item_or_says_why_not() {
        let items = [("g-1", "dev"), ("g-2", "ops"), ("g-3", "ops")];
        let by_name =
            |name: &'static str| pick("group", name, &items, |i| i.0, move |i| i.1 == name);
        assert_eq!(by_name("dev").unwrap(), "g-1");
        assert!(matches!(by_name("qa"), Err(CliError::NotFound(_))));
        let Err(CliError::Usage(message)) = by_name("ops") else {
            panic!("two groups named ops are ambiguous");
        };
        assert!(message.contains("g-2, g-3"), "{message}");
    }
}
