//! A plan's resource quota, and the container defaults every project (and, with the `vcluster`
//! driver, every vCluster on its host) gets beside it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A workspace's resource quota on its plan, in Kubernetes quantities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub cpu: String,
    pub memory: String,
    pub storage: String,
    pub pods: u32,
    pub services: u32,
    pub persistent_volume_claims: u32,
}

impl Quota {
    /// Whether Kubernetes takes these quantities (`4`, `500m`, `8Gi`, `1e3`).
    pub fn check(&self) -> Result<(), String> {
        for (field, value) in [
            ("cpu", &self.cpu),
            ("memory", &self.memory),
            ("storage", &self.storage),
        ] {
            if !is_quantity(value) {
                return Err(format!(
                    "the plan's quota {field} `{value}` is not a Kubernetes quantity"
                ));
            }
        }
        Ok(())
    }
}

/// A Kubernetes quantity: a decimal number and an optional binary (`Ki`…`Ei`), decimal
/// (`n`, `u`, `m`, `k`, `M`…`E`) or exponent (`e3`) suffix.
fn is_quantity(value: &str) -> bool {
    let number_end = value
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map_or(value.len(), |(i, _)| i);
    let (number, suffix) = value.split_at(number_end);
    let digits = number.trim_start_matches(['+', '-']);
    let number_ok = !digits.is_empty()
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits.matches('.').count() <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|e| e.trim_start_matches(['+', '-']))
        .is_some_and(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()));
    number_ok && suffix_ok
}

/// A container's CPU and memory, for a LimitRange's defaults.
#[derive(Debug, Clone, Copy)]
pub struct Resources {
    pub cpu: &'static str,
    pub memory: &'static str,
}

impl Resources {
    pub fn json(self) -> Value {
        json!({ "cpu": self.cpu, "memory": self.memory })
    }
}

/// The limits of a container that sets none.
pub const LIMIT_DEFAULT: Resources = Resources {
    cpu: "500m",
    memory: "512Mi",
};

/// The requests of a container that sets none.
pub const LIMIT_DEFAULT_REQUEST: Resources = Resources {
    cpu: "100m",
    memory: "128Mi",
};

#[cfg(test)]
mod tests {
    use super::*;

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
    fn quantities_kubernetes_takes_and_refuses() {
        for good in ["4", "500m", "8Gi", "1.5", "1e3", "128974848", "+1k"] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["lots", "", "4 Gi", "1.2.3", "Gi", "8gi", "1e"] {
            assert!(!is_quantity(bad), "{bad}");
        }
        assert!(quota().check().is_ok());
    }
}
