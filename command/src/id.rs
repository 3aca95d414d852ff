//! Typed identifiers with readable prefixes (`org-…`, `hxb-usr-…`).
//!
//! The suffix is a UUIDv7 in simple form, so ids sort by creation time, which keeps keyset
//! pagination stable and cheap.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected `{prefix}` followed by 32 hex digits)")]
pub struct InvalidId {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

macro_rules! typed_id {
    ($name:ident, $prefix:literal, $kind:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, Uuid::now_v7().simple()))
            }

            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                let invalid = || InvalidId {
                    kind: $kind,
                    prefix: $prefix,
                    value: value.chars().take(80).collect(),
                };
                let suffix = value.strip_prefix($prefix).ok_or_else(invalid)?;
                let valid = suffix.len() == 32
                    && suffix
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if valid {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(invalid())
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

typed_id!(OrganizationId, "org-", "organization");
typed_id!(UserId, "hxb-usr-", "user");
typed_id!(WorkspaceId, "ws-", "workspace");
typed_id!(GroupId, "grp-", "group");
typed_id!(ProjectId, "prj-", "project");
typed_id!(RoleId, "role-", "role");
typed_id!(RoleAssignmentId, "ra-", "role assignment");
typed_id!(ClusterRoleAssignmentId, "cra-", "cluster role assignment");
typed_id!(TaskId, "task-", "task");
typed_id!(NodeRequestId, "nreq-", "node request");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = OrganizationId::generate();
        assert_eq!(OrganizationId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn wrong_prefix_or_suffix_is_refused() {
        assert!(OrganizationId::parse("ws-0192f0c1a8b47c3e9d2a51b0c4e6f7a8").is_err());
        assert!(OrganizationId::parse("org-xyz").is_err());
        assert!(OrganizationId::parse("org-0192F0C1A8B47C3E9D2A51B0C4E6F7A8").is_err());
        assert!(UserId::parse("hxb-usr-0192f0c1a8b47c3e9d2a51b0c4e6f7a8").is_ok());
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = UserId::generate();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert!(serde_json::from_str::<UserId>("\"nope\"").is_err());
    }
}
