//! The one place that decides who may do what.
//!
//! Write commands consult it inside the aggregate (against the aggregate's own, authoritative
//! member list); reads consult it against the read model's member list. Callers that are not
//! members learn nothing: the answer is `NotFound`, as if the resource did not exist.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    Admin,
    Member,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Admin => "admin",
            OrgRole::Member => "member",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "admin" => Some(OrgRole::Admin),
            "member" => Some(OrgRole::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgAction {
    Read,
    ReadHistory,
    Rename,
    Invite,
    RemoveMember,
    ChangeRole,
    Delete,
    CreateWorkspace,
    /// Checkout, the billing portal, the billing state.
    ManageBilling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// A member without the right: 403.
    Forbidden,
    /// Not a member: the organization is invisible, 404.
    NotFound,
}

pub fn decide(role: Option<OrgRole>, action: OrgAction) -> Decision {
    match (role, action) {
        (None, _) => Decision::NotFound,
        (Some(OrgRole::Admin), _) => Decision::Allowed,
        (Some(OrgRole::Member), OrgAction::Read) => Decision::Allowed,
        (Some(OrgRole::Member), _) => Decision::Forbidden,
    }
}

/// What a caller is to a workspace, from the organization's and the workspace's membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkspaceAccess {
    pub org_role: Option<OrgRole>,
    /// In `WSAdmins` (or a group below it).
    pub ws_admin: bool,
    /// In any group of the workspace.
    pub ws_member: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceAction {
    Read,
    Update,
    Delete,
    /// Suspend or resume its cluster (what billing does too): organization admins only.
    Suspend,
}

/// Organization admins manage every workspace of their organization; `WSAdmins` manage theirs
/// (but do not suspend or resume it); the workspace's members read it; everybody else — other
/// members of the organization included — does not see it.
pub fn decide_workspace(access: WorkspaceAccess, action: WorkspaceAction) -> Decision {
    match access.org_role {
        None => Decision::NotFound,
        Some(OrgRole::Admin) => Decision::Allowed,
        Some(OrgRole::Member)
            if action == WorkspaceAction::Suspend && (access.ws_admin || access.ws_member) =>
        {
            Decision::Forbidden
        }
        Some(OrgRole::Member) if access.ws_admin => Decision::Allowed,
        Some(OrgRole::Member) if access.ws_member => match action {
            WorkspaceAction::Read => Decision::Allowed,
            WorkspaceAction::Update | WorkspaceAction::Delete | WorkspaceAction::Suspend => {
                Decision::Forbidden
            }
        },
        Some(OrgRole::Member) => Decision::NotFound,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectAction {
    Read,
    /// Custom roles and role assignments of the project.
    Manage,
}

/// Workspace administrators (organization admins, WSAdmins) manage every project; project
/// admins (in a group granted `admin` on the project, or the `admin` cluster role) manage
/// theirs; workspace members read; others see nothing.
pub fn decide_project(
    access: WorkspaceAccess,
    project_admin: bool,
    action: ProjectAction,
) -> Decision {
    match decide_workspace(access, WorkspaceAction::Read) {
        Decision::Allowed => {}
        other => return other,
    }
    if administers_workspace(access) || action == ProjectAction::Read || project_admin {
        Decision::Allowed
    } else {
        Decision::Forbidden
    }
}

/// Organization admins and WSAdmins: the only ones who may grant `*` in custom roles.
pub fn administers_workspace(access: WorkspaceAccess) -> bool {
    access.org_role == Some(OrgRole::Admin) || (access.org_role.is_some() && access.ws_admin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_are_managed_by_workspace_and_project_admins() {
        let access = |org_role, ws_admin, ws_member| WorkspaceAccess {
            org_role,
            ws_admin,
            ws_member,
        };
        let member = access(Some(OrgRole::Member), false, true);
        assert_eq!(
            decide_project(member, false, ProjectAction::Read),
            Decision::Allowed
        );
        assert_eq!(
            decide_project(member, false, ProjectAction::Manage),
            Decision::Forbidden
        );
        assert_eq!(
            decide_project(member, true, ProjectAction::Manage),
            Decision::Allowed
        );
        assert!(!administers_workspace(member));
        let wsadmin = access(Some(OrgRole::Member), true, true);
        assert_eq!(
            decide_project(wsadmin, false, ProjectAction::Manage),
            Decision::Allowed
        );
        assert!(administers_workspace(wsadmin));
        let outsider = access(Some(OrgRole::Member), false, false);
        assert_eq!(
            decide_project(outsider, true, ProjectAction::Read),
            Decision::NotFound
        );
        assert_eq!(
            decide_project(access(None, true, true), true, ProjectAction::Read),
            Decision::NotFound
        );
    }

    #[test]
    fn workspaces_are_managed_by_org_admins_and_wsadmins_read_by_members_hidden_from_others() {
        use WorkspaceAction::*;
        let access = |org_role, ws_admin, ws_member| WorkspaceAccess {
            org_role,
            ws_admin,
            ws_member,
        };
        for action in [Read, Update, Delete] {
            assert_eq!(
                decide_workspace(access(None, true, true), action),
                Decision::NotFound,
                "left the organization"
            );
            assert_eq!(
                decide_workspace(access(Some(OrgRole::Admin), false, false), action),
                Decision::Allowed
            );
            assert_eq!(
                decide_workspace(access(Some(OrgRole::Member), true, true), action),
                Decision::Allowed
            );
            assert_eq!(
                decide_workspace(access(Some(OrgRole::Member), false, false), action),
                Decision::NotFound
            );
        }
        let member = access(Some(OrgRole::Member), false, true);
        assert_eq!(decide_workspace(member, Read), Decision::Allowed);
        assert_eq!(decide_workspace(member, Update), Decision::Forbidden);
        assert_eq!(decide_workspace(member, Delete), Decision::Forbidden);
    }

    #[test]
    fn strangers_see_nothing_members_read_admins_manage() {
        use OrgAction::*;
        let all = [
            Read,
            ReadHistory,
            Rename,
            Invite,
            RemoveMember,
            ChangeRole,
            Delete,
            CreateWorkspace,
        ];
        for action in all {
            assert_eq!(decide(None, action), Decision::NotFound);
            assert_eq!(decide(Some(OrgRole::Admin), action), Decision::Allowed);
        }
        assert_eq!(decide(Some(OrgRole::Member), Read), Decision::Allowed);
        for action in all.into_iter().filter(|a| *a != Read) {
            assert_eq!(decide(Some(OrgRole::Member), action), Decision::Forbidden);
        }
    }
}
