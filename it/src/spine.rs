//! `TestApp`: the control plane (API and, unless asked otherwise, the worker) in-process on a
//! free port, against its own database and its own JetStream stream.

use std::sync::Arc;
use std::time::Duration;

use hexabase::app::{self, App};
use hexabase::config::Settings;
use hexabase::server::HttpServer;
use hexabase_command::UserId;
use hexabase_identity::keyring::Kek;
use hexabase_identity::token::Tokens;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::Value;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::services::{self, TestDatabase, HOW_TO_START};

#[derive(Debug, Clone)]
pub struct TestAppOptions {
    /// Run the outbox relay and projections in-process (default: yes).
    pub worker: bool,
    /// Size of the app's Postgres pool (default 12).
    pub max_connections: u32,
}

impl Default for TestAppOptions {
    fn default() -> Self {
        Self {
            worker: true,
            max_connections: 12,
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub state: Arc<App>,
    pub pool: PgPool,
    pub settings: Settings,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    shutdown: CancellationToken,
    workers: Vec<JoinHandle<()>>,
    /// Stops the workers running apart (`start_worker_apart`).
    apart: Vec<CancellationToken>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(TestAppOptions::default()).await
    }

    pub async fn spawn_with(options: TestAppOptions) -> Self {
        crate::init_crypto();
        let server = HttpServer::bind("127.0.0.1:0").await.expect("bind");
        Self::spawn_on(server, options, |_| {}).await
    }

    /// Like `spawn_with`, on a server already bound (so peers can be told its URL before it
    /// starts), with `configure` adjusting the settings last.
    pub async fn spawn_on(
        server: HttpServer,
        options: TestAppOptions,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        crate::init_crypto();
        let base = format!("http://{}", server.addr);
        let db = TestDatabase::create().await;
        let id = Uuid::new_v4().simple().to_string();

        let mut settings = Settings::load(None).expect("default settings");
        settings.database.url = SecretString::from(db.url.clone());
        settings.database.max_connections = options.max_connections;
        settings.nats.url = services::nats_url();
        settings.nats.stream = format!("HXBT_{id}");
        settings.nats.subject_prefix = format!("hxbt.{id}");
        settings.auth.key_encryption_key = Some(SecretString::from(
            Kek::generate_base64().expect("a key-encryption key"),
        ));
        settings.redis.url = SecretString::from(services::redis_url());
        settings.redis.key_prefix = format!("hxbt:{id}");
        settings.http.listen = "127.0.0.1:0".into();
        settings.http.read_wait_ms = 10_000;
        settings.log.filter = std::env::var("HEXABASE_TEST_LOG").unwrap_or_else(|_| "warn".into());
        settings.log.format = "text".into();
        settings.http.listen = server.addr.to_string();
        settings.http.public_url = base.clone();
        // The sagas' own stream and subjects, and clusters under a directory of this app's.
        settings.sagas.stream = format!("HXBT_TASKS_{id}");
        settings.sagas.subject_prefix = format!("hxbt-tasks.{id}");
        settings.sagas.recovery_secs = 1;
        settings.sagas.backoff.base_ms = 100;
        settings.sagas.backoff.max_ms = 2_000;
        settings.sagas.backoff.max_attempts = 5;
        settings.provisioning.local.state_dir =
            std::env::temp_dir().join(format!("hxb-clusters-{id}"));
        configure(&mut settings);
        hexabase::telemetry::init_logging(&settings.log);

        let pool = db.pool(4).await;
        app::migrate(&pool).await.expect("migrations apply");
        pool.close().await;

        let state = App::connect(settings.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}; {HOW_TO_START}"));
        let shutdown = CancellationToken::new();
        tokio::spawn(server.run(state.clone(), shutdown.clone()));
        let mut test_app = Self {
            base,
            pool: state.pool.clone(),
            state,
            settings,
            // Redirects are answers the tests look at, not followed.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            db,
            shutdown,
            workers: Vec::new(),
            apart: Vec::new(),
        };
        if options.worker {
            test_app.start_worker();
        }
        test_app
    }

    /// Start a worker (relay and projections); call again for more workers sharing the work.
    pub fn start_worker(&mut self) {
        let (state, token) = (self.state.clone(), self.shutdown.child_token());
        self.workers.push(tokio::spawn(async move {
            if let Err(e) = hexabase::worker::run_worker(state, token).await {
                panic!("worker failed: {e:#}");
            }
        }));
    }

    /// Start a worker as a process of its own runs one (`hexabase::worker::spawn_worker_apart`): on a thread
    /// and runtime of its own, with its own connections to Postgres and NATS.
    pub fn start_worker_apart(&mut self) {
        let token = self.shutdown.child_token();
        self.apart.push(token.clone());
        let thread = hexabase::worker::spawn_worker_apart(self.settings.clone(), token);
        self.workers
            .push(tokio::task::spawn_blocking(move || match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("worker failed: {e:#}"),
                Err(_) => panic!("the worker thread panicked"),
            }));
    }

