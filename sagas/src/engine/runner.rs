//! The runner: every worker runs one. Domain events that start sagas reach it as task
//! messages on the spec's subjects (`vcluster.provisioning.<ws>`, `vcluster.hnc.<ws>`,
//! `system.maintenance.*`) through one durable JetStream consumer all workers share, so each
//! message goes to one of them. A worker asks for one message at a time, and only when it has
//! a free slot (`concurrency`): messages it could not start yet stay on the server for the
//! other workers, and none waits in a worker's buffer. A message names an aggregate: the runner
//! records the sagas its events start that are not recorded yet (reading the event store, so a
//! message lost or delivered out of order loses nothing), then runs the aggregate's sagas one
//! at a time in event order, holding a Postgres advisory lock on the aggregate so no other
//! worker runs them meanwhile. The lock lives on a connection of its own: a worker killed
//! mid-step drops it at once, and its unacknowledged message is delivered again after
//! `ack_wait_secs` (a message in work is kept from that by progress acknowledgements). A
//! recovery pass also picks up every saga that is due, whatever happened to its messages, and
//! walks the event store for events that start sagas nobody recorded (their message lost, or
//! its worker killed before recording them), a bounded batch per pass.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream, AckKind};
use async_trait::async_trait;
use futures::StreamExt;
use hexabase_command::store::StoredEvent;
use serde::Deserialize;
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::log::{self, NewSaga, SagaRow};
use super::{Backoff, Cx, Registry, SagaRef, StepError};

/// Where the sagas' work comes from and how patiently it is done.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerSettings {
    pub backoff: Backoff,
    /// A step that takes longer fails (transiently).
    pub step_timeout_secs: u64,
    /// Aggregates a worker works on at once.
    pub concurrency: usize,
    /// How long a task message delivered to a worker may go unacknowledged before it is
    /// delivered again (a worker acknowledges progress on the messages it works on, so this
    /// only bounds how long a killed worker's message waits). Events older than this whose
    /// sagas are not recorded are taken up by the recovery pass.
    pub ack_wait_secs: u64,
    /// How often a worker looks for due sagas in the log (resumes after crashes and lost
    /// messages).
    pub recovery_secs: u64,
    /// How often the maintenance pass (drift repair) is asked for.
    pub maintenance_secs: u64,
    /// JetStream stream of task messages.
    pub stream: String,
    /// Put before every task subject (`<prefix>.vcluster.provisioning.…`), for deployments
    /// sharing one NATS; empty: the subjects as the spec names them.
    #[serde(default)]
    pub subject_prefix: String,
}

impl RunnerSettings {
    /// `ack_wait_secs`, at least one second.
    pub fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.ack_wait_secs.max(1))
    }

    /// `subject` with this deployment's prefix.
    pub fn subject(&self, subject: &str) -> String {
        if self.subject_prefix.is_empty() {
            subject.to_owned()
        } else {
            format!("{}.{subject}", self.subject_prefix)
        }
    }

    /// `subject` without this deployment's prefix.
    pub fn unprefixed<'a>(&self, subject: &'a str) -> &'a str {
        if self.subject_prefix.is_empty() {
            return subject;
        }
        subject
            .strip_prefix(self.subject_prefix.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(subject)
    }
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            step_timeout_secs: 300,
            concurrency: 8,
            ack_wait_secs: 10,
            recovery_secs: 5,
            maintenance_secs: 60,
            stream: "HEXABASE_TASKS".into(),
            subject_prefix: String::new(),
        }
    }
}

/// The subjects task messages travel on.
pub const TASK_SUBJECTS: [&str; 4] = [
    "vcluster.provisioning.>",
    "vcluster.hnc.>",
    "stripe.webhook.>",
    "system.maintenance.>",
];

/// The subject of the maintenance pass's messages.
pub const MAINTENANCE_SUBJECT: &str = "system.maintenance.reconcile";

/// Name of the consumer every worker shares.
const CONSUMER: &str = "sagas";

