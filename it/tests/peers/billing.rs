//! Billing through Stripe, against stripe-mock (through async-stripe, behind a tap that notes
//! each call's idempotency key) and webhooks this test signs with its own secrets: customers,
//! Checkout and Portal sessions; webhooks verified, recorded once and applied in Stripe's
//! order; and end to end with the `local` driver, an unpaid organization's workspaces suspended
//! after the grace period and resumed, with their data, once paid.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hexabase::config::Settings;
use hexabase::stripe_signature::sign;
use hexabase_it::peers::process::free_port;
use hexabase_it::peers::StripeMock;
use hexabase_it::{TestApp, TestAppOptions};
use hexabase_sagas::billing::CreateCustomer;
use hexabase_sagas::engine::testing::Twice;
use hexabase_sagas::engine::{Aggregate, Outcome, Registry};
use poem::web::Data;
use poem::EndpointExt;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::common::https_app_with_options;

const SECRET: &str = "whsec_test_current";
const RETIRED: &str = "whsec_test_retired";

/// One call that reached Stripe.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    idempotency_key: Option<String>,
}

/// A pass-through in front of stripe-mock that notes every call.
struct Tap {
    url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    /// Stripe behind the tap, until `stop_stripe`.
    mock: Mutex<Option<StripeMock>>,
}

struct Upstream {
    url: String,
    calls: Arc<Mutex<Vec<Call>>>,
}

#[poem::handler]
async fn forward(
    request: &poem::Request,
    body: poem::Body,
    upstream: Data<&Arc<Upstream>>,
) -> poem::Response {
    upstream.calls.lock().unwrap().push(Call {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        idempotency_key: request
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    let mut headers = request.headers().clone();
    headers.remove("host");
    headers.remove("content-length");
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let sent = reqwest::Client::new()
        .request(request.method().clone(), format!("{}{path}", upstream.url))
        .headers(headers)
        .body(body.into_bytes().await.unwrap())
        .send()
        .await;
    let Ok(answer) = sent else {
        // Stripe is down: the caller sees what a dead gateway in front of it answers.
        return poem::Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body("upstream unreachable");
    };
    let status = answer.status();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    poem::Response::builder()
        .status(status)
        .content_type(content_type)
        .body(answer.bytes().await.unwrap())
}

impl Tap {
    async fn start() -> Self {
        let mock = StripeMock::start().await;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let upstream = Arc::new(Upstream {
            url: mock.url(),
            calls: calls.clone(),
        });
        let port = free_port();
        let app = poem::Route::new().at("/*path", forward).data(upstream);
        tokio::spawn(
            poem::Server::new(poem::listener::TcpListener::bind(format!(
                "127.0.0.1:{port}"
            )))
            .run(app),
        );
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            url,
            calls,
            mock: Mutex::new(Some(mock)),
        }
    }

    /// Stripe goes away; the tap stays.
    fn stop_stripe(&self) {
        drop(self.mock.lock().unwrap().take());
    }

    fn calls_to(&self, path: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == "POST" && c.path == path)
            .cloned()
            .collect()
    }
}

/// Billing on, against `stripe`, with a free plan, a short grace period and a frequent
/// maintenance pass.
fn billing(settings: &mut Settings, stripe: &str, secrets: &[&str]) {
    let id = uuid::Uuid::new_v4().simple();
    settings.billing.secret_key = Some(SecretString::from("sk_test_123"));
    settings.billing.api_url = stripe.to_owned();
    settings.billing.webhook_secrets = secrets.iter().map(|s| SecretString::from(*s)).collect();
    settings.billing.grace_period_secs = 3;
    settings.billing.notification_stream = format!("HXBT_NOTES_{id}");
    settings.sagas.maintenance_secs = 1;
    let mut free = settings.plans["starter"].clone();
    free.name = "Free".into();
    free.price_id = None;
    free.max_projects = 2;
    settings.plans.insert("free".into(), free);
}

