//! The worker: the outbox relay, every projection, and housekeeping, until shut down. Any
//! number of workers may run: relays split the outbox, projection consumers are shared.

use std::sync::Arc;
use std::time::Duration;

use hexabase_projector::relay::{Relay, TaskRoute};
use hexabase_projector::run_projection;
use hexabase_sagas::billing::stripe::Stripe;
use hexabase_sagas::billing::BillingEnv;
use hexabase_sagas::driver::local::LocalDriver;
use hexabase_sagas::driver::unavailable::Unavailable;
use hexabase_sagas::driver::vcluster::VclusterDriver;
use hexabase_sagas::driver::ClusterDriver;
use hexabase_sagas::engine::{ensure_task_stream, Registry, Runner, Triggers};
use hexabase_sagas::triggers::{self, ControlPlaneTriggers};
use hexabase_sagas::workspace::Env;
use secrecy::ExposeSecret;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::{DriverKind, Settings};

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

/// The cluster driver the configuration names; if it cannot start, one that fails every step
/// with the reason (the worker's other work goes on).
pub async fn driver(settings: &Settings) -> Arc<dyn ClusterDriver> {
    let (name, made): (_, Result<Arc<dyn ClusterDriver>, _>) = match settings.provisioning.driver {
        DriverKind::Local => (
            "local",
            LocalDriver::new(settings.provisioning.local.clone()).map(|d| Arc::new(d) as _),
        ),
        DriverKind::Vcluster => (
            "vcluster",
            VclusterDriver::new(settings.provisioning.vcluster.clone())
                .await
                .map(|d| Arc::new(d) as _),
        ),
    };
    made.unwrap_or_else(|e| {
        tracing::error!(driver = name, error = %e, "the cluster driver cannot start; provisioning will fail");
        Arc::new(Unavailable::new(name, e.to_string()))
    })
}

/// What the workspaces' sagas work with, on `driver`.
pub fn saga_env(app: &App, driver: Arc<dyn ClusterDriver>) -> anyhow::Result<Env> {
    let settings = &app.settings;
    let issuer_ca =
        match &settings.provisioning.issuer_ca_file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("provisioning.issuer_ca_file {}: {e}", path.display())
            })?),
            None => None,
        };
    let quotas = settings
        .plans
        .iter()
        .map(|(id, plan)| (id.clone(), plan.quota.clone()))
        .collect();
    let env = Env {
        pool: app.pool.clone(),
        workspaces: hexabase_command::store::cqrs(app.pool.clone(), ()),
        organizations: hexabase_command::store::cqrs(app.pool.clone(), ()),
        driver,
        quotas,
        issuer: settings.http.public_url.trim_end_matches('/').to_owned(),
        issuer_ca,
        ready_timeout: Duration::from_secs(settings.provisioning.ready_timeout_secs),
        layout: settings.workspace.clone(),
        js: app.js.clone(),
        billing: billing_env(settings)?,
    };
    Ok(env)
}

/// What billing's sagas work with, from `billing.*` and the plan catalogue.
pub fn billing_env(settings: &Settings) -> anyhow::Result<BillingEnv> {
    let billing = &settings.billing;
    let stripe = billing
        .secret_key
        .as_ref()
        .map(|key| Stripe::new(key.expose_secret(), &billing.api_url))
        .transpose()
        .map_err(|e| anyhow::anyhow!("billing: {e}"))?;
    Ok(BillingEnv {
        stripe,
        grace: chrono::Duration::seconds(
            i64::try_from(billing.grace_period_secs).unwrap_or(i64::MAX / 1000),
        ),
        plans_by_price: settings
            .plans
            .iter()
            .filter_map(|(id, plan)| plan.price_id.clone().map(|price| (price, id.clone())))
            .collect(),
        notification_stream: billing.notification_stream.clone(),
        subject_prefix: settings.sagas.subject_prefix.clone(),
    })
}

/// Which events start which sagas, under these settings.
pub fn saga_triggers(settings: &Settings) -> ControlPlaneTriggers {
    ControlPlaneTriggers::new(settings.billing.enabled())
}

/// The runner of `registry`'s sagas, on `driver`.
pub fn saga_runner(
    app: &App,
    driver: Arc<dyn ClusterDriver>,
    registry: Registry<Env>,
) -> anyhow::Result<Runner<Env>> {
    Ok(Runner::new(
        app.pool.clone(),
        app.js.clone(),
        Arc::new(saga_env(app, driver)?),
        registry,
        Arc::new(saga_triggers(&app.settings)),
        app.settings.sagas.clone(),
    ))
}

/// The worker: the outbox relay, every projection, the sagas and their cluster driver, until
/// `shutdown`.
pub async fn run_worker(app: Arc<App>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let driver = driver(&app.settings).await;
    let runner = saga_runner(&app, driver.clone(), triggers::registry())?;
    let mut tasks = JoinSet::new();
    let token = shutdown.clone();
    tasks.spawn(async move {
        runner
            .run(token.cancelled_owned())
            .await
            .map_err(anyhow::Error::from)
    });
    let token = shutdown.clone();
    tasks.spawn(async move {
        driver.supervise(token).await;
        Ok(())
    });
    let (pipeline_app, token) = (app.clone(), shutdown.clone());
    tasks.spawn(async move { run_pipeline(pipeline_app, token).await });
    join(tasks, shutdown).await
}

/// The event pipeline alone: the outbox relay (with the sagas' task messages), every
/// projection, and housekeeping, until `shutdown`.
pub async fn run_pipeline(app: Arc<App>, shutdown: CancellationToken) -> anyhow::Result<()> {
    crate::telemetry::metrics();
    // The relay publishes task messages into the sagas' stream: it must exist first.
    ensure_task_stream(&app.js, &app.settings.sagas).await?;
    let mut tasks = JoinSet::new();
    let sagas = app.settings.sagas.clone();
    let route_triggers = saga_triggers(&app.settings);
    let route: TaskRoute = Arc::new(move |event| {
        route_triggers
            .subject_for(event)
            .map(|subject| sagas.subject(&subject))
    });
    let relay = Relay::new(app.pool.clone(), app.js.clone(), app.events.clone()).with_tasks(route);
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
    join(tasks, shutdown).await
}

/// Wait for `tasks`; the first that fails stops the others.
async fn join(
    mut tasks: JoinSet<anyhow::Result<()>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
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