/// An aggregate whose sagas run one at a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Aggregate {
    pub aggregate_type: String,
    pub aggregate_id: String,
}

/// Which events start which sagas, and the periodic maintenance pass.
#[async_trait]
pub trait Triggers<E>: Send + Sync + 'static {
    /// The sagas `event` starts: (kind, parameters).
    fn sagas_for(&self, event: &StoredEvent) -> Vec<(&'static str, Value)>;

    /// The task subject `event` travels on, if it starts sagas.
    fn subject_for(&self, event: &StoredEvent) -> Option<String>;

    /// The aggregate a task subject names.
    fn aggregate_of(&self, subject: &str) -> Option<Aggregate>;

    /// The sagas the maintenance pass of `period` starts.
    async fn maintenance(&self, env: &E, period: i64) -> Result<Vec<NewSaga>, StepError>;
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("JetStream: {0}")]
    JetStream(String),
}

fn js_err(e: impl std::fmt::Display) -> RunError {
    RunError::JetStream(e.to_string())
}

/// What became of an aggregate's sagas.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// None left to run.
    Idle,
    /// The next one is due after this delay.
    Later(Duration),
    /// Another worker holds the aggregate.
    Busy,
}

pub struct Runner<E> {
    pool: PgPool,
    js: jetstream::Context,
    env: Arc<E>,
    registry: Arc<Registry<E>>,
    triggers: Arc<dyn Triggers<E>>,
    settings: RunnerSettings,
}