async fn billing_app(tap: &Tap, secrets: &[&str], worker: bool) -> TestApp {
    let url = tap.url.clone();
    let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
    let options = TestAppOptions {
        worker,
        ..TestAppOptions::default()
    };
    let server = hexabase::server::HttpServer::bind("127.0.0.1:0")
        .await
        .unwrap();
    TestApp::spawn_on(server, options, move |settings| {
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        billing(settings, &url, &secrets);
    })
    .await
}

/// The organization's Stripe customer, once it has one.
async fn customer_of(app: &TestApp, org: &str, admin: &str) -> String {
    let link = format!("/api/v1/organizations/{org}/billing");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let view = app.get(&link, admin).await;
        if let Some(id) = view.body["customer_id"].as_str() {
            return id.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Stripe customer: {}",
            view.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn subscription_event(
    id: &str,
    kind: &str,
    customer: &str,
    (status, price): (&str, &str),
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "event", "type": kind, "created": created, "livemode": false,
        "data": { "object": {
            "id": "sub_test_1", "object": "subscription", "customer": customer,
            "status": status, "cancel_at_period_end": false,
            "current_period_end": created + 30 * 86_400,
            "items": { "object": "list", "data": [{ "id": "si_1", "price": { "id": price } }] },
            "metadata": {}
        }}
    })
}

fn invoice_event(id: &str, kind: &str, customer: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "event", "type": kind, "created": created, "livemode": false,
        "data": { "object": {
            "id": format!("in_{id}"), "object": "invoice", "customer": customer,
            "subscription": "sub_test_1", "status": if kind == "invoice.paid" { "paid" } else { "open" }
        }}
    })
}

