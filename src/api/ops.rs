//! Operations endpoints: liveness, readiness (Postgres and NATS), Prometheus metrics.

use std::sync::Arc;
use std::time::Duration;

use hexabase_projector::relay;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{handler, IntoResponse, Response};
use serde_json::json;

use crate::app::App;
use crate::telemetry;

#[handler]
pub fn healthz() -> &'static str {
    "ok"
}

#[handler]
pub async fn readyz(state: Data<&Arc<App>>) -> Response {
    let postgres = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&state.pool)
        .await
        .map(|_| "ok".to_owned())
        .unwrap_or_else(|e| e.to_string());
    let nats = match tokio::time::timeout(Duration::from_secs(2), state.nats.flush()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out".to_owned(),
    };
    let ready = postgres == "ok" && nats == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response =
        Json(json!({ "ready": ready, "postgres": postgres, "nats": nats })).into_response();
    response.set_status(status);
    response
}

/// Gauges that describe the pipeline are read at scrape time, so they are right whichever
/// process runs the relay and the projections.
#[handler]
pub async fn prometheus(state: Data<&Arc<App>>) -> String {
    if let Ok(backlog) = relay::backlog(&state.pool).await {
        ::metrics::gauge!("hexabase_outbox_backlog").set(backlog as f64);
    }
    for (projection, pending) in state.projection_pending().await {
        ::metrics::gauge!("hexabase_projection_pending_events", "projection" => projection)
            .set(pending as f64);
    }
    telemetry::metrics().render()
}
