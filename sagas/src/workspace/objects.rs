//! What a workspace's cluster should hold, computed from the workspace's state and its plan:
//!
//! * a Namespace per project, labelled with its project and parent;
//! * in each project's namespace *and those of its descendant projects* ("native" hierarchy:
//!   the control plane propagates, as HNC would), a Role per custom role of the project and a
//!   RoleBinding per role assignment, to the group `hxb:<group name>`;
//! * the plan's ResourceQuota and LimitRange in every project namespace;
//! * ClusterRoleBindings: `hxb:WSAdmins` → `cluster-admin`, `hxb:WorkspaceMembers` → `view`, and
//!   one per cluster role assignment.
//!
//! Every object carries the managed-by and workspace labels, so a pass can find what the
//! control plane owns, restore what drifted and remove what no longer has a resource. Objects
//! are named after the ids of what they stand for (`role-…`, `ra-…`), which never collide.

use hexabase_command::rbac::{PresetRole, RoleRef};
use hexabase_command::workspace::{ClusterState, ADMINS_GROUP, MEMBERS_GROUP};
use hexabase_identity::issuer::CLAIM_PREFIX;
use serde_json::{json, Value};

use super::hnc::INHERITED_FROM;
pub use super::hnc::{Hierarchy, WorkspaceSettings};
pub use super::kinds::{
    labels, Desired, Kind, MANAGED_BY, MANAGER, PARENT_LABEL, PROJECT_LABEL, WORKSPACE_LABEL,
};
pub use crate::quota::Quota;
use crate::quota::{LIMIT_DEFAULT, LIMIT_DEFAULT_REQUEST};

/// The quota's and the limit range's names in each project namespace.
pub const QUOTA_NAME: &str = "hexabase-plan";
pub const LIMITS_NAME: &str = "hexabase-defaults";
/// The preset groups' cluster role bindings.
pub const ADMINS_BINDING: &str = "hexabase-wsadmins";
pub const MEMBERS_BINDING: &str = "hexabase-workspace-members";

fn object(
    state: &ClusterState,
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
    extra_labels: &[(&str, &str)],
    body: Value,
) -> Desired {
    let mut manifest = json!({
        "apiVersion": kind.api_version(),
        "kind": kind.gvk().2,
        "metadata": { "name": name, "labels": labels(state, extra_labels) },
    });
    if let Some(namespace) = namespace {
        manifest["metadata"]["namespace"] = json!(namespace);
    }
    if let (Some(target), Some(fields)) = (manifest.as_object_mut(), body.as_object()) {
        for (key, value) in fields {
            target.insert(key.clone(), value.clone());
        }
    }
    Desired {
        kind,
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
        manifest,
    }
}

fn group_subject(name: &str) -> Value {
    json!([{
        "kind": "Group",
        "apiGroup": "rbac.authorization.k8s.io",
        "name": format!("{CLAIM_PREFIX}{name}"),
    }])
}

fn cluster_role(name: &str) -> Value {
    json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name })
}

