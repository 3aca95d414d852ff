//! The application: connections, the HTTP server, the worker, and `dev` (both in one process).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use cqrs_es::Aggregate;
use hexabase_command::organization::Organization;
use hexabase_command::store::{self, Cqrs, StoredEvent};
use hexabase_command::user::User;
use hexabase_command::workspace::Workspace;
use hexabase_command::OrganizationId;
use hexabase_projector::organization as org_projection;
use hexabase_projector::relay::Relay;
use hexabase_projector::{run_projection, EventStream};
use hexabase_query::consistency::{self, WaitError};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::Server;
use secrecy::ExposeSecret;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;
use crate::config::Settings;
use crate::identity::Providers;
use crate::keyring::KeyringService;
use crate::session::RecentRevocations;
use crate::shared::Shared;

pub struct AppState {
    pub settings: Settings,
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub events: EventStream,
    pub tokens: Tokens,
    /// The keys `tokens` signs and verifies with, from the event store.
    pub session_keys: Arc<KeyringService>,
    /// The OIDC provider the vClusters trust (its own keyring).
    pub oidc: crate::oidc::OidcProvider,
    /// Redis: what every replica must see at once (revocations, rate limits).
    pub shared: Shared,
    /// External identity providers users sign in with.
    pub providers: Providers,
    /// Recently revoked sessions, re-read from Postgres (backs up Redis).
    pub revocations: RecentRevocations,
    pub organizations: Cqrs<Organization>,
    /// New organizations: appended without reading first (their ids were just generated).
    pub new_organizations: store::Store<Organization>,
    pub users: Cqrs<User>,
    pub workspaces: Cqrs<Workspace>,
    /// Issued tokens: one new aggregate each, appended without reading first.
    pub credentials: store::Store<hexabase_command::credential::Credential>,
    /// Workspaces' and organizations' current states, for deciding who may hold workspace
    /// tokens.
    pub workspace_states: store::StateCache<Workspace>,
    pub organization_states: store::StateCache<Organization>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to Postgres: {0}")]
    Postgres(#[source] sqlx::Error),
    #[error("cannot connect to NATS at {url}: {reason}")]
    Nats { url: String, reason: String },
    #[error(transparent)]
    Keyring(#[from] crate::keyring::KeyringError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error(transparent)]
    Provider(#[from] crate::identity::LoginError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("invalid Redis URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl AppState {
    pub async fn connect(settings: Settings) -> Result<Arc<Self>, StartError> {
        let pool = connect_database(&settings).await?;
        let nats = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(&settings.nats.url)
            .await
            .map_err(|e| StartError::Nats {
                url: settings.nats.url.clone(),
                reason: e.to_string(),
            })?;
        // Each projection reads its aggregate types through one consumer with several subject
        // filters, which NATS has since 2.10.
        let version = nats.server_info().version;
        if !supports_subject_filters(&version) {
            return Err(StartError::Nats {
                url: settings.nats.url.clone(),
                reason: format!("NATS {version} is too old: 2.10 or newer is required"),
            });
        }
        let js = jetstream::new(nats.clone());
        let session_keys = Arc::new(KeyringService::for_sessions(&pool, &settings.auth).await?);
        let tokens = Tokens::new(session_keys.key_set().await?, &settings.auth);
        let oidc =
            crate::oidc::OidcProvider::open(&pool, &settings.auth, &settings.http.public_url)
                .await?;
        let events = EventStream {
            stream: settings.nats.stream.clone(),
            subject_prefix: settings.nats.subject_prefix.clone(),
        };
        let shared = Shared::new(&settings.redis)?;
        let providers = Providers::from_settings(&settings)?;
        Ok(Arc::new(Self {
            organizations: store::cqrs(pool.clone(), ()),
            new_organizations: store::store(pool.clone()),
            users: store::cqrs(pool.clone(), ()),
            workspaces: store::cqrs(pool.clone(), ()),
            credentials: store::store(pool.clone()),
            workspace_states: store::StateCache::default(),
            organization_states: store::StateCache::default(),
            shared,
            providers,
            revocations: RecentRevocations::default(),
            settings,
            pool,
            nats,
            js,
            events,
            tokens,
            session_keys,
            oidc,
        }))
    }

    /// Wait (bounded by `http.read_wait_ms`) until `projection` has applied the event at
    /// `position`; returns that event.
    pub async fn wait_for(
        &self,
        projection: &str,
        position: i64,
    ) -> Result<StoredEvent, WaitError> {
        consistency::wait_for(&self.pool, projection, position, self.read_deadline()).await
    }

    /// Wait until the organization projection reflects every event of `org` recorded at or
    /// before `position` (reads authorize from its member list).
    pub async fn wait_for_organization(
        &self,
        org: &OrganizationId,
        position: i64,
    ) -> Result<(), WaitError> {
        consistency::wait_for_aggregate(
            &self.pool,
            org_projection::NAME,
            (Organization::TYPE, org.as_str()),
            position,
            self.read_deadline(),
        )
        .await
    }

    fn read_deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.settings.http.read_wait_ms)
    }

    /// Events each projection's consumer has yet to process.
    pub async fn projection_pending(&self) -> Vec<(&'static str, u64)> {
        let mut out = Vec::new();
        let Ok(stream) = self.js.get_stream(&self.events.stream).await else {
            return out;
        };
        for projection in hexabase_projector::all() {
            let name = hexabase_projector::consumer_name(projection.as_ref());
            let consumer: Result<jetstream::consumer::PullConsumer, _> =
                stream.get_consumer(&name).await;
            // Fetching the consumer reads its current state.
            let pending = consumer.map_or(0, |consumer| {
                let info = consumer.cached_info();
                info.num_pending + info.num_ack_pending as u64
            });
            out.push((projection.name(), pending));
        }
        out
    }
}

/// Whether a NATS server of `version` (`2.10.4`, `v2.11.0-beta`) has consumers with several
/// subject filters.
fn supports_subject_filters(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 10)
}

