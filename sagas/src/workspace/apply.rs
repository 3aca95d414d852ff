//! Putting the desired objects into a workspace's cluster: server-side apply with the control
//! plane's field manager (idempotent by construction; `force` takes back fields edited by
//! hand), and pruning what the control plane manages there but no longer asks for.

use std::collections::BTreeSet;

use futures::future::try_join_all;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::objects::{selector, Desired, Kind};
use crate::engine::StepError;

/// The field manager of every change the control plane makes.
pub const FIELD_MANAGER: &str = "hexabase";

/// Objects applied or deleted at once.
const PARALLEL: usize = 8;

fn resource(kind: Kind) -> ApiResource {
    let (group, version, kind) = kind.gvk();
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

fn api(client: &kube::Client, kind: Kind, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = resource(kind);
    match namespace {
        Some(ns) if kind.namespaced() => Api::namespaced_with(client.clone(), ns, &resource),
        _ => Api::all_with(client.clone(), &resource),
    }
}

/// A Kubernetes error as a step error: the API server unreachable or overloaded is worth a
/// retry; an object it refuses is not.
pub fn kube_error(what: &str, error: kube::Error) -> StepError {
    match &error {
        kube::Error::Api(status) if status.code == 422 || status.code == 400 => {
            StepError::Permanent(format!("{what}: {error}"))
        }
        _ => StepError::Transient(format!("{what}: {error}")),
    }
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

async fn apply_one(
    client: &kube::Client,
    object: &Desired,
    params: &PatchParams,
) -> Result<(), StepError> {
    api(client, object.kind, object.namespace.as_deref())
        .patch(&object.name, params, &Patch::Apply(&object.manifest))
        .await
        .map(drop)
        .map_err(|e| kube_error(&format!("apply {:?} {}", object.kind, object.name), e))
}

/// Apply `objects` (in order of their kinds: namespaces before what lives in them).
pub async fn apply(client: &kube::Client, objects: &[Desired]) -> Result<usize, StepError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for kind in Kind::ALL {
        let of_kind: Vec<&Desired> = objects.iter().filter(|o| o.kind == kind).collect();
        for chunk in of_kind.chunks(PARALLEL) {
            let mut applies = Vec::with_capacity(chunk.len());
            for object in chunk {
                applies.push(apply_one(client, object, &params));
            }
            try_join_all(applies).await?;
        }
    }
    Ok(objects.len())
}

async fn delete_one(
    client: &kube::Client,
    kind: Kind,
    namespace: Option<String>,
    name: String,
    finalize: bool,
) -> Result<(), StepError> {
    match api(client, kind, namespace.as_deref())
        .delete(&name, &DeleteParams::background())
        .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(kube_error(&format!("delete {kind:?} {name}"), e)),
    }
    if kind == Kind::Namespace && finalize {
        finalize_namespace(client, &name).await?;
    }
    Ok(())
}

/// Delete what the control plane manages in the cluster of `workspace` but `objects` no longer
/// names: namespaced objects first, namespaces last. Without Kubernetes' namespace controller
/// (`finalize`), the emptied namespaces are finalized here so they go at once.
pub async fn prune(
    client: &kube::Client,
    workspace: &str,
    objects: &[Desired],
    finalize: bool,
) -> Result<usize, StepError> {
    let wanted: BTreeSet<(Kind, Option<&str>, &str)> = objects
        .iter()
        .map(|o| (o.kind, o.namespace.as_deref(), o.name.as_str()))
        .collect();
    let selector = selector(workspace);
    let mut pruned = 0;
    let order = [
        Kind::HierarchyConfiguration,
        Kind::Deployment,
        Kind::RoleBinding,
        Kind::Role,
        Kind::ServiceAccount,
        Kind::ResourceQuota,
        Kind::LimitRange,
        Kind::ClusterRoleBinding,
        Kind::CustomResourceDefinition,
        Kind::Namespace,
    ];
    for kind in order {
        let listed = match api(client, kind, None)
            .list(&ListParams::default().labels(&selector))
            .await
        {
            Ok(listed) => listed,
            // A kind the cluster does not know (HNC's, without HNC) holds nothing to prune.
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(kube_error(&format!("list {kind:?}"), e)),
        };
        let mut stale = Vec::new();
        for item in listed.items {
            let Some(name) = item.metadata.name else {
                continue;
            };
            let namespace = item.metadata.namespace;
            if !wanted.contains(&(kind, namespace.as_deref(), name.as_str())) {
                stale.push((namespace, name));
            }
        }
        pruned += stale.len();
        let mut deletes = Vec::with_capacity(stale.len());
        for (namespace, name) in stale {
            deletes.push(delete_one(client, kind, namespace, name, finalize));
        }
        try_join_all(deletes).await?;
    }
    Ok(pruned)
}