/// Every object `state` asks for, in apply order (namespaces first): roles and bindings reach
/// the descendants' namespaces as copies (`Native`) or through HNC, installed beside them.
pub fn desired(state: &ClusterState, quota: &Quota, layout: &WorkspaceSettings) -> Vec<Desired> {
    let mut out = Vec::new();
    let hnc = layout.hierarchy == Hierarchy::Hnc;
    if hnc {
        out.extend(super::hnc::installation(state, &layout.hnc_image));
    }
    let name_of = |project: &hexabase_command::ProjectId| {
        state
            .projects
            .iter()
            .find(|p| &p.id == project)
            .map(|p| p.name.as_str())
    };
    for project in &state.projects {
        let mut extra = vec![(PROJECT_LABEL, project.id.as_str())];
        let parent = project.parent.as_ref().and_then(&name_of);
        if let Some(parent) = parent {
            extra.push((PARENT_LABEL, parent));
        }
        out.push(object(
            state,
            Kind::Namespace,
            None,
            &project.name,
            &extra,
            json!({}),
        ));
        if let (true, Some(parent)) = (hnc, parent) {
            out.push(super::hnc::hierarchy_configuration(
                state,
                &project.name,
                parent,
            ));
        }
    }
    for project in &state.projects {
        let origin = [(PROJECT_LABEL, project.id.as_str())];
        let targets = if hnc {
            state
                .projects
                .iter()
                .filter(|p| p.id == project.id)
                .collect()
        } else {
            state.descendants_of(&project.id)
        };
        for target in targets {
            let ns = Some(target.name.as_str());
            for role in state.roles.iter().filter(|r| r.project == project.id) {
                let rules: Vec<Value> = role
                    .rules
                    .iter()
                    .map(|rule| {
                        let mut value = json!({
                            "apiGroups": rule.api_groups,
                            "resources": rule.resources,
                            "verbs": rule.verbs,
                        });
                        if !rule.resource_names.is_empty() {
                            value["resourceNames"] = json!(rule.resource_names);
                        }
                        value
                    })
                    .collect();
                let mut role_object = object(
                    state,
                    Kind::Role,
                    ns,
                    role.id.as_str(),
                    &origin,
                    json!({ "rules": rules }),
                );
                role_object.manifest["metadata"]["annotations"] =
                    json!({ "hexabase.ai/role-name": role.name });
                out.push(role_object);
            }
            for assignment in state.assignments.iter().filter(|a| a.project == project.id) {
                let Some(group) = state.groups.get(&assignment.group) else {
                    continue;
                };
                let role_ref = match &assignment.role {
                    RoleRef::Preset(preset) => cluster_role(preset.as_str()),
                    RoleRef::Custom(role) => json!({
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": role.as_str(),
                    }),
                };
                out.push(object(
                    state,
                    Kind::RoleBinding,
                    ns,
                    assignment.id.as_str(),
                    &origin,
                    json!({ "subjects": group_subject(group), "roleRef": role_ref }),
                ));
            }
        }
    }
    for project in &state.projects {
        let ns = Some(project.name.as_str());
        out.push(object(
            state,
            Kind::ResourceQuota,
            ns,
            QUOTA_NAME,
            &[],
            json!({ "spec": { "hard": {
                "requests.cpu": quota.cpu,
                "limits.cpu": quota.cpu,
                "requests.memory": quota.memory,
                "limits.memory": quota.memory,
                "requests.storage": quota.storage,
                "pods": quota.pods.to_string(),
                "services": quota.services.to_string(),
                "persistentvolumeclaims": quota.persistent_volume_claims.to_string(),
            }}}),
        ));
        out.push(object(
            state,
            Kind::LimitRange,
            ns,
            LIMITS_NAME,
            &[],
            json!({ "spec": { "limits": [{
                "type": "Container",
                "default": LIMIT_DEFAULT.json(),
                "defaultRequest": LIMIT_DEFAULT_REQUEST.json(),
            }]}}),
        ));
    }
    out.push(object(
        state,
        Kind::ClusterRoleBinding,
        None,
        ADMINS_BINDING,
        &[],
        json!({ "subjects": group_subject(ADMINS_GROUP), "roleRef": cluster_role("cluster-admin") }),
    ));
    out.push(object(
        state,
        Kind::ClusterRoleBinding,
        None,
        MEMBERS_BINDING,
        &[],
        json!({ "subjects": group_subject(MEMBERS_GROUP), "roleRef": cluster_role("view") }),
    ));
    for assignment in &state.cluster_assignments {
        let Some(group) = state.groups.get(&assignment.group) else {
            continue;
        };
        let role = match assignment.role {
            PresetRole::Admin => "admin",
            PresetRole::Edit => "edit",
            PresetRole::View => "view",
        };
        out.push(object(
            state,
            Kind::ClusterRoleBinding,
            None,
            &format!("hexabase-{}", assignment.id),
            &[],
            json!({ "subjects": group_subject(group), "roleRef": cluster_role(role) }),
        ));
    }
    out
}