    /// An API server of this app as a `serve` process runs one: on a thread of its own, with
    /// the runtime its settings ask for (`runtime.threads`), its own connections and state;
    /// returns its base URL. It stops with the app.
    pub fn serve_apart(&self) -> String {
        let settings = self.settings.clone();
        let token = self.shutdown.child_token();
        let (ready, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = settings.runtime.build().expect("server runtime");
            runtime.block_on(async move {
                let server = HttpServer::bind("127.0.0.1:0").await.expect("bind");
                let base = format!("http://{}", server.addr);
                let state = App::connect(settings)
                    .await
                    .unwrap_or_else(|e| panic!("{e}; {HOW_TO_START}"));
                let _ = ready.send(base);
                server.run(state, token).await
            })
        });
        address.recv().expect("the server apart starts")
    }

    /// Another API replica of this app (its own process state, the same database, NATS and
    /// Redis); returns its base URL. It stops with the app.
    pub async fn replica(&self) -> String {
        let server = HttpServer::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", server.addr);
        let state = App::connect(self.settings.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}; {HOW_TO_START}"));
        tokio::spawn(server.run(state, self.shutdown.child_token()));
        base
    }

    pub fn tokens(&self) -> &Tokens {
        &self.state.tokens
    }

    /// A new user and a valid access token for them, signed by the real key.
    pub fn user(&self) -> (UserId, String) {
        let user = UserId::generate();
        let token = self.tokens().issue(&user).expect("sign token");
        (user, token)
    }

    /// Record `user` as signed in once through a provider, with `email` and `name` (so
    /// `/auth/me` and the member lists know them).
    pub async fn register(&self, user: &UserId, email: &str, name: &str) {
        use hexabase_command::user::{ExternalProfile, Identity, UserCommand};
        use hexabase_command::values::Email;
        use hexabase_command::CommandMetadata;
        let command = UserCommand::Register {
            id: user.clone(),
            profile: ExternalProfile {
                identity: Identity {
                    provider: "dex".into(),
                    subject: user.to_string(),
                },
                email: Some(Email::parse("email", email).expect("an email")),
                email_verified: true,
                display_name: Some(name.into()),
            },
        };
        let metadata = CommandMetadata::for_request(user.clone(), "it".into());
        self.state
            .users
            .execute_with_metadata(user.as_str(), command, metadata.into_map())
            .await
            .expect("the user is registered");
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.request(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    /// Create an organization and return its id and the event position.
    pub async fn create_org(&self, token: &str, name: &str) -> (String, i64) {
        let reply = self
            .post(
                "/api/v1/organizations",
                token,
                &serde_json::json!({ "name": name }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let id = reply.body["id"].as_str().expect("id").to_owned();
        let position = reply.body["position"].as_i64().expect("position");
        (id, position)
    }

    /// Workspace `name` (plan `starter`) of `org`, requested by `token`; returns its id.
    pub async fn create_workspace(&self, token: &str, org: &str, name: &str) -> String {
        let reply = self
            .post(
                &format!("/api/v1/organizations/{org}/workspaces"),
                token,
                &serde_json::json!({ "name": name, "plan": "starter" }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
        reply.body["id"].as_str().expect("id").to_owned()
    }

    /// The id of the group called `name` in workspace `ws`, as `token` lists the groups.
    pub async fn group_id(&self, ws: &str, token: &str, name: &str) -> String {
        let groups = self
            .get(&format!("/api/v1/workspaces/{ws}/groups"), token)
            .await;
        groups.body["items"]
            .as_array()
            .and_then(|items| items.iter().find(|g| g["name"] == name))
            .and_then(|g| g["id"].as_str())
            .unwrap_or_else(|| panic!("no group {name} in {ws}: {}", groups.text))
            .to_owned()
    }

    /// The JSON body of a GET that needs no session (discovery, keys).
    pub async fn public_json(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("a JSON body")
    }

    /// Add `user` to group `group` of workspace `ws` as the holder of `token`; must succeed.
    pub async fn add_to_group(&self, ws: &str, group: &str, token: &str, user: &str) {
        let joined = self
            .post(
                &format!("/api/v1/workspaces/{ws}/groups/{group}/members"),
                token,
                &serde_json::json!({ "user_id": user }),
            )
            .await;
        assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.text);
    }

    /// How many workspace tokens organization `org`'s event history records (read as `token`).
    pub async fn credentials_recorded(&self, org: &str, token: &str) -> usize {
        let history = self
            .get(
                &format!("/api/v1/organizations/{org}/events?aggregate_type=Credential&limit=100"),
                token,
            )
            .await;
        history.body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no history: {}", history.text))
            .len()
    }

    /// A new user who joined organization `org` with `role` (invited by `admin`, then accepting
    /// as the invited email would); returns them and their token once the read model shows them.
    pub async fn member_of(&self, org: &str, admin: &str, role: &str) -> (UserId, String) {
        let (user, token) = self.user();
        let email = format!("{}@example.com", &user.as_str()[8..20]);
        let invite = self
            .post(
                &format!("/api/v1/organizations/{org}/users"),
                admin,
                &serde_json::json!({ "email": email, "role": role }),
            )
            .await;
        assert_eq!(invite.status, StatusCode::CREATED, "{}", invite.text);
        let accept = hexabase_command::organization::OrganizationCommand::AcceptInvitation {
            verified_email: hexabase_command::values::Email::parse("email", &email).expect("email"),
            actor: user.clone(),
        };
        let metadata = hexabase_command::CommandMetadata::for_request(user.clone(), "it".into());
        self.state
            .organizations
            .execute_with_metadata(org, accept, metadata.into_map())
            .await
            .expect("accept the invitation");
        self.caught_up().await;
        (user, token)
    }

    /// Poll until `check` holds (projections are asynchronous); panics after 30 s.
    pub async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.eventually_within(Duration::from_secs(30), what, check)
            .await
    }

    pub async fn eventually_within<F, Fut>(&self, timeout: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        while !check().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stop the workers abruptly (as a crash would) and wait until they have ended.
    pub async fn kill_workers(&mut self) {
        for token in self.apart.drain(..) {
            token.cancel();
        }
        for worker in self.workers.drain(..) {
            worker.abort();
            let _ = worker.await;
        }
    }

    /// Messages currently stored in this app's JetStream stream (0 if it does not exist yet).
    pub async fn stream_messages(&self) -> u64 {
        match self.state.js.get_stream(&self.settings.nats.stream).await {
            Ok(mut stream) => stream.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Wait until every committed event is published and applied by every projection.
    pub async fn caught_up(&self) {
        self.caught_up_within(Duration::from_secs(30)).await
    }

    pub async fn caught_up_within(&self, timeout: Duration) {
        self.caught_up_after(0, timeout).await
    }

    /// The same, for a pipeline that had caught up with every event up to position `after`:
    /// only the events since are looked at, so the wait does not grow with the store.
    pub async fn caught_up_after(&self, after: i64, timeout: Duration) {
        let pool = self.pool.clone();
        self.eventually_within(timeout, "the outbox to drain and the projections to catch up", || {
            let pool = pool.clone();
            async move {
                let projections = hexabase_projector::all();
                let (names, types): (Vec<String>, Vec<String>) = projections
                    .iter()
                    .flat_map(|p| {
                        p.aggregate_types()
                            .iter()
                            .filter(|t| !p.applies_by_position(t))
                            .map(|t| (p.name().to_owned(), (*t).to_owned()))
                    })
                    .unzip();
                let mut behind: i64 = sqlx::query_scalar(
                    "SELECT (SELECT count(*) FROM outbox_pending) + \
                     (SELECT count(*) FROM (SELECT aggregate_type, aggregate_id, max(sequence) AS seq \
                       FROM events WHERE position > $3 GROUP BY 1, 2) e \
                      JOIN unnest($1::text[], $2::text[]) AS p(name, aggregate_type) \
                        ON p.aggregate_type = e.aggregate_type \
                      LEFT JOIN projection_offsets o ON o.projection = p.name \
                        AND o.aggregate_type = e.aggregate_type AND o.aggregate_id = e.aggregate_id \
                      WHERE coalesce(o.sequence, 0) < e.seq)",
                )
                .bind(names)
                .bind(types)
                .bind(after)
                .fetch_one(&pool)
                .await
                .expect("read the pipeline's progress");
                // Types applied by position: every event has its row in the projection's table
                // (a constant of the projection).
                for by_position in projections.iter().filter_map(|p| p.model().by_position) {
                    let unapplied: i64 = sqlx::query_scalar(&format!(
                        "SELECT count(*) FROM events e WHERE e.aggregate_type = ANY($1) \
                         AND e.position > $2 AND NOT EXISTS (SELECT 1 FROM {} a WHERE a.position = e.position)",
                        by_position.table
                    ))
                    .bind(by_position.aggregate_types)
                    .bind(after)
                    .fetch_one(&pool)
                    .await
                    .expect("read the pipeline's progress");
                    behind += unapplied;
                }
                behind == 0
            }
        })
        .await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for worker in self.workers.drain(..) {
            worker.abort();
        }
        let (nats, stream, tasks) = (
            self.settings.nats.url.clone(),
            self.settings.nats.stream.clone(),
            self.settings.sagas.stream.clone(),
        );
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(client) = async_nats::connect(nats).await {
                    let js = async_nats::jetstream::new(client);
                    let _ = js.delete_stream(stream).await;
                    let _ = js.delete_stream(tasks).await;
                }
            });
        })
        .join();
        // The local clusters' etcd data (a preallocated WAL of ~64 MiB each) goes with the app.
        let _ = std::fs::remove_dir_all(&self.settings.provisioning.local.state_dir);
    }
}

/// The `href` of the Allow (`id = "allow"`) or Deny (`"deny"`) link of the control plane's
/// OAuth approval page, if `page` is one.
pub fn approval_link(page: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\" href=\"");
    let rest = &page[page.find(&marker)? + marker.len()..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}
