//! Dedicated nodes: a workspace's administrators ask for some of the host's free nodes (the
//! plan must allow them, up to its limit) and give them back. A request is recorded only when
//! the pool has that many nodes free beyond those promised to requests not answered yet; the
//! node saga then claims them on the host.

use hexabase_command::policy::WorkspaceAction;
use hexabase_command::store::nodes_promised;
use hexabase_command::workspace::WorkspaceCommand;
use hexabase_command::{NodeRequestId, WorkspaceId};
use hexabase_query::nodes::{self as nodes_query, NodeRequestRow, NodeRow};

use super::{App, OpContext};
use crate::error::{Error, Result};

/// Requests shown beside the nodes.
const RECENT_REQUESTS: i64 = 20;

/// The key of the advisory lock that makes checking the pool and recording a request one step
/// for every API replica.
const POOL_LOCK: &str = "hexabase:dedicated-nodes";

impl App {
    /// Ask for `count` dedicated nodes; the request's id and the position of its event.
    pub async fn request_nodes(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        count: u32,
    ) -> Result<(NodeRequestId, i64)> {
        let row = self
            .authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let plan = self.plan(&row.plan)?;
        if !plan.dedicated_nodes {
            return Err(Error::conflict(format!(
                "the workspace's plan `{}` has no dedicated nodes",
                row.plan
            )));
        }
        let pool = self
            .node_pool
            .as_ref()
            .map_err(|e| Error::conflict(e.clone()))?;
        let mut db = self.pool.acquire().await?;
        // Held on this connection until it is released below (or the connection closes).
        sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
            .bind(POOL_LOCK)
            .execute(&mut *db)
            .await?;
        let recorded = async {
            let free = pool
                .free()
                .await
                .map_err(|e| Error::bad_gateway(format!("cannot read the host's nodes: {e}")))?;
            let promised = nodes_promised(&mut *db).await?;
            let available = i64::try_from(free.len())
                .unwrap_or(i64::MAX)
                .saturating_sub(promised)
                .max(0);
            if i64::from(count) > available {
                return Err(Error::conflict(format!(
                    "{count} dedicated nodes asked for and {available} free: the pool has {} \
                     free nodes, {promised} of them promised to requests being answered",
                    free.len()
                )));
            }
            let request = NodeRequestId::generate();
            let command = WorkspaceCommand::RequestDedicatedNodes {
                request: request.clone(),
                count,
                max: plan.max_dedicated_nodes,
                actor: op.user().clone(),
            };
            let position = self.execute_workspace(ws, command, op.metadata()).await?;
            Ok((request, position.unwrap_or_default()))
        }
        .await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(POOL_LOCK)
            .execute(&mut *db)
            .await;
        if unlocked.is_err() {
            // A connection whose lock state is unknown is not given back to the pool.
            db.close_on_drop();
        }
        recorded
    }

    /// The workspace's dedicated nodes and its latest requests for them.
    pub async fn nodes(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        position: Option<i64>,
    ) -> Result<(Vec<NodeRow>, Vec<NodeRequestRow>)> {
        if let Some(position) = position {
            self.wait_for("workspaces", position).await?;
        }
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Read)
            .await?;
        Ok((
            nodes_query::nodes(&self.pool, ws).await?,
            nodes_query::requests(&self.pool, ws, RECENT_REQUESTS).await?,
        ))
    }

    /// Give a dedicated node back to the pool; the position of its event.
    pub async fn release_node(&self, op: &OpContext, ws: &WorkspaceId, node: &str) -> Result<i64> {
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let command = WorkspaceCommand::ReleaseDedicatedNode {
            node: node.to_owned(),
            actor: op.user().clone(),
        };
        let position = self.execute_workspace(ws, command, op.metadata()).await?;
        Ok(position.unwrap_or_default())
    }
}
