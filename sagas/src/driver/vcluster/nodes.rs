//! Dedicated nodes: the host's nodes labelled `hexabase.ai/node-pool=<free pool>` are free;
//! one given to a workspace is labelled `hexabase.ai/node-pool=<workspace>`, annotated with the
//! request it answers, and tainted `dedicated=<workspace>:NoSchedule`, so only the workspace's
//! pods (which tolerate the taint) run there. Every change to a node is made against the
//! version read (`metadata.resourceVersion`), so two workspaces claiming at once never get
//! the same node: the second sees a conflict and picks another.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use super::values::{DEDICATED_TAINT, NODE_POOL_LABEL};
use crate::driver::DriverError;

/// The annotation naming the request a dedicated node was claimed for.
pub const REQUEST_ANNOTATION: &str = "hexabase.ai/node-request";
/// Attempts at claiming or giving back before a step retries later.
const CONFLICTS: usize = 20;

/// The host's nodes, as the pool sees them.
#[derive(Clone)]
pub struct NodePool {
    host: kube::Client,
    free: String,
}

fn transient(what: &str, e: impl std::fmt::Display) -> DriverError {
    DriverError::Transient(format!("vcluster driver: {what}: {e}"))
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

fn name(node: &Node) -> String {
    node.metadata.name.clone().unwrap_or_default()
}

fn pool_of(node: &Node) -> Option<&str> {
    node.metadata
        .labels
        .as_ref()?
        .get(NODE_POOL_LABEL)
        .map(String::as_str)
}

fn request_of(node: &Node) -> Option<&str> {
    node.metadata
        .annotations
        .as_ref()?
        .get(REQUEST_ANNOTATION)
        .map(String::as_str)
}

/// Ready, and not cordoned.
fn usable(node: &Node) -> bool {
    let schedulable = !node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    schedulable && ready
}

fn taint(workspace: &str) -> Taint {
    Taint {
        key: DEDICATED_TAINT.to_owned(),
        value: Some(workspace.to_owned()),
        effect: "NoSchedule".to_owned(),
        time_added: None,
    }
}

impl NodePool {
    pub fn new(host: kube::Client, free: impl Into<String>) -> Self {
        Self {
            host,
            free: free.into(),
        }
    }

    fn api(&self) -> Api<Node> {
        Api::all(self.host.clone())
    }

    async fn nodes_in(&self, pool: &str) -> Result<Vec<Node>, DriverError> {
        let selector = ListParams::default().labels(&format!("{NODE_POOL_LABEL}={pool}"));
        let mut nodes = self
            .api()
            .list(&selector)
            .await
            .map_err(|e| transient("list the nodes", e))?
            .items;
        nodes.sort_by_key(name);
        Ok(nodes)
    }

    /// The names of the free nodes a workspace could be given now.
    pub async fn free(&self) -> Result<Vec<String>, DriverError> {
        Ok(self
            .nodes_in(&self.free)
            .await?
            .iter()
            .filter(|n| usable(n))
            .map(name)
            .collect())
    }

    /// Move `node` (as read) to `pool` with `request` (or back to the free pool with none),
    /// its taint following; `false` when it changed since it was read.
    async fn relabel(
        &self,
        node: &Node,
        pool: &str,
        workspace: &str,
        request: Option<&str>,
    ) -> Result<bool, DriverError> {
        let mut taints: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.key != DEDICATED_TAINT)
            .collect();
        if request.is_some() {
            taints.push(taint(workspace));
        }
        let patch = json!({
            "metadata": {
                "resourceVersion": node.metadata.resource_version,
                "labels": { NODE_POOL_LABEL: pool },
                "annotations": { REQUEST_ANNOTATION: request },
            },
            "spec": { "taints": taints },
        });
        match self
            .api()
            .patch(&name(node), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(transient(&format!("relabel node {}", name(node)), e)),
        }
    }

    /// Give `workspace` `count` free nodes for `request`; safe to repeat (the nodes already
    /// claimed for the request count). When too few are free, what this request claimed goes
    /// back and the error says how many were free.
    pub async fn claim(
        &self,
        workspace: &str,
        request: &str,
        count: usize,
    ) -> Result<Vec<String>, DriverError> {
        for _ in 0..CONFLICTS {
            let mine: Vec<String> = self
                .nodes_in(workspace)
                .await?
                .iter()
                .filter(|n| request_of(n) == Some(request))
                .map(name)
                .collect();
            if mine.len() >= count {
                return Ok(mine);
            }
            let free: Vec<Node> = self
                .nodes_in(&self.free)
                .await?
                .into_iter()
                .filter(usable)
                .collect();
            let Some(node) = free.first() else {
                let had = mine.len();
                self.give_back(workspace, |n| request_of(n) == Some(request))
                    .await?;
                return Err(DriverError::Permanent(format!(
                    "{count} dedicated nodes were asked for and only {had} could be given (no \
                     free node left in the pool `{}`)",
                    self.free
                )));
            };
            self.relabel(node, workspace, workspace, Some(request))
                .await?;
        }
        Err(DriverError::Transient(
            "vcluster driver: the nodes kept changing while being claimed".into(),
        ))
    }

    /// Give back to the free pool every node of `workspace` not in `keep`.
    pub async fn release(
        &self,
        workspace: &str,
        keep: &BTreeSet<String>,
    ) -> Result<(), DriverError> {
        self.give_back(workspace, |n| !keep.contains(&name(n)))
            .await
    }

    async fn give_back(
        &self,
        workspace: &str,
        which: impl Fn(&Node) -> bool,
    ) -> Result<(), DriverError> {
        for _ in 0..CONFLICTS {
            let going: Vec<Node> = self
                .nodes_in(workspace)
                .await?
                .into_iter()
                .filter(|n| pool_of(n) == Some(workspace) && which(n))
                .collect();
            if going.is_empty() {
                return Ok(());
            }
            for node in &going {
                self.relabel(node, &self.free, workspace, None).await?;
            }
        }
        Err(DriverError::Transient(
            "vcluster driver: the nodes kept changing while being given back".into(),
        ))
    }
}
