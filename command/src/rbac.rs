//! Kubernetes RBAC as the control plane sees it: the preset roles every project and workspace
//! offers, custom roles made of PolicyRules, and what a valid rule is.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::RoleId;
use crate::values::InvalidValue;

/// The roles Kubernetes ships (`ClusterRole`s `admin`, `edit`, `view`), usable in every project
/// and, as cluster roles, across the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresetRole {
    Admin,
    Edit,
    View,
}

impl PresetRole {
    pub const ALL: [PresetRole; 3] = [PresetRole::Admin, PresetRole::Edit, PresetRole::View];

    pub fn as_str(self) -> &'static str {
        match self {
            PresetRole::Admin => "admin",
            PresetRole::Edit => "edit",
            PresetRole::View => "view",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }
}

/// The role a role assignment grants: a preset or a custom role of the project.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleRef {
    Preset(PresetRole),
    Custom(RoleId),
}

impl RoleRef {
    /// `admin`, `edit`, `view`, or a role id.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, InvalidValue> {
        if let Some(preset) = PresetRole::parse(value) {
            return Ok(RoleRef::Preset(preset));
        }
        RoleId::parse(value).map(RoleRef::Custom).map_err(|_| {
            InvalidValue::new(
                field,
                "must be `admin`, `edit`, `view` or a role id (`role-…`)",
            )
        })
    }
}

impl fmt::Display for RoleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleRef::Preset(p) => f.write_str(p.as_str()),
            RoleRef::Custom(id) => f.write_str(id.as_str()),
        }
    }
}

/// A Kubernetes PolicyRule (`rbac.authorization.k8s.io/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
}

/// The verbs Kubernetes authorizes on resources.
pub const KNOWN_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

pub const MAX_RULES: usize = 50;

fn name_like(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-./".contains(&b))
}

/// Check `rules`: known verbs, well-formed groups and resources, and `*` only when
/// `allow_wildcards` (the caller administers the whole workspace).
pub fn validate_rules(rules: &[PolicyRule], allow_wildcards: bool) -> Result<(), InvalidValue> {
    let invalid = |message: String| InvalidValue::new("rules", message);
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(invalid(format!("give 1 to {MAX_RULES} rules")));
    }
    for (i, rule) in rules.iter().enumerate() {
        if rule.api_groups.is_empty() || rule.resources.is_empty() || rule.verbs.is_empty() {
            return Err(invalid(format!(
                "rule {i}: api_groups, resources and verbs must not be empty (\"\" is the core API group)"
            )));
        }
        let wildcard = rule
            .api_groups
            .iter()
            .chain(&rule.resources)
            .chain(&rule.verbs)
            .any(|v| v == "*");
        if wildcard && !allow_wildcards {
            return Err(invalid(format!(
                "rule {i}: `*` grants everything, including what does not exist yet; only \
                 organization admins and WSAdmins may use it"
            )));
        }
        if let Some(verb) = rule
            .verbs
            .iter()
            .find(|v| *v != "*" && !KNOWN_VERBS.contains(&v.as_str()))
        {
            return Err(invalid(format!(
                "rule {i}: unknown verb `{}` (known: {})",
                verb.chars().take(40).collect::<String>(),
                KNOWN_VERBS.join(", ")
            )));
        }
        if let Some(group) = rule
            .api_groups
            .iter()
            .find(|g| !g.is_empty() && *g != "*" && !name_like(g))
        {
            return Err(invalid(format!(
                "rule {i}: `{}` is not an API group",
                group.chars().take(40).collect::<String>()
            )));
        }
        if let Some(resource) = rule.resources.iter().find(|r| *r != "*" && !name_like(r)) {
            return Err(invalid(format!(
                "rule {i}: `{}` is not a resource",
                resource.chars().take(40).collect::<String>()
            )));
        }
        if rule
            .resource_names
            .iter()
            .any(|n| n.is_empty() || n.len() > 253 || n.chars().any(char::is_control))
        {
            return Err(invalid(format!("rule {i}: a resource name is not valid")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            api_groups: own(groups),
            resources: own(resources),
            verbs: own(verbs),
            resource_names: vec![],
        }
    }

    #[test]
    fn good_rules_pass_and_bad_ones_say_why() {
        assert!(validate_rules(
            &[rule(
                &["", "apps"],
                &["pods", "deployments/scale"],
                &["get", "list"]
            )],
            false
        )
        .is_ok());
        assert!(validate_rules(&[], false).is_err());
        assert!(validate_rules(&[rule(&[""], &["pods"], &["steal"])], true)
            .unwrap_err()
            .message
            .contains("unknown verb"));
        assert!(validate_rules(&[rule(&[""], &[], &["get"])], true).is_err());
        assert!(validate_rules(&[rule(&["Apps!"], &["pods"], &["get"])], true).is_err());
    }

    #[test]
    fn wildcards_need_a_workspace_administrator() {
        for wild in [
            rule(&["*"], &["pods"], &["get"]),
            rule(&[""], &["*"], &["get"]),
            rule(&[""], &["pods"], &["*"]),
        ] {
            assert!(validate_rules(std::slice::from_ref(&wild), false)
                .unwrap_err()
                .message
                .contains("only organization admins and WSAdmins"));
            assert!(validate_rules(&[wild], true).is_ok());
        }
    }

    #[test]
    fn role_references_parse() {
        assert_eq!(
            RoleRef::parse("role", "view").unwrap(),
            RoleRef::Preset(PresetRole::View)
        );
        let id = RoleId::generate();
        assert_eq!(
            RoleRef::parse("role", id.as_str()).unwrap(),
            RoleRef::Custom(id)
        );
        assert!(RoleRef::parse("role", "root").is_err());
    }
}