impl<E> Clone for Runner<E> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            js: self.js.clone(),
            env: self.env.clone(),
            registry: self.registry.clone(),
            triggers: self.triggers.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl<E: Send + Sync + 'static> Runner<E> {
    pub fn new(
        pool: PgPool,
        js: jetstream::Context,
        env: Arc<E>,
        registry: Registry<E>,
        triggers: Arc<dyn Triggers<E>>,
        settings: RunnerSettings,
    ) -> Self {
        Self {
            pool,
            js,
            env,
            registry: Arc::new(registry),
            triggers,
            settings,
        }
    }

    /// The stream task messages are kept in (created if missing).
    pub async fn ensure_stream(&self) -> Result<stream::Stream, RunError> {
        ensure_stream(&self.js, &self.settings).await
    }

    /// Work until `shutdown`: task messages from the shared consumer, the recovery pass over
    /// the log and the event store, and the maintenance schedule.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
        let stream = self.ensure_stream().await?;
        let consumer = shared_consumer(&stream, &self.settings).await?;
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut pulling = Box::pin(pull(consumer.clone(), permits.clone()));
        let mut recovery =
            tokio::time::interval(Duration::from_secs(self.settings.recovery_secs.max(1)));
        let mut maintenance =
            tokio::time::interval(Duration::from_secs(self.settings.maintenance_secs.max(1)));
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut scan = Scan::default();
        let mut tasks = JoinSet::new();
        tracing::info!(stream = %self.settings.stream, "saga runner running");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                pulled = &mut pulling => {
                    pulling.set(pull(consumer.clone(), permits.clone()));
                    let message = match pulled {
                        Ok(Some(message)) => message,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "task consumer error");
                            continue;
                        }
                    };
                    match permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let runner = self.clone();
                            tasks.spawn(async move {
                                runner.handle(message).await;
                                drop(permit);
                            });
                        }
                        // The recovery pass took the slot it was asked for: back to the
                        // server at once, for whichever worker has room.
                        Err(_) => {
                            tasks.spawn(async move {
                                if let Err(e) = message.ack_with(AckKind::Nak(None)).await {
                                    tracing::warn!(error = %e, "task nak failed");
                                }
                            });
                        }
                    }
                }
                _ = recovery.tick() => self.recover(&permits, &mut tasks, &mut scan).await,
                _ = maintenance.tick() => self.schedule_maintenance().await,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        // Sagas in flight stop where they are; the log and the unacknowledged messages let
        // the next worker (or this one, restarted) resume them.
        tasks.abort_all();
        Ok(())
    }

    /// The recovery pass: the aggregates with a saga that is due, and those with events that
    /// start sagas not recorded yet, as many as there are free slots (the rest wait for the
    /// next pass).
    async fn recover(&self, permits: &Arc<Semaphore>, tasks: &mut JoinSet<()>, scan: &mut Scan) {
        let mut aggregates: Vec<Aggregate> = match log::due_aggregates(&self.pool, 64).await {
            Ok(due) => due
                .into_iter()
                .map(|(aggregate_type, aggregate_id)| Aggregate {
                    aggregate_type,
                    aggregate_id,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due sagas");
                Vec::new()
            }
        };
        match self.unrecorded(scan).await {
            Ok(owed) => {
                for aggregate in owed {
                    if !aggregates.contains(&aggregate) {
                        aggregates.push(aggregate);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot scan for unrecorded sagas"),
        }
        for aggregate in aggregates {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            let runner = self.clone();
            tasks.spawn(async move {
                if let Err(e) = runner.process(&aggregate).await {
                    tracing::warn!(aggregate = %aggregate.aggregate_id, error = %e, "recovery pass failed");
                }
                drop(permit);
            });
        }
    }

    /// The next batch of the event store after `scan`'s mark: the aggregates with events
    /// older than `ack_wait_secs` that start sagas not recorded (their message was lost, or
    /// its worker died before recording them). The mark moves past what needs nothing, and
    /// stops before the first event still owed or too recent to judge.
    async fn unrecorded(&self, scan: &mut Scan) -> Result<Vec<Aggregate>, RunError> {
        let events =
            log::events_after(&self.pool, scan.mark, SCAN_BATCH, self.settings.ack_wait()).await?;
        let seen = events.iter().map(|scanned| Seen {
            position: scanned.event.position,
            settled: scanned.settled,
            owed: !scanned.recorded && !self.triggers.sagas_for(&scanned.event).is_empty(),
            aggregate: Aggregate {
                aggregate_type: scanned.event.aggregate_type.clone(),
                aggregate_id: scanned.event.aggregate_id.clone(),
            },
        });
        Ok(scan.advance(seen))
    }

    /// Ask for this period's maintenance pass; every worker asks, JetStream keeps one message
    /// per period (same message id), and one worker handles it.
    async fn schedule_maintenance(&self) {
        let every = self.settings.maintenance_secs.max(1) as i64;
        let period = chrono::Utc::now().timestamp() / every;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("maintenance-{every}-{period}").as_str(),
        );
        let published = self
            .js
            .publish_with_headers(
                self.settings.subject(MAINTENANCE_SUBJECT),
                headers,
                period.to_string().into(),
            )
            .await;
        if let Err(e) = published {
            tracing::warn!(error = %e, "cannot schedule the maintenance pass");
        }
    }

    /// One task message: run what it names, then acknowledge it, or ask for it again when
    /// its aggregate's next saga is due.
    async fn handle(&self, message: jetstream::Message) {
        let subject = self.settings.unprefixed(&message.subject).to_owned();
        let keepalive = {
            let acker = message.clone();
            let every = (self.settings.ack_wait() / 3).max(Duration::from_millis(100));
            tokio::spawn(async move {
                let mut every = tokio::time::interval(every);
                every.tick().await;
                loop {
                    every.tick().await;
                    let _ = acker.ack_with(AckKind::Progress).await;
                }
            })
        };
        let outcome = if subject.starts_with("system.maintenance.") {
            let period = std::str::from_utf8(&message.payload)
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or_default();
            self.maintain(period).await.map(|()| Outcome::Idle)
        } else {
            match self.triggers.aggregate_of(&subject) {
                Some(aggregate) => self.process(&aggregate).await,
                None => {
                    tracing::error!(%subject, "a task message names no aggregate; dropped");
                    Ok(Outcome::Idle)
                }
            }
        };
        keepalive.abort();
        let ack = match outcome {
            Ok(Outcome::Idle) => message.ack().await,
            Ok(Outcome::Later(delay)) => message.ack_with(AckKind::Nak(Some(delay))).await,
            Ok(Outcome::Busy) => {
                message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await
            }
            Err(e) => {
                tracing::warn!(%subject, error = %e, "task failed; will retry");
                message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await
            }
        };
        if let Err(e) = ack {
            tracing::warn!(%subject, error = %e, "task ack failed");
        }
    }

    /// The maintenance pass: start the sagas it asks for (each runs on its own aggregate).
    async fn maintain(&self, period: i64) -> Result<(), RunError> {
        let sagas = match self.triggers.maintenance(&self.env, period).await {
            Ok(sagas) => sagas,
            Err(e) => {
                tracing::warn!(error = %e, "maintenance pass failed");
                return Ok(());
            }
        };
        for saga in &sagas {
            log::start(&self.pool, saga).await?;
        }
        tracing::debug!(sagas = sagas.len(), period, "maintenance pass scheduled");
        Ok(())
    }

    /// Record the sagas `aggregate`'s events start that are not recorded yet.
    pub async fn sync(&self, aggregate: &Aggregate) -> Result<(), RunError> {
        let after = log::last_event_trigger(
            &self.pool,
            &aggregate.aggregate_type,
            &aggregate.aggregate_id,
        )
        .await?
        .unwrap_or(0);
        let events: Vec<StoredEvent> = sqlx::query_as(
            "SELECT position, aggregate_type, aggregate_id, sequence, event_type, \
                    event_version, payload, metadata, recorded_at \
             FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND position > $3 \
             ORDER BY sequence",
        )
        .bind(&aggregate.aggregate_type)
        .bind(&aggregate.aggregate_id)
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        for event in &events {
            for (kind, params) in self.triggers.sagas_for(event) {
                let saga = NewSaga {
                    kind,
                    aggregate_type: event.aggregate_type.clone(),
                    aggregate_id: event.aggregate_id.clone(),
                    trigger: format!("event:{}", event.position),
                    position: event.position,
                    params,
                    correlation_id: event
                        .meta(hexabase_command::metadata::CORRELATION_ID)
                        .map(str::to_owned),
                };
                if let Some(id) = log::start(&self.pool, &saga).await? {
                    tracing::info!(saga = %id, kind, aggregate = %saga.aggregate_id, "saga started");
                }
            }
        }
        Ok(())
    }

    /// Record what `aggregate`'s events start, then run its sagas in order while this worker
    /// holds the aggregate.
    pub async fn process(&self, aggregate: &Aggregate) -> Result<Outcome, RunError> {
        self.sync(aggregate).await?;
        let Some(_held) = self.hold(aggregate).await? else {
            return Ok(Outcome::Busy);
        };
        loop {
            let Some(saga) = log::next_unfinished(
                &self.pool,
                &aggregate.aggregate_type,
                &aggregate.aggregate_id,
            )
            .await?
            else {
                return Ok(Outcome::Idle);
            };
            let wait = saga.next_attempt_at - chrono::Utc::now();
            if let Ok(wait) = wait.to_std() {
                if wait > Duration::ZERO {
                    return Ok(Outcome::Later(wait));
                }
            }
            if let Some(delay) = self.run_saga(saga).await? {
                return Ok(Outcome::Later(delay));
            }
        }
    }

    /// The aggregate's advisory lock, on a connection that is closed when the guard drops (so
    /// the lock never outlives this worker's hold on it).
    async fn hold(
        &self,
        aggregate: &Aggregate,
    ) -> Result<Option<PoolConnection<Postgres>>, RunError> {
        let mut connection = self.pool.acquire().await?;
        connection.close_on_drop();
        let held: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtextextended('saga:' || $1 || ':' || $2, 0))",
        )
        .bind(&aggregate.aggregate_type)
        .bind(&aggregate.aggregate_id)
        .fetch_one(&mut *connection)
        .await?;
        Ok(held.then_some(connection))
    }

    /// Run one saga as far as it goes now: to its end (`None`), or until a retry is due later.
    async fn run_saga(&self, mut row: SagaRow) -> Result<Option<Duration>, RunError> {
        let Some(saga) = self.registry.get(&row.kind).cloned() else {
            tracing::error!(saga = %row.id, kind = %row.kind, "no saga of this kind; it fails");
            log::begin_unwind(
                &self.pool,
                &row.id,
                row.step,
                "unknown",
                "unknown saga kind",
            )
            .await?;
            log::finish(&self.pool, &row.id, "failed").await?;
            return Ok(None);
        };
        let steps = saga.steps();
        let reference = SagaRef {
            id: row.id.clone(),
            kind: row.kind.clone(),
            aggregate_type: row.aggregate_type.clone(),
            aggregate_id: row.aggregate_id.clone(),
            correlation_id: row.correlation_id.clone(),
        };
        let mut outputs: BTreeMap<String, Value> = log::outputs(&self.pool, &row.id).await?;
        let timeout = Duration::from_secs(self.settings.step_timeout_secs.max(1));
        let backoff = self.settings.backoff;
        loop {
            let index = usize::try_from(row.step).unwrap_or(0);
            let attempts = u32::try_from(row.attempts).unwrap_or(0) + 1;
            if row.state == "running" {
                if saga.coalesces() && index == 0 && row.attempts == 0 {
                    log::coalesce(&self.pool, &row).await?;
                }
                let Some(step) = steps.get(index) else {
                    log::finish(&self.pool, &row.id, "done").await?;
                    metrics::counter!("hexabase_sagas_finished_total", "kind" => saga.kind(), "state" => "done").increment(1);
                    tracing::info!(saga = %row.id, kind = %row.kind, "saga done");
                    return Ok(None);
                };
                log::begin_step(&self.pool, &row.id, row.step, step.name).await?;
                let result = {
                    let cx = Cx::new(&reference, &*self.env, &row.params, &outputs);
                    match tokio::time::timeout(timeout, (step.action)(&cx)).await {
                        Ok(result) => result,
                        Err(_) => Err(StepError::Transient(format!(
                            "step `{}` took longer than {} s",
                            step.name,
                            timeout.as_secs()
                        ))),
                    }
                };
                match result {
                    Ok(output) => {
                        log::finish_step(&self.pool, &row.id, row.step, &output).await?;
                        outputs.insert(step.name.to_owned(), output);
                    }
                    Err(StepError::Transient(e)) if attempts < backoff.max_attempts => {
                        let delay = backoff.delay(attempts);
                        tracing::warn!(saga = %row.id, step = step.name, attempts, error = %e, "step failed; retrying");
                        log::retry_later(&self.pool, &row.id, Some(row.step), &e, delay).await?;
                        return Ok(Some(delay));
                    }
                    Err(e) => {
                        let reason = match e {
                            StepError::Transient(e) => {
                                format!("step `{}` failed {attempts} times: {e}", step.name)
                            }
                            StepError::Permanent(e) => format!("step `{}` failed: {e}", step.name),
                        };
                        tracing::warn!(saga = %row.id, step = step.name, %reason, "saga unwinding");
                        log::begin_unwind(&self.pool, &row.id, row.step, step.name, &reason)
                            .await?;
                    }
                }
            } else {
                // Unwinding: note it, undo the finished steps last first, then record the end.
                let reason = row.failure.clone().unwrap_or_default();
                let failed_step = row.failed_step.clone().unwrap_or_default();
                let what = if !row.unwind_noted {
                    "unwinding"
                } else if index == 0 {
                    "failed"
                } else {
                    let name = steps.get(index - 1).map_or("unknown", |s| s.name);
                    log::begin_step(&self.pool, &row.id, row.step - 1, name).await?;
                    "undo"
                };
                let result = {
                    let cx = Cx::new(&reference, &*self.env, &row.params, &outputs);
                    let hook = match what {
                        "unwinding" => Some(saga.unwinding(&cx, &failed_step, &reason)),
                        "failed" => Some(saga.failed(&cx, &reason)),
                        _ => steps
                            .get(index - 1)
                            .and_then(|s| s.undo.as_ref())
                            .map(|undo| undo(&cx)),
                    };
                    match hook {
                        Some(future) => match tokio::time::timeout(timeout, future).await {
                            Ok(result) => result.map(drop),
                            Err(_) => Err(StepError::Transient(format!("{what} timed out"))),
                        },
                        None => Ok(()),
                    }
                };
                match (what, result) {
                    ("unwinding", Ok(())) => log::note_unwind(&self.pool, &row.id).await?,
                    ("failed", Ok(())) => {
                        log::finish(&self.pool, &row.id, "failed").await?;
                        metrics::counter!("hexabase_sagas_finished_total", "kind" => saga.kind(), "state" => "failed").increment(1);
                        tracing::warn!(saga = %row.id, kind = %row.kind, %reason, "saga failed");
                        return Ok(None);
                    }
                    (_, Ok(())) => {
                        log::finish_undo(&self.pool, &row.id, row.step - 1).await?;
                        if let Some(step) = steps.get(index - 1) {
                            outputs.remove(step.name);
                        }
                    }
                    // What unwinds must finish: retried (capped backoff) however long it takes.
                    (_, Err(e)) => {
                        let delay = backoff.delay(attempts.min(backoff.max_attempts));
                        let step = (what == "undo").then_some(row.step - 1);
                        tracing::warn!(saga = %row.id, what, attempts, error = %e, "unwinding failed; retrying");
                        log::retry_later(&self.pool, &row.id, step, &format!("{what}: {e}"), delay)
                            .await?;
                        return Ok(Some(delay));
                    }
                }
            }
            row = match log::get(&self.pool, &row.id).await? {
                Some(row) => row,
                None => return Ok(None),
            };
            if row.state == "done" || row.state == "failed" {
                return Ok(None);
            }
        }
    }
}

