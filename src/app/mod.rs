//! The application layer: one module per resource, between the HTTP entrypoints (`api`) and
//! the write and read sides. Each operation takes an `OpContext` (who calls, under which
//! request), authorizes through the one policy (`authz`), runs the command or the query, and
//! answers domain values or the one `Error`.
//!
//! `App` holds what the operations need: the configuration, the connections, the event store's
//! handles per aggregate, and identity's services.

mod audit;
mod authz;
mod billing;
mod consistency;
mod groups;
mod nodes;
pub mod oauth;
mod organizations;
mod plans;
mod projects;
pub mod roles;
pub mod sessions;
pub mod tasks;
mod tokens;
mod workspaces;

use hexabase_sagas::driver::vcluster::node_pool;
use hexabase_sagas::driver::vcluster::nodes::NodePool;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use hexabase_command::credential::Credential;
use hexabase_command::organization::Organization;
use hexabase_command::store::{self, Cqrs};
use hexabase_command::user::User;
use hexabase_command::workspace::Workspace;
use hexabase_command::{CommandMetadata, UserId};
use hexabase_identity::external::login::Logins;
use hexabase_identity::external::{LoginError, Providers};
use hexabase_identity::issuer::Issuer;
use hexabase_identity::keyring::{KeyringService, KeyringServiceError};
use hexabase_identity::session::Sessions;
use hexabase_identity::shared::Shared;
use hexabase_identity::token::{Principal, Tokens};
use hexabase_projector::EventStream;
use secrecy::ExposeSecret;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use hexabase_command::stripe_event::StripeEvent;
use hexabase_sagas::billing::stripe::{Stripe, StripeFailure};

use crate::config::{DriverKind, Settings};
use crate::stripe_signature::Verifier;

pub use billing::{BillingView, CheckoutStarted, WebhookReceipt};
pub use organizations::OrganizationDetail;
pub use workspaces::AcceptedWorkspace;

/// Who asks for an operation, and under which request (the events it records carry both).
pub struct OpContext {
    pub caller: Principal,
    pub request_id: String,
}

impl OpContext {
    pub fn user(&self) -> &UserId {
        &self.caller.user
    }

    pub fn metadata(&self) -> CommandMetadata {
        CommandMetadata::for_request(self.caller.user.clone(), self.request_id.clone())
    }
}

/// One page of a list: at most `limit` items after `after` (the previous page's last id).
pub struct PageRequest<T> {
    pub limit: u32,
    pub after: Option<T>,
}

pub struct App {
    pub settings: Settings,
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub events: EventStream,
    /// API access tokens, signed with the `sessions` keyring.
    pub tokens: Arc<Tokens>,
    /// The keys `tokens` signs and verifies with, from the event store.
    pub session_keys: Arc<KeyringService>,
    /// The OpenID provider the workspaces' API servers trust (its own keyring).
    pub issuer: Issuer,
    /// Redis: what every replica must see at once (revocations, rate limits).
    pub shared: Arc<Shared>,
    pub sessions: Sessions,
    /// Sign-in through the external identity providers.
    pub logins: Logins,
    pub organizations: Cqrs<Organization>,
    /// New organizations: appended without reading first (their ids were just generated).
    pub new_organizations: store::Store<Organization>,
    pub users: Cqrs<User>,
    pub workspaces: Cqrs<Workspace>,
    /// The host's dedicated nodes (with the `vcluster` driver), or why there are none.
    pub node_pool: Result<NodePool, String>,
    /// Issued tokens: one new aggregate each, appended without reading first.
    pub credentials: store::Store<Credential>,
    /// Workspaces' and organizations' current states, for deciding who may hold workspace
    /// tokens.
    pub workspace_states: store::StateCache<Workspace>,
    pub organization_states: store::StateCache<Organization>,
    /// Stripe, when billing is configured (`billing.secret_key`).
    pub stripe: Option<Stripe>,
    /// Stripe's webhook deliveries: one new aggregate per Stripe event.
    pub stripe_events: store::Store<StripeEvent>,
    /// The webhook endpoint's signing secrets.
    pub webhook_verifier: Verifier,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to Postgres: {0}")]
    Postgres(#[source] sqlx::Error),
    #[error("cannot connect to NATS at {url}: {reason}")]
    Nats { url: String, reason: String },
    #[error(transparent)]
    Keyring(#[from] KeyringServiceError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error(transparent)]
    Provider(#[from] LoginError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("invalid Redis URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("billing: {0}")]
    Billing(#[from] StripeFailure),
}

impl App {
    /// Connect to Postgres, NATS and Redis, open the signing keyrings (creating their first
    /// keys if need be) and the configured identity providers.
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
        let tokens = Arc::new(Tokens::new(session_keys.key_set().await?, &settings.auth));
        let issuer = Issuer::open(&pool, &settings.auth, &settings.http.public_url).await?;
        let events = EventStream {
            stream: settings.nats.stream.clone(),
            subject_prefix: settings.nats.subject_prefix.clone(),
        };
        let shared = Arc::new(Shared::new(&settings.redis)?);
        let sessions = Sessions::new(
            pool.clone(),
            shared.clone(),
            tokens.clone(),
            settings.auth.refresh_ttl_secs,
        );
        let providers =
            Providers::from_settings(&settings.auth.providers, &settings.http.public_url)?;
        let logins = Logins::new(
            pool.clone(),
            providers,
            store::cqrs(pool.clone(), ()),
            settings.auth.login_ttl_secs,
        );
        let node_pool = match settings.provisioning.driver {
            DriverKind::Vcluster => node_pool(&settings.provisioning.vcluster)
                .await
                .map_err(|e| e.to_string()),
            DriverKind::Local => Err(
                "this control plane's `local` cluster driver has no host nodes to dedicate".into(),
            ),
        };
        let stripe = settings
            .billing
            .secret_key
            .as_ref()
            .map(|key| Stripe::new(key.expose_secret(), &settings.billing.api_url))
            .transpose()?;
        let webhook_verifier = Verifier::new(
            settings
                .billing
                .webhook_secrets
                .iter()
                .map(|s| s.expose_secret()),
            settings.billing.webhook_tolerance_secs,
        );
        Ok(Arc::new(Self {
            stripe,
            stripe_events: store::store(pool.clone()),
            webhook_verifier,
            node_pool,
            organizations: store::cqrs(pool.clone(), ()),
            new_organizations: store::store(pool.clone()),
            users: store::cqrs(pool.clone(), ()),
            workspaces: store::cqrs(pool.clone(), ()),
            credentials: store::store(pool.clone()),
            workspace_states: store::StateCache::default(),
            organization_states: store::StateCache::default(),
            shared,
            sessions,
            logins,
            settings,
            pool,
            nats,
            js,
            events,
            tokens,
            session_keys,
            issuer,
        }))
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
