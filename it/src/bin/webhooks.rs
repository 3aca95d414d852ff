//! Stripe webhook intake against the bare signature check, and webhook → domain event latency,
//! measured in one run on one machine. Run through `scripts/bench webhooks`.
//!
//! Prints one figure per line as `name value unit`.
//!
//! * Intake: `BENCH_CLIENTS` clients (32) post signed `invoice.paid` events, each a new event
//!   id, for `BENCH_SECONDS` (10); an event counts once the API has answered that it recorded
//!   it. The events name customers no organization has, so the worker's part after intake
//!   ends at the lookup and does not grow an organization's history by thousands of payments:
//!   intake itself does the same work whatever the customer.
//! * The bare rate: the same number of tasks calling `Verifier::verify` on such an event for
//!   the same time, in the same process.
//! * Latency: `BENCH_EVENTS` (200) `invoice.paid` events at `BENCH_RATE` (20/s) for real
//!   organizations; from the moment each is sent to the time of the `PaymentSucceeded` it
//!   becomes on its organization (the domain event's recorded time), worker running apart as a
//!   `worker` process would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hexabase::server::HttpServer;
use hexabase::stripe_signature::{sign, Verifier};
use hexabase_it::figures::{figure, percentile};
use hexabase_it::peers::stripe_mock::StripeMock;
use hexabase_it::{TestApp, TestAppOptions};
use secrecy::SecretString;
use serde_json::{json, Value};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &str = "whsec_benchmark";
const ORGANIZATIONS: usize = 10;

struct Args {
    clients: usize,
    seconds: u64,
    events: usize,
    rate: u64,
}

fn args() -> Args {
    let get = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&v| v > 0)
            .unwrap_or(default)
    };
    Args {
        clients: get("BENCH_CLIENTS", 32) as usize,
        seconds: get("BENCH_SECONDS", 10),
        events: get("BENCH_EVENTS", 200) as usize,
        rate: get("BENCH_RATE", 20),
    }
}

/// An `invoice.paid` event as Stripe sends it, trimmed to what the control plane reads.
fn invoice_paid(id: &str, customer: &str, created: i64) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "livemode": false,
        "pending_webhooks": 1,
        "type": "invoice.paid",
        "data": { "object": {
            "id": format!("in_{id}"),
            "object": "invoice",
            "customer": customer,
            "status": "paid",
            "amount_paid": 4900,
            "currency": "usd",
            "subscription": "sub_benchmark",
        } },
    })
}

/// Post `event`, signed now; whether the API recorded it (a first delivery answered 200).
async fn deliver(client: &reqwest::Client, url: &str, event: &Value) -> bool {
    let body = serde_json::to_vec(event).expect("event JSON");
    let signature = sign(&body, SECRET, chrono::Utc::now().timestamp());
    let Ok(answer) = client
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header("Stripe-Signature", signature)
        .body(body)
        .send()
        .await
    else {
        return false;
    };
    if !answer.status().is_success() {
        return false;
    }
    let receipt: Value = answer.json().await.unwrap_or_default();
    receipt["duplicate"] == false && receipt["ignored"] != true
}

