//! The workspace aggregate, given events, when commands: lifecycle, groups, projects, RBAC.

use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;

use super::*;
use crate::id::{
    ClusterRoleAssignmentId, GroupId, OrganizationId, ProjectId, RoleAssignmentId, RoleId, UserId,
    WorkspaceId,
};
use crate::rbac::{PolicyRule, PresetRole, RoleRef};
use crate::values::{DisplayName, GroupName};

type Given = TestFramework<Workspace>;

const ORG: &str = "org-0192f0c1a8b47c3e9d2a51b0c4e6f7a8";
const MEMBERS: &str = "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7a1";
const ADMINS: &str = "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7a2";

fn requested(id: &WorkspaceId, by: &UserId) -> WorkspaceEvent {
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

fn name(raw: &str) -> DisplayName {
    DisplayName::parse("name", raw).unwrap()
}

#[test]
fn tokens_go_to_group_members_with_ancestor_groups_while_the_workspace_lives() {
    let (id, alice, bob) = (
        WorkspaceId::generate(),
        UserId::generate(),
        UserId::generate(),
    );
    let mut ws = Workspace::default();
    ws.apply(requested(&id, &alice));
    let org = OrganizationId::parse(ORG).unwrap();
    assert_eq!(
        ws.token_grant(&alice),
        Some((
            org,
            vec!["WSAdmins".to_owned(), "WorkspaceMembers".to_owned()]
        ))
    );
    assert_eq!(ws.token_grant(&bob), None, "in no group");
    ws.apply(WorkspaceEvent::WorkspaceDeletionRequested {
        requested_by: alice.clone(),
    });
    assert_eq!(ws.token_grant(&alice), None, "being deleted");
    assert_eq!(
        Workspace::default().token_grant(&alice),
        None,
        "no workspace"
    );
}

#[test]
fn a_request_records_the_workspace_with_its_preset_groups_once() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    let request = WorkspaceCommand::RequestWorkspace {
        id: id.clone(),
        org_id: OrganizationId::parse(ORG).unwrap(),
        name: name("Staging"),
        plan: "starter".into(),
        members_group: GroupId::parse(MEMBERS).unwrap(),
        admins_group: GroupId::parse(ADMINS).unwrap(),
        actor: alice.clone(),
    };
    Given::with(())
        .given_no_previous_events()
        .when(request.clone())
        .then_expect_events(vec![requested(&id, &alice)]);
    Given::with(())
        .given(vec![requested(&id, &alice)])
        .when(request)
        .then_expect_error(WorkspaceError::AlreadyExists);
}

#[test]
fn rename_and_plan_change_record_only_changes() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    Given::with(())
        .given(vec![requested(&id, &alice)])
        .when(WorkspaceCommand::RenameWorkspace {
            name: name("Production"),
        })
        .then_expect_events(vec![WorkspaceEvent::WorkspaceRenamed {
            name: "Production".into(),
        }]);
    Given::with(())
        .given(vec![requested(&id, &alice)])
        .when(WorkspaceCommand::RenameWorkspace {
            name: name("Staging"),
        })
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![requested(&id, &alice)])
        .when(WorkspaceCommand::ChangePlan {
            plan: "team".into(),
        })
        .then_expect_events(vec![WorkspaceEvent::WorkspacePlanChanged {
            plan: "team".into(),
        }]);
}

#[test]
fn deletion_is_requested_once_and_freezes_the_workspace() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    let deleting = WorkspaceEvent::WorkspaceDeletionRequested {
        requested_by: alice.clone(),
    };
    Given::with(())
        .given(vec![requested(&id, &alice)])
        .when(WorkspaceCommand::RequestDeletion {
            actor: alice.clone(),
        })
        .then_expect_events(vec![deleting.clone()]);
    Given::with(())
        .given(vec![requested(&id, &alice), deleting.clone()])
        .when(WorkspaceCommand::RequestDeletion {
            actor: alice.clone(),
        })
        .then_expect_error(WorkspaceError::BeingDeleted);
    Given::with(())
        .given(vec![requested(&id, &alice), deleting])
        .when(WorkspaceCommand::RenameWorkspace { name: name("X") })
        .then_expect_error(WorkspaceError::BeingDeleted);
}