/// The task subjects, with the deployment's prefix.
fn task_subjects(settings: &RunnerSettings) -> Vec<String> {
    TASK_SUBJECTS.iter().map(|s| settings.subject(s)).collect()
}

/// The stream of task messages: the spec's task subjects, duplicates dropped by message id. A
/// stream made by an earlier version gets the subjects added since.
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &RunnerSettings,
) -> Result<stream::Stream, RunError> {
    let config = stream::Config {
        name: settings.stream.clone(),
        subjects: task_subjects(settings),
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(10 * 60),
        max_age: Duration::from_secs(7 * 24 * 3600),
        ..Default::default()
    };
    let mut stream = js
        .get_or_create_stream(config.clone())
        .await
        .map_err(js_err)?;
    let missing = config
        .subjects
        .iter()
        .any(|s| !stream.cached_info().config.subjects.contains(s));
    if missing {
        let mut updated = stream.cached_info().config.clone();
        for subject in &config.subjects {
            if !updated.subjects.contains(subject) {
                updated.subjects.push(subject.clone());
            }
        }
        js.update_stream(updated).await.map_err(js_err)?;
        stream = js.get_stream(&settings.stream).await.map_err(js_err)?;
    }
    Ok(stream)
}

/// The consumer every worker shares, created or brought to this worker's settings (so a
/// changed `ack_wait_secs` takes effect).
async fn shared_consumer(
    stream: &stream::Stream,
    settings: &RunnerSettings,
) -> Result<consumer::PullConsumer, RunError> {
    let config = consumer::pull::Config {
        durable_name: Some(CONSUMER.to_owned()),
        filter_subjects: task_subjects(settings),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ack_wait: settings.ack_wait(),
        max_ack_pending: 1_000,
        ..Default::default()
    };
    match stream.create_consumer(config).await {
        Ok(consumer) => Ok(consumer),
        // One made with settings the server will not change in place: used as it is.
        Err(e) => stream.get_consumer(CONSUMER).await.map_err(|_| js_err(e)),
    }
}