/// The label selector of what the control plane manages in `workspace`'s cluster.
/// What the control plane manages in the workspace's cluster (and not the copies HNC made of
/// it, which carry its labels too).
pub fn selector(workspace: &str) -> String {
    format!("{MANAGED_BY}={MANAGER},{WORKSPACE_LABEL}={workspace},!{INHERITED_FROM}")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hexabase_command::rbac::PolicyRule;
    use hexabase_command::workspace::{AssignmentState, ProjectState, RoleState, WorkspaceStatus};
    use hexabase_command::{
        GroupId, OrganizationId, ProjectId, RoleAssignmentId, RoleId, WorkspaceId,
    };

    use super::*;

    fn native() -> WorkspaceSettings {
        WorkspaceSettings {
            hierarchy: Hierarchy::Native,
            hnc_image: "hnc".into(),
        }
    }

    fn quota() -> Quota {
        Quota {
            cpu: "4".into(),
            memory: "8Gi".into(),
            storage: "50Gi".into(),
            pods: 50,
            services: 20,
            persistent_volume_claims: 10,
        }
    }

    #[test]
    fn bindings_and_roles_of_a_project_reach_its_descendants_only() {
        let (parent, child, other) = (
            ProjectId::generate(),
            ProjectId::generate(),
            ProjectId::generate(),
        );
        let (devs, role, assignment) = (
            GroupId::generate(),
            RoleId::generate(),
            RoleAssignmentId::generate(),
        );
        let state = ClusterState {
            workspace: WorkspaceId::generate(),
            organization: OrganizationId::generate(),
            plan: "starter".into(),
            status: WorkspaceStatus::Ready,
            dedicated_nodes: Default::default(),
            node_requests: BTreeMap::new(),
            groups: BTreeMap::from([(devs.clone(), "developers".to_owned())]),
            projects: vec![
                ProjectState {
                    id: parent.clone(),
                    name: "team".into(),
                    parent: None,
                },
                ProjectState {
                    id: child.clone(),
                    name: "team-api".into(),
                    parent: Some(parent.clone()),
                },
                ProjectState {
                    id: other,
                    name: "other".into(),
                    parent: None,
                },
            ],
            roles: vec![RoleState {
                id: role.clone(),
                project: parent.clone(),
                name: "pods-reader".into(),
                rules: vec![PolicyRule {
                    api_groups: vec!["".into()],
                    resources: vec!["pods".into()],
                    verbs: vec!["get".into()],
                    resource_names: vec![],
                }],
            }],
            assignments: vec![AssignmentState {
                id: assignment.clone(),
                project: parent,
                group: devs,
                role: RoleRef::Custom(role.clone()),
            }],
            cluster_assignments: vec![],
        };
        let objects = desired(&state, &quota(), &native());
        let placed = |kind: Kind, name: &str| -> Vec<String> {
            let mut found: Vec<String> = objects
                .iter()
                .filter(|o| o.kind == kind && o.name == name)
                .filter_map(|o| o.namespace.clone())
                .collect();
            found.sort();
            found
        };
        assert_eq!(
            placed(Kind::RoleBinding, assignment.as_str()),
            ["team", "team-api"]
        );
        assert_eq!(placed(Kind::Role, role.as_str()), ["team", "team-api"]);
        assert_eq!(
            placed(Kind::ResourceQuota, QUOTA_NAME),
            ["other", "team", "team-api"]
        );
        let binding = objects
            .iter()
            .find(|o| o.kind == Kind::RoleBinding)
            .unwrap();
        assert_eq!(binding.manifest["subjects"][0]["name"], "hxb:developers");
        assert_eq!(binding.manifest["roleRef"]["kind"], "Role");
        let child_ns = objects
            .iter()
            .find(|o| o.kind == Kind::Namespace && o.name == "team-api")
            .unwrap();
        assert_eq!(
            child_ns.manifest["metadata"]["labels"][PARENT_LABEL],
            "team"
        );
        let admins = objects.iter().find(|o| o.name == ADMINS_BINDING).unwrap();
        assert_eq!(admins.manifest["roleRef"]["name"], "cluster-admin");
        assert_eq!(admins.manifest["subjects"][0]["name"], "hxb:WSAdmins");
        assert!(objects
            .iter()
            .all(|o| o.manifest["metadata"]["labels"][MANAGED_BY] == MANAGER));
        assert!(!objects
            .iter()
            .any(|o| o.kind == Kind::HierarchyConfiguration));

        // With HNC: roles and bindings only where they were made, the child's namespace names
        // its parent, and HNC itself is installed.
        let hnc = WorkspaceSettings {
            hierarchy: Hierarchy::Hnc,
            hnc_image: "registry.example/hnc-manager:v1.1.0".into(),
        };
        let objects = desired(&state, &quota(), &hnc);
        let placed = |kind: Kind, name: &str| -> Vec<String> {
            objects
                .iter()
                .filter(|o| o.kind == kind && o.name == name)
                .filter_map(|o| o.namespace.clone())
                .collect()
        };
        assert_eq!(placed(Kind::RoleBinding, assignment.as_str()), ["team"]);
        assert_eq!(placed(Kind::Role, role.as_str()), ["team"]);
        let hierarchy: Vec<&Desired> = objects
            .iter()
            .filter(|o| o.kind == Kind::HierarchyConfiguration)
            .collect();
        assert_eq!(hierarchy.len(), 1);
        assert_eq!(hierarchy[0].namespace.as_deref(), Some("team-api"));
        assert_eq!(hierarchy[0].manifest["spec"]["parent"], "team");
        let crds: Vec<&str> = objects
            .iter()
            .filter(|o| o.kind == Kind::CustomResourceDefinition)
            .map(|o| o.name.as_str())
            .collect();
        assert!(
            crds.contains(&"hierarchyconfigurations.hnc.x-k8s.io"),
            "{crds:?}"
        );
        assert_eq!(crds.len(), 4);
        let manager = objects.iter().find(|o| o.kind == Kind::Deployment).unwrap();
        assert_eq!(
            manager.manifest["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.example/hnc-manager:v1.1.0"
        );
        // Kinds are applied after the kinds they need.
        let order = |kind: Kind| Kind::ALL.iter().position(|k| *k == kind).unwrap();
        assert!(order(Kind::CustomResourceDefinition) < order(Kind::HierarchyConfiguration));
        assert!(order(Kind::Namespace) < order(Kind::HierarchyConfiguration));
        assert!(selector("ws").contains("!hnc.x-k8s.io/inherited-from"));
    }
}