#[test]
fn commands_on_a_missing_workspace_are_not_found() {
    Given::with(())
        .given_no_previous_events()
        .when(WorkspaceCommand::ChangePlan {
            plan: "team".into(),
        })
        .then_expect_error(WorkspaceError::NotFound);
}

fn group(id: &str, name: &str, parent: &str) -> WorkspaceEvent {
    WorkspaceEvent::GroupCreated {
        id: GroupId::parse(id).unwrap(),
        name: name.into(),
        parent: Some(GroupId::parse(parent).unwrap()),
    }
}

const OPS: &str = "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7b1";
const ONCALL: &str = "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7b2";

fn gname(raw: &str) -> GroupName {
    GroupName::parse("name", raw).unwrap()
}

#[test]
fn groups_go_below_workspace_members_by_default_with_unique_names() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    Given::with(())
        .given(vec![requested(&id, &alice)])
        .when(WorkspaceCommand::CreateGroup {
            id: GroupId::parse(OPS).unwrap(),
            name: gname("ops"),
            parent: None,
        })
        .then_expect_events(vec![group(OPS, "ops", MEMBERS)]);
    Given::with(())
        .given(vec![requested(&id, &alice), group(OPS, "ops", MEMBERS)])
        .when(WorkspaceCommand::CreateGroup {
            id: GroupId::parse(ONCALL).unwrap(),
            name: gname("ops"),
            parent: None,
        })
        .then_expect_error(WorkspaceError::GroupNameTaken("ops".into()));
    Given::with(())
        .given(vec![requested(&id, &alice)])
        .when(WorkspaceCommand::CreateGroup {
            id: GroupId::parse(ONCALL).unwrap(),
            name: gname("oncall"),
            parent: Some(GroupId::parse(OPS).unwrap()),
        })
        .then_expect_error(WorkspaceError::GroupNotFound(OPS.into()));
}

#[test]
fn presets_stay_groups_with_children_stay_and_cycles_are_refused() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    let history = vec![
        requested(&id, &alice),
        group(OPS, "ops", MEMBERS),
        group(ONCALL, "oncall", OPS),
    ];
    Given::with(())
        .given(history.clone())
        .when(WorkspaceCommand::DeleteGroup {
            id: GroupId::parse(ADMINS).unwrap(),
        })
        .then_expect_error(WorkspaceError::PresetGroup("WSAdmins".into()));
    Given::with(())
        .given(history.clone())
        .when(WorkspaceCommand::DeleteGroup {
            id: GroupId::parse(OPS).unwrap(),
        })
        .then_expect_error(WorkspaceError::GroupHasChildren("oncall".into()));
    Given::with(())
        .given(history.clone())
        .when(WorkspaceCommand::UpdateGroup {
            id: GroupId::parse(OPS).unwrap(),
            name: None,
            parent: Some(GroupId::parse(ONCALL).unwrap()),
        })
        .then_expect_error(WorkspaceError::GroupCycle);
    Given::with(())
        .given(history)
        .when(WorkspaceCommand::UpdateGroup {
            id: GroupId::parse(ONCALL).unwrap(),
            name: Some(gname("pager")),
            parent: Some(GroupId::parse(ADMINS).unwrap()),
        })
        .then_expect_events(vec![
            WorkspaceEvent::GroupRenamed {
                id: GroupId::parse(ONCALL).unwrap(),
                name: "pager".into(),
            },
            WorkspaceEvent::GroupMoved {
                id: GroupId::parse(ONCALL).unwrap(),
                parent: GroupId::parse(ADMINS).unwrap(),
            },
        ]);
}