/// How long an empty pull waits on the server before it is asked again.
const PULL_WAIT: Duration = Duration::from_secs(10);

/// Once this worker has a free slot, one task message from the shared consumer (`None`: none
/// came while the pull waited). The slot is not held meanwhile, so the recovery pass can use
/// it; a failed pull waits a moment before it reports, so errors do not spin the loop.
async fn pull(
    consumer: consumer::PullConsumer,
    permits: Arc<Semaphore>,
) -> Result<Option<jetstream::Message>, RunError> {
    drop(permits.acquire().await.map_err(js_err)?);
    let pulled = async {
        let mut batch = consumer
            .batch()
            .max_messages(1)
            .expires(PULL_WAIT)
            .messages()
            .await
            .map_err(js_err)?;
        batch.next().await.transpose().map_err(js_err)
    }
    .await;
    if pulled.is_err() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    pulled
}

/// Events the recovery pass reads from the store at a time.
const SCAN_BATCH: i64 = 1_000;

/// How far a worker's recovery pass has walked the event store: every event at or below
/// `mark` either starts no saga or has its sagas recorded. It starts at the beginning, so a
/// worker's first passes read the store's history, a batch each.
#[derive(Debug, Default)]
struct Scan {
    mark: i64,
}

/// An event as the scan judges it.
#[derive(Debug)]
struct Seen {
    position: i64,
    /// Older than a message is given to be acted upon.
    settled: bool,
    /// It starts sagas that are not recorded.
    owed: bool,
    aggregate: Aggregate,
}