/// POST `body` to `base`'s webhook endpoint with `signature` as `Stripe-Signature`.
async fn deliver_raw(
    app: &TestApp,
    base: &str,
    body: &[u8],
    signature: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(format!("{base}/webhooks/stripe"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    let reply = TestApp::read(request.send().await.unwrap()).await;
    (reply.status, reply.body)
}

/// `event`, signed now with `secret`, delivered to the app.
async fn deliver(app: &TestApp, event: &Value, secret: &str) -> (StatusCode, Value) {
    let body = serde_json::to_vec(event).unwrap();
    let signature = sign(&body, secret, chrono::Utc::now().timestamp());
    deliver_raw(app, &app.base, &body, Some(&signature)).await
}

async fn recorded_stripe_events(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'StripeEvent'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn org_events(app: &TestApp, org: &str, event_type: &str) -> Vec<Value> {
    sqlx::query_scalar::<_, sqlx::types::Json<Value>>(
        "SELECT metadata FROM events WHERE aggregate_id = $1 AND event_type = $2 ORDER BY position",
    )
    .bind(org)
    .bind(event_type)
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|m| m.0)
    .collect()
}

/// Until the saga of Stripe event `id` has ended.
async fn webhook_applied(app: &TestApp, id: &str) {
    let pool = app.pool.clone();
    app.eventually(&format!("the saga of {id} to end"), || {
        let pool = pool.clone();
        async move {
            let ended: Option<bool> = sqlx::query_scalar(
                "SELECT state IN ('done', 'failed') FROM sagas \
                 WHERE kind = 'billing.webhook' AND aggregate_id = $1",
            )
            .bind(id)
            .fetch_optional(&pool)
            .await
            .unwrap();
            ended == Some(true)
        }
    })
    .await;
}

/// Until every billing saga has ended.
async fn billing_sagas_done(app: &TestApp) {
    let pool = app.pool.clone();
    app.eventually("the billing sagas to end", || {
        let pool = pool.clone();
        async move {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sagas WHERE kind LIKE 'billing.%' \
                 AND state NOT IN ('done', 'failed')",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            open == 0
        }
    })
    .await;
}

#[tokio::test]
async fn an_organization_gets_a_customer_checkout_and_portal_each_call_with_its_idempotency_key() {
    let tap = Tap::start().await;
    let app = billing_app(&tap, &[SECRET], false).await;
    let (state, token) = (app.state.clone(), CancellationToken::new());
    let pipeline = token.clone();
    tokio::spawn(async move { hexabase::worker::run_pipeline(state, pipeline).await });
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;

    // The customer saga, each step run twice (a retry after a crash): both creations carry the
    // key its first step recorded, and one customer is recorded.
    let driver = hexabase::worker::driver(&app.settings).await;
    let registry = Registry::default().with(Twice(CreateCustomer));
    let runner = hexabase::worker::saga_runner(&app.state, driver, registry).unwrap();
    let aggregate = Aggregate {
        aggregate_type: "Organization".into(),
        aggregate_id: org.clone(),
    };
    for _ in 0..100 {
        match runner.process(&aggregate).await.unwrap() {
            Outcome::Idle => break,
            Outcome::Later(delay) => tokio::time::sleep(delay).await,
            Outcome::Busy => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let creations = tap.calls_to("/v1/customers");
    assert_eq!(creations.len(), 2, "{creations:?}");
    let key = creations[0]
        .idempotency_key
        .clone()
        .expect("an idempotency key");
    assert!(key.starts_with("customer-"), "{key}");
    assert_eq!(creations[1].idempotency_key.as_deref(), Some(key.as_str()));
    assert_eq!(
        org_events(&app, &org, "BillingCustomerCreated").await.len(),
        1
    );
    let customer = customer_of(&app, &org, &admin).await;
    assert!(customer.starts_with("cus_"), "{customer}");

    // Checkout in subscription mode for the plan's price; the same request repeated with its
    // Idempotency-Key is answered from the first, without calling Stripe again.
    let checkout = format!("/api/v1/organizations/{org}/billing/checkout");
    let request = || {
        app.client
            .post(format!("{}{checkout}", app.base))
            .bearer_auth(&admin)
            .header("Idempotency-Key", "checkout-1")
            .json(&json!({ "plan": "team" }))
    };
    let first = TestApp::read(request().send().await.unwrap()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert!(
        first.body["url"].as_str().unwrap().starts_with("http"),
        "{}",
        first.text
    );
    assert!(
        first.body["id"].as_str().unwrap().starts_with("cs_"),
        "{}",
        first.text
    );
    let again = TestApp::read(request().send().await.unwrap()).await;
    assert_eq!(again.text, first.text);
    let sessions = tap.calls_to("/v1/checkout/sessions");
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions[0]
        .idempotency_key
        .as_deref()
        .is_some_and(|k| k.starts_with(&format!("checkout-{org}-"))));

    let portal = app
        .post(
            &format!("/api/v1/organizations/{org}/billing/portal"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(portal.status, StatusCode::OK, "{}", portal.text);
    assert!(portal.body["url"].as_str().unwrap().starts_with("http"));
    assert!(tap.calls_to("/v1/billing_portal/sessions")[0]
        .idempotency_key
        .is_some());

    // What checkout refuses, calling nobody.
    let before = tap.calls.lock().unwrap().len();
    let free = app
        .post(&checkout, &admin, &json!({ "plan": "free" }))
        .await;
    assert_eq!(
        free.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        free.text
    );
    assert_eq!(free.body["field"], "plan");
    let unknown = app
        .post(&checkout, &admin, &json!({ "plan": "platinum" }))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
    let (_, member) = app.member_of(&org, &admin, "member").await;
    let forbidden = app
        .post(&checkout, &member, &json!({ "plan": "team" }))
        .await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.text
    );
    let billing = app
        .get(&format!("/api/v1/organizations/{org}/billing"), &member)
        .await;
    assert_eq!(billing.status, StatusCode::FORBIDDEN, "{}", billing.text);
    assert_eq!(tap.calls.lock().unwrap().len(), before);
    token.cancel();
}

#[tokio::test]
async fn a_paid_plan_needs_a_subscription_and_a_downgrade_the_usage_does_not_fit_is_refused() {
    let tap = Tap::start().await;
    let app = billing_app(&tap, &[SECRET], true).await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let workspaces = format!("/api/v1/organizations/{org}/workspaces");

    let refused = app
        .post(
            &workspaces,
            &admin,
            &json!({ "name": "Prod", "plan": "team" }),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.text
    );
    assert_eq!(refused.body["code"], "payment_required");
    let link = refused.headers["link"].to_str().unwrap();
    assert!(
        link.contains(&format!("/api/v1/organizations/{org}/billing/checkout")),
        "{link}"
    );
    assert!(
        org_events(&app, &org, "WorkspaceAttached").await.is_empty(),
        "nothing recorded"
    );

    // A free plan needs none; its workspace gets three projects, more than `free`'s two
    // (`starter` allows five).
    let free = app
        .post(
            &workspaces,
            &admin,
            &json!({ "name": "Lab", "plan": "free" }),
        )
        .await;
    assert_eq!(free.status, StatusCode::ACCEPTED, "{}", free.text);
    let ws = free.body["id"].as_str().unwrap().to_owned();
    let customer = customer_of(&app, &org, &admin).await;
    let starter = deliver(
        &app,
        &subscription_event(
            "evt_sub_starter",
            "customer.subscription.created",
            &customer,
            ("active", "price_starter_monthly"),
            chrono::Utc::now().timestamp(),
        ),
        SECRET,
    )
    .await;
    assert_eq!(starter.0, StatusCode::OK, "{:?}", starter.1);
    billing_sagas_done(&app).await;
    // The subscription moved the workspace to its plan, whose limits allow more projects.
    app.eventually("the workspace to be on starter", || async {
        app.get(&format!("{workspaces}/{ws}"), &admin).await.body["plan"] == "starter"
    })
    .await;
    for name in ["one", "two", "three"] {
        let created = app
            .post(
                &format!("/api/v1/workspaces/{ws}/projects"),
                &admin,
                &json!({ "name": name }),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    }
    let tiny = app
        .post(
            &format!("/api/v1/organizations/{org}/billing/checkout"),
            &admin,
            &json!({ "plan": "starter" }),
        )
        .await;
    assert_eq!(
        tiny.status,
        StatusCode::CONFLICT,
        "already paid for: {}",
        tiny.text
    );
    // A plan of two projects does not fit.
    let mut settings = app.settings.clone();
    let mut small = settings.plans["starter"].clone();
    small.price_id = Some("price_small".into());
    small.max_projects = 2;
    settings.plans.insert("small".into(), small);
    let replica = hexabase::app::App::connect(settings).await.unwrap();
    let server = hexabase::server::HttpServer::bind("127.0.0.1:0")
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    tokio::spawn(server.run(replica, CancellationToken::new()));
    let excess = TestApp::read(
        app.client
            .post(format!(
                "{base}/api/v1/organizations/{org}/billing/checkout"
            ))
            .bearer_auth(&admin)
            .json(&json!({ "plan": "small" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(excess.status, StatusCode::CONFLICT, "{}", excess.text);
    let message = excess.body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "workspace {ws} has 3 projects; plan `small` allows 2"
        )),
        "{message}"
    );
    let fits = app
        .post(
            &format!("/api/v1/organizations/{org}/billing/checkout"),
            &admin,
            &json!({ "plan": "team" }),
        )
        .await;
    // `team` fits, but the running subscription changes plan in the portal, never by a second
    // subscription.
    assert_eq!(fits.status, StatusCode::CONFLICT, "{}", fits.text);
    let message = fits.body["message"].as_str().unwrap();
    assert!(
        message.contains("on plan `starter`") && message.contains("/billing/portal"),
        "{message}"
    );
    assert_eq!(
        tap.calls_to("/v1/checkout/sessions").len(),
        0,
        "no checkout session was created"
    );
}

#[tokio::test]
async fn webhooks_are_verified_recorded_once_and_applied_in_stripe_order() {
    let tap = Tap::start().await;
    let app = billing_app(&tap, &[SECRET, RETIRED], true).await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let customer = customer_of(&app, &org, &admin).await;
    let now = chrono::Utc::now().timestamp();
    let created = subscription_event(
        "evt_created",
        "customer.subscription.created",
        &customer,
        ("active", "price_team_monthly"),
        now - 60,
    );
    let body = serde_json::to_vec(&created).unwrap();

    // What is not Stripe's, or not this event as Stripe signed it: 400, nothing recorded.
    let (_, user_token) = app.user();
    let bearer = TestApp::read(
        app.client
            .post(format!("{}/webhooks/stripe", app.base))
            .bearer_auth(&user_token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        bearer.status,
        StatusCode::BAD_REQUEST,
        "a user token is no signature: {}",
        bearer.text
    );
    let changed = {
        let mut tampered = created.clone();
        tampered["data"]["object"]["items"]["data"][0]["price"]["id"] =
            json!("price_enterprise_monthly");
        serde_json::to_vec(&tampered).unwrap()
    };
    for (what, payload, signature) in [
        ("missing header", body.clone(), None),
        (
            "another secret",
            body.clone(),
            Some(sign(&body, "whsec_someone_else", now)),
        ),
        (
            "too old",
            body.clone(),
            Some(sign(&body, SECRET, now - 301)),
        ),
        (
            "body changed after signing",
            changed,
            Some(sign(&body, SECRET, now)),
        ),
        ("garbage", body.clone(), Some("t=abc,v1=zz".to_owned())),
    ] {
        let (status, answer) = deliver_raw(&app, &app.base, &payload, signature.as_deref()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(answer["field"], "Stripe-Signature", "{what}: {answer}");
    }
    assert_eq!(recorded_stripe_events(&app).await, 0);

    // Genuine: recorded once, however often delivered.
    let (status, first) = deliver(&app, &created, SECRET).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["duplicate"], false);
    let (status, again) = deliver(&app, &created, SECRET).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["duplicate"], true);
    // During a rotation the retiring secret still signs.
    let (status, rotated) = deliver(&app, &created, RETIRED).await;
    assert_eq!(
        (status, &rotated["duplicate"]),
        (StatusCode::OK, &json!(true)),
        "{rotated}"
    );
    assert_eq!(recorded_stripe_events(&app).await, 1);

    // One event delivered to two API replicas at once: recorded once.
    let replica = app.replica().await;
    let paid = invoice_event("evt_paid_1", "invoice.paid", &customer, now - 50);
    let body = serde_json::to_vec(&paid).unwrap();
    let signature = sign(&body, SECRET, now);
    let (a, b) = tokio::join!(
        deliver_raw(&app, &app.base, &body, Some(&signature)),
        deliver_raw(&app, &replica, &body, Some(&signature)),
    );
    assert_eq!(
        (a.0, b.0),
        (StatusCode::OK, StatusCode::OK),
        "{:?} {:?}",
        a.1,
        b.1
    );
    assert_eq!(recorded_stripe_events(&app).await, 2);

    // Out of order: the newer update (enterprise) arrives first, the older (starter) after.
    let newer = subscription_event(
        "evt_newer",
        "customer.subscription.updated",
        &customer,
        ("active", "price_enterprise_monthly"),
        now - 10,
    );
    let older = subscription_event(
        "evt_older",
        "customer.subscription.updated",
        &customer,
        ("active", "price_starter_monthly"),
        now - 20,
    );
    assert_eq!(deliver(&app, &newer, SECRET).await.0, StatusCode::OK);
    webhook_applied(&app, "evt_newer").await;
    assert_eq!(deliver(&app, &older, SECRET).await.0, StatusCode::OK);
    // A customer nobody has: acknowledged, logged, and over.
    let stranger = invoice_event("evt_stranger", "invoice.paid", "cus_nobody", now);
    assert_eq!(deliver(&app, &stranger, SECRET).await.0, StatusCode::OK);
    // A type the control plane does not act on: acknowledged, not recorded.
    let (status, other) = deliver(&app, &json!({ "id": "evt_other", "type": "charge.refunded", "created": now, "data": { "object": {} } }), SECRET).await;
    assert_eq!((status, &other["ignored"]), (StatusCode::OK, &json!(true)));
    for id in ["evt_created", "evt_paid_1", "evt_older", "evt_stranger"] {
        webhook_applied(&app, id).await;
    }
    billing_sagas_done(&app).await;
    app.caught_up().await;
    let view = app
        .get(&format!("/api/v1/organizations/{org}/billing"), &admin)
        .await;
    assert_eq!(view.body["plan"], "enterprise", "{}", view.text);
    assert_eq!(view.body["subscription_status"], "active");
    assert_eq!(view.body["last_payment"], "succeeded");
    let unfinished: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT aggregate_id, state, last_error FROM sagas \
         WHERE kind = 'billing.webhook' AND state <> 'done'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        unfinished.is_empty(),
        "every webhook saga ends done, the stranger's too: {unfinished:?}"
    );

    // Each domain event names its Stripe event as cause.
    let activated = org_events(&app, &org, "SubscriptionActivated").await;
    assert_eq!(activated.len(), 1);
    assert_eq!(activated[0]["causation_id"], "evt_created");
    let changed = org_events(&app, &org, "SubscriptionChanged").await;
    assert_eq!(
        changed.len(),
        1,
        "the older update changed nothing: {changed:?}"
    );
    assert_eq!(changed[0]["causation_id"], "evt_newer");
    assert_eq!(
        org_events(&app, &org, "PaymentSucceeded").await[0]["causation_id"],
        "evt_paid_1"
    );

    // Once the rotation is over, the retired secret signs nothing.
    let rotated = billing_app(&tap, &[SECRET], true).await;
    let event = invoice_event("evt_after_rotation", "invoice.paid", &customer, now);
    let (status, answer) = deliver(&rotated, &event, RETIRED).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(recorded_stripe_events(&rotated).await, 0);
}

/// The next message on `subject` in the notification stream, within a while.
async fn notification(app: &TestApp, stream: &str, subject: &str) -> Value {
    use async_nats::jetstream::consumer;
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let stream = loop {
        if let Ok(stream) = app.state.js.get_stream(stream).await {
            break stream;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification stream"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: subject.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
        .await
        .expect("a notification")
        .unwrap()
        .unwrap();
    serde_json::from_slice(&message.payload).unwrap()
}

#[tokio::test]
async fn an_unpaid_organization_is_suspended_after_its_grace_period_and_resumed_with_its_data_once_paid(
) {
    use super::provisioning::{home, kubectl, port_answers, wait_for_status};

    let tap = Tap::start().await;
    let url = tap.url.clone();
    let (app, ca_pem) = https_app_with_options(TestAppOptions::default(), move |settings| {
        billing(settings, &url, &[SECRET]);
    })
    .await;
    let (alice, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let customer = customer_of(&app, &org, &admin).await;
    let start = chrono::Utc::now().timestamp() - 600;
    let subscribed = subscription_event(
        "evt_e2e_sub",
        "customer.subscription.created",
        &customer,
        ("active", "price_team_monthly"),
        start,
    );
    assert_eq!(deliver(&app, &subscribed, SECRET).await.0, StatusCode::OK);
    let billing_link = format!("/api/v1/organizations/{org}/billing");
    app.eventually("the subscription to pay for team", || async {
        app.get(&billing_link, &admin).await.body["subscription_status"] == "active"
    })
    .await;

    let created = app
        .post(
            &format!("/api/v1/organizations/{org}/workspaces"),
            &admin,
            &json!({ "name": "Prod", "plan": "team" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.text);
    let ws = created.body["id"].as_str().unwrap().to_owned();
    let link = format!("/api/v1/organizations/{org}/workspaces/{ws}");
    let (view, _) = wait_for_status(&app, &link, &admin, "Ready").await;
    assert_eq!(view["status"], "Ready", "{view}");
    let kubeconfig = app.get(&format!("{link}/kubeconfig"), &admin).await;
    let home = home(&kubeconfig.text, &ca_pem);
    let (ok, out) = kubectl(
        &home,
        &admin,
        &["create", "configmap", "kept", "--from-literal=a=b"],
    )
    .await;
    assert!(ok, "{out}");
    let server = serde_json::from_str::<Value>(&kubeconfig.text).unwrap()["clusters"][0]["cluster"]
        ["server"]
        .as_str()
        .unwrap()
        .to_owned();

    // The payment fails: a grace period, and the admin is told.
    let failed = invoice_event(
        "evt_e2e_failed",
        "invoice.payment_failed",
        &customer,
        start + 60,
    );
    assert_eq!(deliver(&app, &failed, SECRET).await.0, StatusCode::OK);
    let note = notification(
        &app,
        &app.settings.billing.notification_stream,
        &format!(
            "{}.user.notification.{alice}",
            app.settings.sagas.subject_prefix
        ),
    )
    .await;
    assert_eq!(note["kind"], "payment_failed", "{note}");
    assert_eq!(note["organization"], org.as_str());
    let view = app.get(&billing_link, &admin).await;
    assert_eq!(view.body["last_payment"], "failed", "{}", view.text);
    assert!(view.body["grace_until"].is_string(), "{}", view.text);

    // The grace period ends unpaid: the workspace is suspended, its API server down, and an
    // admin cannot resume it.
    let (view, _) = wait_for_status(&app, &link, &admin, "Suspended").await;
    assert_eq!(view["status"], "Suspended", "{view}");
    assert!(
        !port_answers(&server),
        "the suspended API server still listens at {server}"
    );
    let (ok, _) = kubectl(&home, &admin, &["get", "configmap", "kept"]).await;
    assert!(!ok, "kubectl reaches a suspended workspace");
    let resume = app
        .post(&format!("{link}/resume"), &admin, &json!({}))
        .await;
    assert_eq!(
        resume.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        resume.text
    );
    let another = app
        .post(
            &format!("/api/v1/organizations/{org}/workspaces"),
            &admin,
            &json!({ "name": "More", "plan": "team" }),
        )
        .await;
    assert_eq!(
        another.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        another.text
    );
    let view = app.get(&billing_link, &admin).await;
    assert_eq!(view.body["suspended"], true, "{}", view.text);

    // Paid: Ready again, the same data.
    let paid = invoice_event("evt_e2e_paid", "invoice.paid", &customer, start + 120);
    assert_eq!(deliver(&app, &paid, SECRET).await.0, StatusCode::OK);
    let (view, _) = wait_for_status(&app, &link, &admin, "Ready").await;
    assert_eq!(view["status"], "Ready", "{view}");
    let (ok, out) = kubectl(&home, &admin, &["get", "configmap", "kept", "-o", "name"]).await;
    assert!(ok && out.contains("configmap/kept"), "{out}");
    app.caught_up().await;
    let view = app.get(&billing_link, &admin).await;
    assert_eq!(view.body["suspended"], false, "{}", view.text);
    assert!(view.body["grace_until"].is_null(), "{}", view.text);

    // A plan change through Stripe moves the workspace to it.
    let upgraded = subscription_event(
        "evt_e2e_upgrade",
        "customer.subscription.updated",
        &customer,
        ("active", "price_enterprise_monthly"),
        start + 180,
    );
    assert_eq!(deliver(&app, &upgraded, SECRET).await.0, StatusCode::OK);
    app.eventually("the workspace to move to enterprise", || async {
        app.get(&link, &admin).await.body["plan"] == "enterprise"
    })
    .await;
}

#[tokio::test]
async fn stripe_unreachable_answers_502_and_changes_nothing() {
    let tap = Tap::start().await;
    let app = billing_app(&tap, &[SECRET], true).await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    customer_of(&app, &org, &admin).await;
    let before = app
        .get(&format!("/api/v1/organizations/{org}/billing"), &admin)
        .await;
    let events_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
            .bind(&org)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    tap.stop_stripe();

    for path in ["checkout", "portal"] {
        let reply = app
            .post(
                &format!("/api/v1/organizations/{org}/billing/{path}"),
                &admin,
                &json!({ "plan": "team" }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_GATEWAY,
            "{path}: {}",
            reply.text
        );
        assert_eq!(
            reply.body["code"], "upstream_unavailable",
            "{path}: {}",
            reply.text
        );
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap_or("")
                .contains("Stripe"),
            "{path}: the answer says it was Stripe: {}",
            reply.text
        );
    }
    let events_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
            .bind(&org)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(events_after, events_before, "nothing recorded");
    let after = app
        .get(&format!("/api/v1/organizations/{org}/billing"), &admin)
        .await;
    assert_eq!(after.body, before.body);
}
