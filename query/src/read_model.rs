//! The read models: each one's name, the tables it owns, the aggregate types it is built from,
//! and how its progress is recorded — what the projector needs to build it and what a read
//! needs to know whether it has caught up with a write.

use cqrs_es::Aggregate;
use hexabase_command::credential::Credential;
use hexabase_command::organization::Organization;
use hexabase_command::user::User;
use hexabase_command::workspace::Workspace;

/// Aggregate types whose events a read model applies without a checkpoint per aggregate:
/// applying one depends on no earlier event of its aggregate, and it writes one row keyed by the
/// event's position, so applying it again writes nothing. Whether one was applied is read from
/// that row. (An aggregate with a single event each, an issued token, would otherwise leave a
/// checkpoint row per aggregate for good.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByPosition {
    pub aggregate_types: &'static [&'static str],
    /// The table holding one row per applied event, with the event's position in `position`.
    pub table: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadModel {
    pub name: &'static str,
    /// Tables it owns; `replay` empties them before rebuilding.
    pub tables: &'static [&'static str],
    /// The aggregate types whose events build it; the others leave it untouched.
    pub aggregate_types: &'static [&'static str],
    /// Types applied by position instead of in order behind a checkpoint per aggregate.
    pub by_position: Option<ByPosition>,
}

impl ReadModel {
    pub fn handles(&self, aggregate_type: &str) -> bool {
        self.aggregate_types.contains(&aggregate_type)
    }

    /// Whether events of `aggregate_type` are applied by position.
    pub fn applies_by_position(&self, aggregate_type: &str) -> bool {
        self.by_position
            .is_some_and(|b| b.aggregate_types.contains(&aggregate_type))
    }
}

// The aggregate types, as the event store names them.
const ORGANIZATION: &str = Organization::TYPE;
const WORKSPACE: &str = Workspace::TYPE;
const USER: &str = User::TYPE;
const CREDENTIAL: &str = Credential::TYPE;

pub const ORGANIZATIONS: ReadModel = ReadModel {
    name: "organizations",
    tables: &[
        "rm_organizations",
        "rm_organization_members",
        "rm_organization_invitations",
        "rm_billing",
    ],
    aggregate_types: &[ORGANIZATION],
    by_position: None,
};

/// An organization's and a token's events name their organization themselves, so each is
/// written on its own, keyed by position; a workspace's later events need the organization its
/// first event named, so they are applied in order.
pub const AUDIT: ReadModel = ReadModel {
    name: "audit",
    tables: &["rm_audit_events", "rm_audit_scopes"],
    aggregate_types: &[ORGANIZATION, WORKSPACE, CREDENTIAL],
    by_position: Some(ByPosition {
        aggregate_types: &[ORGANIZATION, CREDENTIAL],
        table: "rm_audit_events",
    }),
};

pub const USERS: ReadModel = ReadModel {
    name: "users",
    tables: &["rm_users", "rm_user_identities"],
    aggregate_types: &[USER],
    by_position: None,
};

pub const WORKSPACES: ReadModel = ReadModel {
    name: "workspaces",
    tables: &[
        "rm_workspaces",
        "rm_workspace_groups",
        "rm_workspace_group_members",
        "rm_projects",
        "rm_roles",
        "rm_role_assignments",
        "rm_cluster_role_assignments",
        "rm_node_requests",
        "rm_dedicated_nodes",
    ],
    aggregate_types: &[WORKSPACE],
    by_position: None,
};

/// Every read model.
pub fn all() -> &'static [&'static ReadModel] {
    &[&ORGANIZATIONS, &AUDIT, &USERS, &WORKSPACES]
}

pub fn by_name(name: &str) -> Option<&'static ReadModel> {
    all().iter().copied().find(|model| model.name == name)
}
