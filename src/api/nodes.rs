//! `/api/v1/workspaces/{wsId}/nodes`: a workspace's dedicated nodes. Organization admins and
//! WSAdmins ask for some of the host's free nodes (the plan must allow them, up to its limit)
//! and give them back; the workspace's members see them. Answering a request is asynchronous:
//! the node saga labels and taints the nodes on the host and the workspace's cluster follows.

use chrono::{DateTime, Utc};
use hexabase_command::WorkspaceId;
use hexabase_query::nodes::{NodeRequestRow, NodeRow};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::ApiResult;
use super::security::SignedIn;
use super::written::Written;

#[derive(Tags)]
enum ApiTags {
    /// Dedicated nodes: host nodes only one workspace's pods run on.
    Nodes,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct RequestNodes {
    /// How many of the host's free nodes to dedicate to the workspace.
    #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
    pub count: u32,
}

#[derive(Debug, Object)]
pub struct NodeRequestAccepted {
    /// The request's id (`nreq-…`); `GET …/nodes` shows how it was answered.
    pub request_id: String,
    pub count: u32,
    /// `Pending` until the nodes are claimed (`Assigned`) or could not be (`Failed`).
    pub status: String,
    pub position: i64,
}

#[derive(ApiResponse)]
pub enum NodesRequested {
    /// Recorded: the nodes are claimed asynchronously.
    #[oai(status = 202)]
    Accepted(
        Json<NodeRequestAccepted>,
        #[oai(header = "Location")] String,
    ),
}

#[derive(Debug, Object)]
pub struct DedicatedNode {
    /// The host node's name.
    pub name: String,
    /// The request it was claimed for.
    pub request_id: String,
    pub assigned_at: DateTime<Utc>,
}

impl From<NodeRow> for DedicatedNode {
    fn from(row: NodeRow) -> Self {
        Self {
            name: row.node,
            request_id: row.request_id,
            assigned_at: row.assigned_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NodeRequest {
    pub id: String,
    pub count: i32,
    /// `Pending`, `Assigned` or `Failed`.
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<NodeRequestRow> for NodeRequest {
    fn from(row: NodeRequestRow) -> Self {
        Self {
            id: row.id,
            count: row.count,
            status: row.status,
            reason: row.reason,
            requested_by: row.requested_by,
            requested_at: row.requested_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct WorkspaceNodes {
    /// The nodes the workspace has, by name.
    pub nodes: Vec<DedicatedNode>,
    /// Its latest requests for nodes, newest first.
    pub requests: Vec<NodeRequest>,
}

pub struct NodesApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Nodes")]
impl NodesApi {
    /// Ask for dedicated nodes (organization admins, WSAdmins): 202 when the host's pool has
    /// that many free (beyond those promised to requests being answered) and the plan allows
    /// them; 409, recording nothing, otherwise.
    #[oai(
        path = "/workspaces/:ws_id/nodes",
        method = "post",
        operation_id = "requestNodes"
    )]
    async fn request(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        body: Json<RequestNodes>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<NodesRequested> {
        let ws = WorkspaceId::parse(&ws_id)?;
        let (request, position) = ctx
            .app
            .request_nodes(&ctx.op(&auth), &ws, body.count)
            .await?;
        Ok(NodesRequested::Accepted(
            Json(NodeRequestAccepted {
                request_id: request.to_string(),
                count: body.count,
                status: "Pending".into(),
                position,
            }),
            format!("/api/v1/workspaces/{ws}/nodes"),
        ))
    }

    /// The workspace's dedicated nodes and its latest requests for them (workspace members).
    #[oai(
        path = "/workspaces/:ws_id/nodes",
        method = "get",
        operation_id = "listNodes"
    )]
    async fn list(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<WorkspaceNodes>> {
        let ws = WorkspaceId::parse(&ws_id)?;
        let (nodes, requests) = ctx.app.nodes(&ctx.op(&auth), &ws, position.0).await?;
        Ok(Json(WorkspaceNodes {
            nodes: nodes.into_iter().map(Into::into).collect(),
            requests: requests.into_iter().map(Into::into).collect(),
        }))
    }

    /// Give a dedicated node back to the host's pool (organization admins, WSAdmins); 404 for
    /// a node the workspace does not have.
    #[oai(
        path = "/workspaces/:ws_id/nodes/:node",
        method = "delete",
        operation_id = "releaseNode"
    )]
    async fn release(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        /// The node's name.
        #[oai(validator(max_length = 253, pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
        node: Path<String>,
    ) -> ApiResult<Json<Written>> {
        let ws = WorkspaceId::parse(&ws_id)?;
        let position = ctx.app.release_node(&ctx.op(&auth), &ws, &node).await?;
        Ok(Written::at(Some(position)))
    }
}