/// What the namespace controller does once a namespace is empty: drop its `kubernetes`
/// finalizer, so it goes.
async fn finalize_namespace(client: &kube::Client, name: &str) -> Result<(), StepError> {
    let namespaces: Api<DynamicObject> = api(client, Kind::Namespace, None);
    let body = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": name },
        "spec": { "finalizers": [] },
    });
    match namespaces
        .replace_subresource("finalize", name, &PostParams::default(), &body)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(kube_error(&format!("finalize namespace {name}"), e)),
    }
}

/// What Kubernetes' cluster-role aggregation controller does, for clusters that do not run it:
/// each ClusterRole with an `aggregationRule` (the built-in `admin`, `edit`, `view`) gets the
/// rules of the ClusterRoles its selectors match (by `matchLabels`), aggregated ones included.
/// Without it those roles stay empty and grant nothing.
pub async fn aggregate_cluster_roles(client: &kube::Client) -> Result<usize, StepError> {
    use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let listed = roles
        .list(&ListParams::default())
        .await
        .map_err(|e| kube_error("list ClusterRoles", e))?
        .items;
    let mut rules: std::collections::BTreeMap<String, Vec<PolicyRule>> = listed
        .iter()
        .filter_map(|r| {
            Some((
                r.metadata.name.clone()?,
                r.rules.clone().unwrap_or_default(),
            ))
        })
        .collect();
    let aggregated: Vec<(String, Vec<std::collections::BTreeMap<String, String>>)> = listed
        .iter()
        .filter_map(|role| {
            let selectors = role
                .aggregation_rule
                .as_ref()?
                .cluster_role_selectors
                .as_ref()?;
            let labels = selectors
                .iter()
                .map(|s| s.match_labels.clone().unwrap_or_default())
                .collect();
            Some((role.metadata.name.clone()?, labels))
        })
        .collect();
    let matches = |role: &ClusterRole, wanted: &std::collections::BTreeMap<String, String>| {
        let labels = role.metadata.labels.clone().unwrap_or_default();
        !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
    };
    // Aggregated roles can feed others (`edit` into `admin`): a few rounds reach the fixpoint.
    for _ in 0..4 {
        for (name, selectors) in &aggregated {
            let mut union: Vec<PolicyRule> = Vec::new();
            for source in listed
                .iter()
                .filter(|r| selectors.iter().any(|s| matches(r, s)))
            {
                let Some(source_name) = &source.metadata.name else {
                    continue;
                };
                for rule in rules.get(source_name).cloned().unwrap_or_default() {
                    if !union.contains(&rule) {
                        union.push(rule);
                    }
                }
            }
            rules.insert(name.clone(), union);
        }
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut changed = 0;
    for (name, _) in &aggregated {
        let wanted = rules.get(name).cloned().unwrap_or_default();
        let current = listed
            .iter()
            .find(|r| r.metadata.name.as_ref() == Some(name))
            .and_then(|r| r.rules.clone())
            .unwrap_or_default();
        if current == wanted {
            continue;
        }
        let patch = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": { "name": name },
            "rules": wanted,
        });
        roles
            .patch(name, &params, &Patch::Apply(&patch))
            .await
            .map_err(|e| kube_error(&format!("aggregate ClusterRole {name}"), e))?;
        changed += 1;
    }
    Ok(changed)
}