#[test]
fn members_join_once_and_the_last_wsadmin_stays() {
    let (id, alice, bob) = (
        WorkspaceId::generate(),
        UserId::generate(),
        UserId::generate(),
    );
    let ops = GroupId::parse(OPS).unwrap();
    let admins = GroupId::parse(ADMINS).unwrap();
    Given::with(())
        .given(vec![requested(&id, &alice), group(OPS, "ops", MEMBERS)])
        .when(WorkspaceCommand::AddGroupMember {
            group: ops.clone(),
            user: bob.clone(),
        })
        .then_expect_events(vec![WorkspaceEvent::GroupMemberAdded {
            group: ops.clone(),
            user: bob.clone(),
        }]);
    Given::with(())
        .given(vec![requested(&id, &alice)])
        .when(WorkspaceCommand::AddGroupMember {
            group: admins.clone(),
            user: alice.clone(),
        })
        .then_expect_error(WorkspaceError::AlreadyInGroup(alice.to_string()));
    Given::with(())
        .given(vec![requested(&id, &alice)])
        .when(WorkspaceCommand::RemoveGroupMember {
            group: admins.clone(),
            user: alice.clone(),
        })
        .then_expect_error(WorkspaceError::LastWsAdmin);
    // A member of a group below WSAdmins is a WSAdmin too.
    Given::with(())
        .given(vec![
            requested(&id, &alice),
            group(OPS, "ops", ADMINS),
            WorkspaceEvent::GroupMemberAdded {
                group: ops,
                user: bob,
            },
        ])
        .when(WorkspaceCommand::RemoveGroupMember {
            group: admins.clone(),
            user: alice.clone(),
        })
        .then_expect_events(vec![WorkspaceEvent::GroupMemberRemoved {
            group: admins,
            user: alice,
        }]);
}

const WEB: &str = "prj-0192f0c1a8b47c3e9d2a51b0c4e6f7c1";
const API: &str = "prj-0192f0c1a8b47c3e9d2a51b0c4e6f7c2";

fn project(id: &str, name: &str, parent: Option<&str>) -> WorkspaceEvent {
    WorkspaceEvent::ProjectCreated {
        id: ProjectId::parse(id).unwrap(),
        name: name.into(),
        parent: parent.map(|p| ProjectId::parse(p).unwrap()),
    }
}

fn create_project(id: &str, name: &str, parent: Option<&str>, max: u32) -> WorkspaceCommand {
    WorkspaceCommand::CreateProject {
        id: ProjectId::parse(id).unwrap(),
        name: crate::values::DnsLabel::parse("name", name).unwrap(),
        parent: parent.map(|p| ProjectId::parse(p).unwrap()),
        max_projects: max,
    }
}

#[test]
fn projects_have_unique_names_a_limit_and_an_acyclic_hierarchy() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    Given::with(())
        .given(vec![requested(&id, &alice)])
        .when(create_project(WEB, "web", None, 5))
        .then_expect_events(vec![project(WEB, "web", None)]);
    Given::with(())
        .given(vec![requested(&id, &alice), project(WEB, "web", None)])
        .when(create_project(API, "web", None, 5))
        .then_expect_error(WorkspaceError::ProjectNameTaken("web".into()));
    Given::with(())
        .given(vec![requested(&id, &alice), project(WEB, "web", None)])
        .when(create_project(API, "api", None, 1))
        .then_expect_error(WorkspaceError::ProjectLimit(1));
    Given::with(())
        .given(vec![
            requested(&id, &alice),
            project(WEB, "web", None),
            project(API, "api", Some(WEB)),
        ])
        .when(WorkspaceCommand::MoveProject {
            id: ProjectId::parse(WEB).unwrap(),
            parent: Some(ProjectId::parse(API).unwrap()),
        })
        .then_expect_error(WorkspaceError::ProjectCycle);
    Given::with(())
        .given(vec![
            requested(&id, &alice),
            project(WEB, "web", None),
            project(API, "api", Some(WEB)),
        ])
        .when(WorkspaceCommand::DeleteProject {
            id: ProjectId::parse(WEB).unwrap(),
        })
        .then_expect_error(WorkspaceError::ProjectHasChildren("api".into()));
}

const ROLE: &str = "role-0192f0c1a8b47c3e9d2a51b0c4e6f7d1";
const RA: &str = "ra-0192f0c1a8b47c3e9d2a51b0c4e6f7e1";
const CRA: &str = "cra-0192f0c1a8b47c3e9d2a51b0c4e6f7f1";