pub async fn connect_database(settings: &Settings) -> Result<PgPool, StartError> {
    PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // No round trip to Postgres before every use: a connection that broke is dropped by
        // the pool on its first error (the command or read is then answered with an error
        // and may be retried), and none lives longer than the pool's idle and lifetime limits.
        .test_before_acquire(false)
        .connect(settings.database.url.expose_secret())
        .await
        .map_err(StartError::Postgres)
}

pub async fn migrate(pool: &PgPool) -> Result<(), StartError> {
    hexabase_schema::MIGRATOR.run(pool).await?;
    Ok(())
}

/// A bound HTTP listener; `addr` is known before serving (port 0 picks a free one).
enum Listening {
    Plain(poem::listener::TcpAcceptor),
    Tls(crate::tls::TlsAcceptor),
}

pub struct HttpServer {
    acceptor: Listening,
    pub addr: SocketAddr,
}

impl HttpServer {
    pub async fn bind(addr: &str) -> Result<Self, StartError> {
        let listen_err = |e: std::io::Error| StartError::Listen {
            addr: addr.to_owned(),
            reason: e.to_string(),
        };
        let acceptor = TcpListener::bind(addr.to_owned())
            .into_acceptor()
            .await
            .map_err(listen_err)?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| listen_err(std::io::Error::other("no local address")))?;
        Ok(Self {
            acceptor: Listening::Plain(acceptor),
            addr,
        })
    }

    /// Bind as configured: `http.listen`, with TLS when `http.tls_cert_file` and
    /// `http.tls_key_file` are set.
    pub async fn bind_configured(http: &crate::config::HttpSettings) -> Result<Self, StartError> {
        let server = Self::bind(&http.listen).await?;
        match (&http.tls_cert_file, &http.tls_key_file) {
            (Some(cert), Some(key)) => Ok(server.with_tls(crate::tls::server_config(cert, key)?)),
            (None, None) => Ok(server),
            _ => Err(StartError::Tls(crate::tls::TlsError::Config(
                "set both http.tls_cert_file and http.tls_key_file, or neither".into(),
            ))),
        }
    }

    /// Serve HTTPS with `config`.
    pub fn with_tls(self, config: Arc<rustls::ServerConfig>) -> Self {
        let acceptor = match self.acceptor {
            Listening::Plain(tcp) => Listening::Tls(crate::tls::TlsAcceptor::new(tcp, config)),
            tls => tls,
        };
        Self {
            acceptor,
            addr: self.addr,
        }
    }

    pub async fn run(
        self,
        state: Arc<AppState>,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, "HTTP API listening");
        // Signing keys: refreshed from the event store and rotated while the API serves.
        let keys_stop = shutdown.child_token();
        let keys = {
            let (state, stop) = (state.clone(), keys_stop.clone());
            tokio::spawn(async move { state.session_keys.run(&state.tokens, stop).await })
        };
        let oidc_keys = {
            let (state, stop) = (state.clone(), keys_stop.clone());
            tokio::spawn(async move { state.oidc.keys.run(&state.oidc.tokens, stop).await })
        };
        let routes = crate::api::routes(state);
        let stop = async move { shutdown.cancelled().await };
        let grace = Some(Duration::from_secs(10));
        let served = match self.acceptor {
            Listening::Plain(acceptor) => {
                Server::new_with_acceptor(acceptor)
                    .run_with_graceful_shutdown(routes, stop, grace)
                    .await
            }
            Listening::Tls(acceptor) => {
                Server::new_with_acceptor(acceptor)
                    .run_with_graceful_shutdown(routes, stop, grace)
                    .await
            }
        };
        keys_stop.cancel();
        let _ = keys.await;
        let _ = oidc_keys.await;
        served
    }
}

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
            let state = AppState::connect(settings).await?;
            run_worker(state, shutdown).await
        })
    })
}

/// The worker: the outbox relay and every projection, until `shutdown`.
pub async fn run_worker(state: Arc<AppState>, shutdown: CancellationToken) -> anyhow::Result<()> {
    crate::telemetry::metrics();
    let mut tasks = JoinSet::new();
    let relay = Relay::new(state.pool.clone(), state.js.clone(), state.events.clone());
    let token = shutdown.clone();
    tasks.spawn(async move {
        relay
            .run(token.cancelled_owned())
            .await
            .map_err(anyhow::Error::from)
    });
    let (pool, token) = (state.pool.clone(), shutdown.clone());
    tasks.spawn(async move {
        // Housekeeping: expired logins and sessions.
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = token.cancelled() => return Ok(()),
                _ = every.tick() => {
                    match crate::session::purge_expired(&pool).await {
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
            state.pool.clone(),
            state.js.clone(),
            state.events.clone(),
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

#[cfg(test)]
mod tests {
    use super::supports_subject_filters;

    #[test]
    fn nats_with_several_subject_filters_per_consumer_is_2_10_or_newer() {
        for old in ["2.9.10", "v2.9.25", "1.4.1", "", "garbage"] {
            assert!(!supports_subject_filters(old), "{old}");
        }
        for new in ["2.10.0", "v2.10.4", "2.11.0-beta.1", "2.15.2", "3.0.0"] {
            assert!(supports_subject_filters(new), "{new}");
        }
    }
}
