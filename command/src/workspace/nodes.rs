//! Dedicated nodes: a workspace's administrators ask for N of the host's free nodes (within
//! the plan's limit), the node saga claims them on the host and records which; a node released
//! is the workspace's no more at once, and the saga gives it back to the pool. A workspace
//! being deleted gives them all back.

use super::aggregate::{Workspace, WorkspaceError};
use super::{WorkspaceCommand, WorkspaceEvent};

/// Nodes one request may ask for.
pub const MAX_PER_REQUEST: u32 = 100;

impl Workspace {
    /// Nodes the workspace has, and has asked for and not been given yet.
    pub fn nodes_held_or_asked(&self) -> u32 {
        let asked: u32 = self.node_requests.values().sum();
        u32::try_from(self.dedicated_nodes.len())
            .unwrap_or(u32::MAX)
            .saturating_add(asked)
    }

    pub(super) fn handle_nodes(
        &self,
        command: WorkspaceCommand,
    ) -> Result<Vec<WorkspaceEvent>, WorkspaceError> {
        let events = match command {
            WorkspaceCommand::RequestDedicatedNodes {
                request,
                count,
                max,
                actor,
            } => {
                if count == 0 || count > MAX_PER_REQUEST {
                    return Err(WorkspaceError::InvalidNodeCount(MAX_PER_REQUEST));
                }
                if self.nodes_held_or_asked().saturating_add(count) > max {
                    return Err(WorkspaceError::NodeLimit(max));
                }
                if self.node_requests.contains_key(&request) {
                    return Ok(vec![]);
                }
                vec![WorkspaceEvent::DedicatedNodesRequested {
                    request,
                    count,
                    requested_by: actor,
                }]
            }
            WorkspaceCommand::AssignDedicatedNodes { request, nodes } => {
                if !self.node_requests.contains_key(&request) {
                    return Ok(vec![]);
                }
                vec![WorkspaceEvent::DedicatedNodesAssigned { request, nodes }]
            }
            WorkspaceCommand::FailDedicatedNodes { request, reason } => {
                if !self.node_requests.contains_key(&request) {
                    return Ok(vec![]);
                }
                vec![WorkspaceEvent::DedicatedNodesRequestFailed { request, reason }]
            }
            WorkspaceCommand::ReleaseDedicatedNode { node, actor } => {
                if !self.dedicated_nodes.contains(&node) {
                    return Err(WorkspaceError::NodeNotFound(node));
                }
                vec![WorkspaceEvent::DedicatedNodeReleased {
                    node,
                    released_by: actor,
                }]
            }
            _ => vec![],
        };
        Ok(events)
    }

    pub(super) fn apply_nodes(&mut self, event: WorkspaceEvent) {
        match event {
            WorkspaceEvent::DedicatedNodesRequested { request, count, .. } => {
                self.node_requests.insert(request, count);
            }
            WorkspaceEvent::DedicatedNodesAssigned { request, nodes } => {
                self.node_requests.remove(&request);
                self.dedicated_nodes.extend(nodes);
            }
            WorkspaceEvent::DedicatedNodesRequestFailed { request, .. } => {
                self.node_requests.remove(&request);
            }
            WorkspaceEvent::DedicatedNodeReleased { node, .. } => {
                self.dedicated_nodes.remove(&node);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::id::{NodeRequestId, UserId, WorkspaceId};
    use crate::workspace::test_support::{requested, Given};
    use crate::workspace::{WorkspaceCommand, WorkspaceError, WorkspaceEvent};

    fn ask(count: u32, max: u32, request: &NodeRequestId, actor: &UserId) -> WorkspaceCommand {
        WorkspaceCommand::RequestDedicatedNodes {
            request: request.clone(),
            count,
            max,
            actor: actor.clone(),
        }
    }

    #[test]
    fn nodes_asked_for_count_against_the_plans_limit_until_given_or_refused() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        let (r1, r2) = (NodeRequestId::generate(), NodeRequestId::generate());
        let asked = WorkspaceEvent::DedicatedNodesRequested {
            request: r1.clone(),
            count: 2,
            requested_by: alice.clone(),
        };
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(ask(2, 3, &r1, &alice))
            .then_expect_events(vec![asked.clone()]);
        // Two asked for (not given yet) and two more: over a limit of 3.
        Given::with(())
            .given(vec![requested(&id, &alice), asked.clone()])
            .when(ask(2, 3, &r2, &alice))
            .then_expect_error(WorkspaceError::NodeLimit(3));
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(ask(0, 3, &r1, &alice))
            .then_expect_error(WorkspaceError::InvalidNodeCount(100));
        let given = WorkspaceEvent::DedicatedNodesAssigned {
            request: r1.clone(),
            nodes: vec!["n1".into(), "n2".into()],
        };
        Given::with(())
            .given(vec![requested(&id, &alice), asked.clone()])
            .when(WorkspaceCommand::AssignDedicatedNodes {
                request: r1.clone(),
                nodes: vec!["n1".into(), "n2".into()],
            })
            .then_expect_events(vec![given.clone()]);
        // Recorded once.
        Given::with(())
            .given(vec![requested(&id, &alice), asked.clone(), given.clone()])
            .when(WorkspaceCommand::AssignDedicatedNodes {
                request: r1.clone(),
                nodes: vec!["n1".into(), "n2".into()],
            })
            .then_expect_events(vec![]);
        // A refused request frees its share of the limit.
        let refused = WorkspaceEvent::DedicatedNodesRequestFailed {
            request: r1.clone(),
            reason: "none free".into(),
        };
        Given::with(())
            .given(vec![requested(&id, &alice), asked.clone(), refused])
            .when(ask(3, 3, &r2, &alice))
            .then_expect_events(vec![WorkspaceEvent::DedicatedNodesRequested {
                request: r2.clone(),
                count: 3,
                requested_by: alice.clone(),
            }]);
        // Releasing: only a node the workspace has.
        Given::with(())
            .given(vec![requested(&id, &alice), asked.clone(), given.clone()])
            .when(WorkspaceCommand::ReleaseDedicatedNode {
                node: "n3".into(),
                actor: alice.clone(),
            })
            .then_expect_error(WorkspaceError::NodeNotFound("n3".into()));
        Given::with(())
            .given(vec![requested(&id, &alice), asked, given])
            .when(WorkspaceCommand::ReleaseDedicatedNode {
                node: "n1".into(),
                actor: alice.clone(),
            })
            .then_expect_events(vec![WorkspaceEvent::DedicatedNodeReleased {
                node: "n1".into(),
                released_by: alice,
            }]);
    }
}