/// Signed events/s the endpoint recorded, and each recorded delivery's latency (ms, sorted).
async fn intake(url: &str, args: &Args) -> (f64, Vec<f64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client_no in 0..args.clients {
        let (url, stop) = (url.to_owned(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .http1_only()
                .pool_max_idle_per_host(1)
                .build()
                .expect("HTTP client");
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = format!("evt_intake_{client_no}_{n}");
                let event = invoice_paid(
                    &id,
                    &format!("cus_unknown_{client_no}"),
                    chrono::Utc::now().timestamp(),
                );
                let t = Instant::now();
                if deliver(&client, &url, &event).await {
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    (all.len() as f64 / elapsed, all)
}

/// Signatures/s `Verifier::verify` checks on such an event, with as many tasks as clients.
async fn bare_verification(args: &Args) -> f64 {
    let verifier = Arc::new(Verifier::new([SECRET], 300));
    let body = serde_json::to_vec(&invoice_paid(
        "evt_bare_0000000000000000",
        "cus_unknown_0",
        chrono::Utc::now().timestamp(),
    ))
    .expect("event JSON");
    let body = Arc::new(body);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (verifier, body, stop) = (verifier.clone(), body.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut checked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let now = chrono::Utc::now().timestamp();
                let header = sign(&body, SECRET, now);
                if verifier.verify(&body, Some(&header), now).is_ok() {
                    checked += 1;
                }
                tokio::task::yield_now().await;
            }
            checked
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut checked = 0;
    for task in tasks {
        checked += task.await.expect("verifying task");
    }
    checked as f64 / started.elapsed().as_secs_f64()
}

/// Until every `billing.webhook` saga has ended and there is one for every recorded event.
async fn webhooks_applied(app: &TestApp, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (recorded, ended): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM events WHERE aggregate_type = 'StripeEvent'), \
                    (SELECT count(*) FROM sagas WHERE kind = 'billing.webhook' \
                     AND state IN ('done', 'failed'))",
        )
        .fetch_one(&app.pool)
        .await
        .expect("count sagas");
        if recorded == ended {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {recorded} webhook sagas still open",
            recorded - ended
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The organizations' Stripe customers, once the sagas have created them.
async fn customers(app: &TestApp, count: usize) -> Vec<String> {
    let (_, token) = app.user();
    let mut orgs = Vec::new();
    for n in 0..count {
        orgs.push(app.create_org(&token, &format!("Billed {n}")).await.0);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT customer_id FROM rm_billing WHERE customer_id IS NOT NULL \
             AND org_id = ANY($1)",
        )
        .bind(&orgs)
        .fetch_all(&app.pool)
        .await
        .expect("customers");
        if found.len() == count {
            return found;
        }
        assert!(Instant::now() < deadline, "the Stripe customers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Milliseconds from sending each event to its `PaymentSucceeded` (sorted), and how many never
/// became one.
async fn latency(app: &TestApp, url: &str, customers: &[String], args: &Args) -> (Vec<f64>, usize) {
    let client = reqwest::Client::new();
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let mut ticker = tokio::time::interval(interval);
    let mut sends = Vec::new();
    for n in 0..args.events {
        ticker.tick().await;
        let (client, url) = (client.clone(), url.to_owned());
        let id = format!("evt_latency_{n:06}");
        let event = invoice_paid(
            &id,
            &customers[n % customers.len()],
            chrono::Utc::now().timestamp(),
        );
        sends.push(tokio::spawn(async move {
            let sent = chrono::Utc::now();
            let recorded = deliver(&client, &url, &event).await;
            (id, sent, recorded)
        }));
    }
    let mut sent_at = std::collections::HashMap::new();
    for send in sends {
        let (id, sent, recorded) = send.await.expect("sender");
        assert!(recorded, "{id} was not recorded");
        sent_at.insert(id, sent);
    }
    webhooks_applied(app, Duration::from_secs(300)).await;
    let applied: Vec<(String, String)> = sqlx::query_as(
        "SELECT metadata->>'causation_id', metadata->>'time' FROM events \
         WHERE event_type = 'PaymentSucceeded' AND metadata->>'causation_id' LIKE 'evt_latency_%'",
    )
    .fetch_all(&app.pool)
    .await
    .expect("the payments");
    let mut latencies: Vec<f64> = applied
        .iter()
        .filter_map(|(id, time)| {
            let sent = sent_at.get(id)?;
            let at = chrono::DateTime::parse_from_rfc3339(time).ok()?;
            Some((at.with_timezone(&chrono::Utc) - *sent).num_microseconds()? as f64 / 1e3)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    (latencies.clone(), args.events - latencies.len())
}

#[tokio::main]
async fn main() {
    let args = args();
    let mock = StripeMock::start().await;
    let stripe = mock.url();
    let server = HttpServer::bind("127.0.0.1:0").await.expect("bind");
    let options = TestAppOptions {
        max_connections: 2 * args.clients as u32 + 8,
        worker: false,
    };
    let mut app = TestApp::spawn_on(server, options, move |settings| {
        settings.rate_limit.api_per_window = 0;
        settings.runtime.threads = 1;
        settings.billing.secret_key = Some(SecretString::from("sk_test_123"));
        settings.billing.api_url = stripe;
        settings.billing.webhook_secrets = vec![SecretString::from(SECRET)];
    })
    .await;
    // As deployed: a `serve` and a `worker` process, each on one thread.
    app.start_worker_apart();
    let base = app.serve_apart();
    let url = format!("{base}/webhooks/stripe");
    eprintln!("[webhooks] {ORGANIZATIONS} organizations and their Stripe customers");
    let customers = customers(&app, ORGANIZATIONS).await;

    eprintln!(
        "[webhooks] intake: {} clients for {} s",
        args.clients, args.seconds
    );
    let (recorded, intake_latencies) = intake(&url, &args).await;
    eprintln!("[webhooks] waiting for the worker to apply them");
    webhooks_applied(&app, Duration::from_secs(900)).await;
    app.caught_up().await;
    eprintln!("[webhooks] bare signature checks");
    let bare = bare_verification(&args).await;

    eprintln!(
        "[webhooks] latency: {} events at {}/s",
        args.events, args.rate
    );
    let (latencies, missing) = latency(&app, &url, &customers, &args).await;

    figure("webhook_clients", args.clients as f64, "clients");
    figure("webhook_intake", recorded, "events/s");
    figure(
        "webhook_intake_p50",
        percentile(&intake_latencies, 0.50),
        "ms",
    );
    figure(
        "webhook_intake_p99",
        percentile(&intake_latencies, 0.99),
        "ms",
    );
    figure("webhook_bare_verification", bare, "signatures/s");
    figure("webhook_intake_ratio", recorded / bare, "ratio");
    figure("webhook_to_domain_event_rate", args.rate as f64, "events/s");
    figure(
        "webhook_to_domain_event_p50",
        percentile(&latencies, 0.50),
        "ms",
    );
    figure(
        "webhook_to_domain_event_p99",
        percentile(&latencies, 0.99),
        "ms",
    );
    figure("webhook_not_applied", missing as f64, "events");
    app.kill_workers().await;
    app.db.remove().await;
}
