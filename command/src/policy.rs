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

#[cfg(test)]
mod tests {
    use super::*;

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
