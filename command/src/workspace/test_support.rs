//! What the workspace's tests share: a workspace requested by a user, and the groups, projects,
//! roles and assignments several concerns' tests build on.

use cqrs_es::test::TestFramework;

use super::{Workspace, WorkspaceEvent};
use crate::id::{
    GroupId, OrganizationId, ProjectId, RoleAssignmentId, RoleId, UserId, WorkspaceId,
};
use crate::rbac::{PolicyRule, RoleRef};

pub(super) type Given = TestFramework<Workspace>;

pub(super) const ORG: &str = "org-0192f0c1a8b47c3e9d2a51b0c4e6f7a8";
pub(super) const MEMBERS: &str = "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7a1";
pub(super) const ADMINS: &str = "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7a2";
pub(super) const OPS: &str = "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7b1";
pub(super) const WEB: &str = "prj-0192f0c1a8b47c3e9d2a51b0c4e6f7c1";
pub(super) const ROLE: &str = "role-0192f0c1a8b47c3e9d2a51b0c4e6f7d1";
pub(super) const RA: &str = "ra-0192f0c1a8b47c3e9d2a51b0c4e6f7e1";

pub(super) fn requested(id: &WorkspaceId, by: &UserId) -> WorkspaceEvent {
    WorkspaceEvent::WorkspaceRequested {
        id: id.clone(),
        org_id: OrganizationId::parse(ORG).unwrap(),
        name: "Staging".into(),
        plan: "starter".into(),
        requested_by: by.clone(),
        members_group: GroupId::parse(MEMBERS).unwrap(),
        admins_group: GroupId::parse(ADMINS).unwrap(),
    }
}

pub(super) fn group(id: &str, name: &str, parent: &str) -> WorkspaceEvent {
    WorkspaceEvent::GroupCreated {
        id: GroupId::parse(id).unwrap(),
        name: name.into(),
        parent: Some(GroupId::parse(parent).unwrap()),
    }
}

pub(super) fn project(id: &str, name: &str, parent: Option<&str>) -> WorkspaceEvent {
    WorkspaceEvent::ProjectCreated {
        id: ProjectId::parse(id).unwrap(),
        name: name.into(),
        parent: parent.map(|p| ProjectId::parse(p).unwrap()),
    }
}

pub(super) fn pods_reader() -> Vec<PolicyRule> {
    vec![PolicyRule {
        api_groups: vec!["".into()],
        resources: vec!["pods".into()],
        verbs: vec!["get".into(), "list".into()],
        resource_names: vec![],
    }]
}

/// A workspace whose group `ops` has the custom role `pod-reader` in project `web`.
pub(super) fn with_rbac(id: &WorkspaceId, alice: &UserId) -> Vec<WorkspaceEvent> {
    vec![
        requested(id, alice),
        group(OPS, "ops", MEMBERS),
        project(WEB, "web", None),
        WorkspaceEvent::RoleCreated {
            project: ProjectId::parse(WEB).unwrap(),
            id: RoleId::parse(ROLE).unwrap(),
            name: "pod-reader".into(),
            rules: pods_reader(),
        },
        WorkspaceEvent::RoleAssigned {
            project: ProjectId::parse(WEB).unwrap(),
            id: RoleAssignmentId::parse(RA).unwrap(),
            group: GroupId::parse(OPS).unwrap(),
            role: RoleRef::Custom(RoleId::parse(ROLE).unwrap()),
        },
    ]
}