impl Scan {
    /// The aggregates `events` (in position order, after the mark) owe a sync, and the mark
    /// moved up to the first event still owed or not settled.
    fn advance(&mut self, events: impl IntoIterator<Item = Seen>) -> Vec<Aggregate> {
        let mut owed: Vec<Aggregate> = Vec::new();
        for seen in events {
            if !seen.settled {
                break;
            }
            if seen.owed {
                if !owed.contains(&seen.aggregate) {
                    owed.push(seen.aggregate);
                }
            } else if owed.is_empty() {
                self.mark = seen.position;
            }
        }
        owed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(position: i64, settled: bool, owed: bool, id: &str) -> Seen {
        Seen {
            position,
            settled,
            owed,
            aggregate: Aggregate {
                aggregate_type: "Workspace".into(),
                aggregate_id: id.into(),
            },
        }
    }

    fn ids(aggregates: &[Aggregate]) -> Vec<&str> {
        aggregates.iter().map(|a| a.aggregate_id.as_str()).collect()
    }

    #[test]
    fn the_scan_moves_past_what_needs_nothing_and_stops_before_what_is_owed() {
        let mut scan = Scan::default();
        let owed = scan.advance([
            seen(1, true, false, "ws-a"),
            seen(2, true, false, "ws-b"),
            seen(3, true, true, "ws-c"),
            seen(4, true, false, "ws-d"),
            seen(5, true, true, "ws-e"),
            seen(6, true, true, "ws-c"),
        ]);
        assert_eq!(ids(&owed), ["ws-c", "ws-e"]);
        assert_eq!(scan.mark, 2);

        // Once recorded, the pass goes on from there.
        let owed = scan.advance([
            seen(3, true, false, "ws-c"),
            seen(4, true, false, "ws-d"),
            seen(5, true, false, "ws-e"),
        ]);
        assert!(owed.is_empty(), "{owed:?}");
        assert_eq!(scan.mark, 5);
    }

    #[test]
    fn events_too_recent_to_judge_stop_the_scan_and_are_left_to_their_messages() {
        let mut scan = Scan { mark: 10 };
        let owed = scan.advance([
            seen(11, true, false, "ws-a"),
            seen(12, false, true, "ws-b"),
            seen(13, true, true, "ws-c"),
        ]);
        assert!(owed.is_empty(), "{owed:?}");
        assert_eq!(scan.mark, 11);
        assert!(scan.advance([]).is_empty());
        assert_eq!(scan.mark, 11);
    }
}
