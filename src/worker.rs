//! The worker: the outbox relay, every projection, and housekeeping, until shut down. Any
//! number of workers may run: relays split the outbox, projection consumers are shared.

use std::sync::Arc;
use std::time::Duration;

use hexabase_projector::relay::Relay;
use hexabase_projector::run_projection;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Settings;

/// Run a worker on a thread of its own with a single-threaded runtime and its own state (its
/// own Postgres pool and NATS connection), as a separate `worker` process with
/// `runtime.threads = 1` would; it stops when `shutdown` is cancelled.
pub fn spawn_worker_apart(
    settings: Settings,
    shutdown: CancellationToken,
) -> std::thread::JoinHandle<anyhow::Result<()>> {
    std::thread::spawn(move || {
        let runtime = crate::config::RuntimeSettings { threads: 1 }.build()?;
        runtime.block_on(async move {
            let app = App::connect(settings).await?;
            run_worker(app, shutdown).await
        })
    })
}

/// The worker: the outbox relay and every projection, until `shutdown`.
pub async fn run_worker(app: Arc<App>, shutdown: CancellationToken) -> anyhow::Result<()> {
    crate::telemetry::metrics();
    let mut tasks = JoinSet::new();
    let relay = Relay::new(app.pool.clone(), app.js.clone(), app.events.clone());
    let token = shutdown.clone();
    tasks.spawn(async move {
        relay
            .run(token.cancelled_owned())
            .await
            .map_err(anyhow::Error::from)
    });
    let (pool, token) = (app.pool.clone(), shutdown.clone());
    tasks.spawn(async move {
        // Housekeeping: expired logins and sessions.
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = token.cancelled() => return Ok(()),
                _ = every.tick() => {
                    match hexabase_identity::session::purge_expired(&pool).await {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "purged expired logins and sessions"),
                        Err(e) => tracing::warn!(error = %e, "cannot purge expired sessions"),
                    }
                }
            }
        }
    });
    for projection in hexabase_projector::all() {
        let (pool, js, events, token) = (
            app.pool.clone(),
            app.js.clone(),
            app.events.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            run_projection(pool, js, events, projection, token.cancelled_owned())
                .await
                .map_err(anyhow::Error::from)
        });
    }
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        let outcome = done.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = outcome {
            tracing::error!(error = %e, "worker task failed; stopping the worker");
            shutdown.cancel();
            result = Err(e);
        }
    }
    result
}