fn pods_reader() -> Vec<PolicyRule> {
    vec![PolicyRule {
        api_groups: vec!["".into()],
        resources: vec!["pods".into()],
        verbs: vec!["get".into(), "list".into()],
        resource_names: vec![],
    }]
}

fn with_rbac(id: &WorkspaceId, alice: &UserId) -> Vec<WorkspaceEvent> {
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

#[test]
fn custom_roles_are_validated_and_wildcards_need_a_workspace_administrator() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    let create =
        |name: &str, rules: Vec<PolicyRule>, allow_wildcards| WorkspaceCommand::CreateRole {
            project: ProjectId::parse(WEB).unwrap(),
            id: RoleId::generate(),
            name: crate::values::DnsLabel::parse("name", name).unwrap(),
            rules,
            allow_wildcards,
        };
    let mut wild = pods_reader();
    wild[0].verbs = vec!["*".into()];
    let base = vec![requested(&id, &alice), project(WEB, "web", None)];
    assert!(matches!(
        Given::with(())
            .given(base.clone())
            .when(create("everything", wild.clone(), false))
            .inspect_result(),
        Err(WorkspaceError::InvalidRules(_))
    ));
    assert!(Given::with(())
        .given(base.clone())
        .when(create("everything", wild, true))
        .inspect_result()
        .is_ok());
    Given::with(())
        .given(base)
        .when(create("admin", pods_reader(), true))
        .then_expect_error(WorkspaceError::RoleNameTaken("admin".into()));
}

#[test]
fn groups_and_roles_in_use_stay_until_their_assignments_go() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    Given::with(())
        .given(with_rbac(&id, &alice))
        .when(WorkspaceCommand::DeleteGroup {
            id: GroupId::parse(OPS).unwrap(),
        })
        .then_expect_error(WorkspaceError::InUse(RA.into()));
    Given::with(())
        .given(with_rbac(&id, &alice))
        .when(WorkspaceCommand::DeleteRole {
            project: ProjectId::parse(WEB).unwrap(),
            id: RoleId::parse(ROLE).unwrap(),
        })
        .then_expect_error(WorkspaceError::InUse(RA.into()));
    Given::with(())
        .given(with_rbac(&id, &alice))
        .when(WorkspaceCommand::AssignRole {
            project: ProjectId::parse(WEB).unwrap(),
            id: RoleAssignmentId::generate(),
            group: GroupId::parse(OPS).unwrap(),
            role: RoleRef::Custom(RoleId::parse(ROLE).unwrap()),
        })
        .then_expect_error(WorkspaceError::AlreadyAssigned(RA.into()));
    let mut history = with_rbac(&id, &alice);
    history.push(WorkspaceEvent::ClusterRoleAssigned {
        id: ClusterRoleAssignmentId::parse(CRA).unwrap(),
        group: GroupId::parse(OPS).unwrap(),
        role: PresetRole::View,
    });
    history.push(WorkspaceEvent::RoleUnassigned {
        project: ProjectId::parse(WEB).unwrap(),
        id: RoleAssignmentId::parse(RA).unwrap(),
    });
    Given::with(())
        .given(history)
        .when(WorkspaceCommand::DeleteGroup {
            id: GroupId::parse(OPS).unwrap(),
        })
        .then_expect_error(WorkspaceError::InUse(CRA.into()));
}

#[test]
fn a_deleted_projects_roles_and_assignments_go_with_it() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    let mut history = with_rbac(&id, &alice);
    history.push(WorkspaceEvent::ProjectDeleted {
        id: ProjectId::parse(WEB).unwrap(),
    });
    Given::with(())
        .given(history)
        .when(WorkspaceCommand::DeleteGroup {
            id: GroupId::parse(OPS).unwrap(),
        })
        .then_expect_events(vec![WorkspaceEvent::GroupDeleted {
            id: GroupId::parse(OPS).unwrap(),
        }]);
}

