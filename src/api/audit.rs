//! `/api/v1/organizations/{orgId}/events`: the organization's event history, for auditors.

use chrono::{DateTime, Utc};
use hexabase_command::OrganizationId;
use hexabase_query::audit::{AuditEventRow, AuditFilter};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::ApiResult;
use super::page::{self, List, Order};
use super::security::SignedIn;

#[derive(Tags)]
enum ApiTags {
    /// Event history for auditors.
    Audit,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEvent {
    /// Global position; also the paging cursor.
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    /// User who caused the event.
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl From<AuditEventRow> for AuditEvent {
    fn from(row: AuditEventRow) -> Self {
        Self {
            position: row.position,
            aggregate_type: row.aggregate_type,
            aggregate_id: row.aggregate_id,
            sequence: row.sequence,
            event_type: row.event_type,
            event_version: row.event_version,
            payload: row.payload,
            actor: row.actor,
            request_id: row.request_id,
            correlation_id: row.correlation_id,
            causation_id: row.causation_id,
            occurred_at: row.occurred_at,
        }
    }
}

pub struct AuditApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Audit")]
impl AuditApi {
    /// The organization's event history, oldest first or, with `order=newest`, newest first
    /// (admins).
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/organizations/:org_id/events",
        method = "get",
        operation_id = "listOrganizationEvents"
    )]
    async fn events(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        /// Page size, 1–100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = r"^[0-9]{1,18}$"))]
        cursor: Query<Option<String>>,
        /// Only events of this aggregate type (e.g. `Organization`).
        #[oai(validator(max_length = 200, pattern = r"^[^\x00]*$"))]
        aggregate_type: Query<Option<String>>,
        /// Only events of this aggregate.
        #[oai(validator(max_length = 200, pattern = r"^[^\x00]*$"))]
        aggregate_id: Query<Option<String>>,
        /// Only events that occurred at or after this time.
        since: Query<Option<DateTime<Utc>>>,
        /// Only events that occurred before this time.
        until: Query<Option<DateTime<Utc>>>,
        /// `oldest` (default) or `newest` first.
        order: Query<Option<Order>>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<List<AuditEvent>>> {
        let org = OrganizationId::parse(&org_id)?;
        let page = page::request(limit.0, cursor.0.as_deref(), page::position)?;
        let filter = AuditFilter {
            aggregate_type: page::text_filter("aggregate_type", aggregate_type.0)?,
            aggregate_id: page::text_filter("aggregate_id", aggregate_id.0)?,
            since: page::time_filter("since", since.0)?,
            until: page::time_filter("until", until.0)?,
            newest_first: order.0 == Some(Order::Newest),
        };
        let rows = ctx
            .app
            .history(&ctx.op(&auth), &org, &filter, page, position.0)
            .await?;
        Ok(List::of(rows))
    }
}