#[test]
fn provisioning_walks_requested_provisioning_ready_and_repeats_record_nothing() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    let task = "task-1".to_owned();
    let started = WorkspaceEvent::WorkspaceProvisioningStarted { task: task.clone() };
    Given::with(())
        .given(vec![requested(&id, &alice)])
        .when(WorkspaceCommand::StartProvisioning { task: task.clone() })
        .then_expect_events(vec![started.clone()]);
    Given::with(())
        .given(vec![requested(&id, &alice), started.clone()])
        .when(WorkspaceCommand::StartProvisioning { task: task.clone() })
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![requested(&id, &alice), started.clone()])
        .when(WorkspaceCommand::CompleteProvisioning)
        .then_expect_events(vec![WorkspaceEvent::WorkspaceProvisioned]);
    Given::with(())
        .given(vec![
            requested(&id, &alice),
            started.clone(),
            WorkspaceEvent::WorkspaceProvisioned,
        ])
        .when(WorkspaceCommand::CompleteProvisioning)
        .then_expect_events(vec![]);
    let mut ws = Workspace::default();
    for event in [
        requested(&id, &alice),
        started,
        WorkspaceEvent::WorkspaceProvisioned,
    ] {
        ws.apply(event);
    }
    assert_eq!(ws.status(), WorkspaceStatus::Ready);
}

#[test]
fn a_failure_is_recorded_once_and_a_deletion_meanwhile_keeps_the_workspace_deleting() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    let started = WorkspaceEvent::WorkspaceProvisioningStarted {
        task: "task-1".into(),
    };
    let failed = WorkspaceEvent::WorkspaceProvisioningFailed {
        reason: "no API server".into(),
    };
    Given::with(())
        .given(vec![requested(&id, &alice), started.clone()])
        .when(WorkspaceCommand::FailProvisioning {
            reason: "no API server".into(),
        })
        .then_expect_events(vec![failed.clone()]);
    Given::with(())
        .given(vec![requested(&id, &alice), started.clone(), failed])
        .when(WorkspaceCommand::FailProvisioning {
            reason: "again".into(),
        })
        .then_expect_events(vec![]);
    let deleting = WorkspaceEvent::WorkspaceDeletionRequested {
        requested_by: alice.clone(),
    };
    let mut ws = Workspace::default();
    for event in [
        requested(&id, &alice),
        started,
        deleting.clone(),
        WorkspaceEvent::WorkspaceProvisioned,
    ] {
        ws.apply(event);
    }
    assert_eq!(ws.status(), WorkspaceStatus::Deleting);
    Given::with(())
        .given(vec![requested(&id, &alice), deleting.clone()])
        .when(WorkspaceCommand::StartProvisioning {
            task: "task-2".into(),
        })
        .then_expect_error(WorkspaceError::BeingDeleted);
    Given::with(())
        .given(vec![requested(&id, &alice), deleting.clone()])
        .when(WorkspaceCommand::CompleteDeletion)
        .then_expect_events(vec![WorkspaceEvent::WorkspaceDeleted]);
    Given::with(())
        .given(vec![
            requested(&id, &alice),
            deleting,
            WorkspaceEvent::WorkspaceDeleted,
        ])
        .when(WorkspaceCommand::CompleteDeletion)
        .then_expect_events(vec![]);
}

#[test]
fn the_cluster_state_names_projects_below_a_project_at_any_depth() {
    let (id, alice) = (WorkspaceId::generate(), UserId::generate());
    let (a, b, c) = (
        ProjectId::generate(),
        ProjectId::generate(),
        ProjectId::generate(),
    );
    let mut ws = Workspace::default();
    ws.apply(requested(&id, &alice));
    for (project, name, parent) in [(&a, "a", None), (&b, "b", Some(&a)), (&c, "c", Some(&b))] {
        ws.apply(WorkspaceEvent::ProjectCreated {
            id: project.clone(),
            name: name.into(),
            parent: parent.cloned(),
        });
    }
    let state = ws.cluster_state().unwrap();
    let below_a: Vec<&str> = state
        .descendants_of(&a)
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(below_a, ["a", "b", "c"]);
    let below_c: Vec<&str> = state
        .descendants_of(&c)
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(below_c, ["c"]);
    assert_eq!(state.groups.len(), 2, "the presets");
}
