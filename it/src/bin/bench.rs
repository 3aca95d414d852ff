//! Throughput and latency of the write path against a plain Postgres insert, and projection
//! lag, measured in one run on one machine. Run through `scripts/bench`.
//!
//! Prints one figure per line as `name value unit`.
//!
//! Throughput is compared where the machine is busy: by default at 32 clients, where pgbench's
//! single-row insert rate levels off here, and again at 64, where it stays level. With fewer,
//! both sides mostly wait for their commits to reach the disk, and the ratio compares latencies
//! rather than what each side can carry.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hexabase::server::HttpServer;
use hexabase_it::figures::{figure, percentile};
use hexabase_it::{TestApp, TestAppOptions};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The concurrencies compared when `BENCH_CLIENTS` names none.
const DEFAULT_CONCURRENCIES: [usize; 2] = [32, 64];

struct Args {
    /// `BENCH_CLIENTS`: the concurrencies compared, in order (a comma-separated list); the
    /// workspace tokens are measured at the first.
    concurrencies: Vec<usize>,
    seconds: u64,
    rate: u64,
    rounds: usize,
}

fn args() -> Args {
    let get = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut concurrencies: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect();
    if concurrencies.is_empty() {
        concurrencies = DEFAULT_CONCURRENCIES.to_vec();
    }
    Args {
        concurrencies,
        seconds: get("BENCH_SECONDS", 10),
        rate: get("BENCH_RATE", 50),
        rounds: get("BENCH_ROUNDS", 5).max(1) as usize,
    }
}

/// pgbench, N clients, one single-row INSERT per transaction, on the benchmark's own database.
/// Its clients run on one thread per core, as pgbench's documentation advises: a thread per
/// client would spend the cores switching between threads and understate what Postgres does.
fn pgbench(app: &TestApp, args: &Args, clients: usize) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = clients.min(cores).max(1);
    let script = std::env::temp_dir().join(format!("hxb-bench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "INSERT INTO bench_insert (payload) VALUES ('{\"name\":\"Acme\"}');\n",
    )
    .expect("write pgbench script");
    let url = reqwest::Url::parse(&app.db.url).expect("database url");
    let output = Command::new("pgbench")
        .args(["-n", "-h", url.host_str().unwrap_or("127.0.0.1")])
        .args(["-p", &url.port().unwrap_or(5432).to_string()])
        .args(["-U", url.username()])
        .args(["-c", &clients.to_string(), "-j", &threads.to_string()])
        .args(["-T", &args.seconds.to_string(), "-f"])
        .arg(&script)
        .arg(&app.db.name)
        .env("PGPASSWORD", url.password().unwrap_or(""))
        .output()
        .expect("run pgbench (from postgresql-contrib)");
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pgbench failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .expect("pgbench tps line")
}

/// The position of the newest event (0 in an empty store).
async fn last_position(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("newest position")
}

/// One turn of pgbench and the endpoint.
struct Round {
    tps: f64,
    ours: f64,
    latencies: Vec<f64>,
    drained: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// N clients creating organizations back to back for the duration.
/// `base`: the API server under load.
async fn create_throughput(
    app: &TestApp,
    base: &str,
    args: &Args,
    clients: usize,
) -> (f64, Vec<f64>) {
    let tokens = (0..clients).map(|_| app.user().1).collect();
    let url = format!("{base}/api/v1/organizations");
    drive(args, &url, tokens, json!({ "name": "Acme" })).await
}

/// One client per token POSTing `body` to `url` back to back for the duration: successful
/// answers per second, and their latencies (ms, sorted).
async fn drive(
    args: &Args,
    url: &str,
    tokens: Vec<String>,
    body: serde_json::Value,
) -> (f64, Vec<f64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for token in tokens {
        let (url, body, stop) = (url.to_owned(), body.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = LeanClient::connect(&url, &token, &body)
                .await
                .expect("connect the load client");
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match client.post().await {
                    Ok(status) if (200..300).contains(&status) => {
                        latencies.push(t.elapsed().as_secs_f64() * 1e3)
                    }
                    Ok(_) => {}
                    Err(e) => panic!("load client: {e}"),
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

/// The load generator: one keep-alive HTTP/1.1 connection per client, sending the same request
/// (built once) again and again and reading each answer's status and length. It runs on the
/// machine it measures, as pgbench's client does beside Postgres, so it is kept as lean as that
/// client: a general HTTP client's pooling, header maps and body encoding each time would be
/// counted against the endpoint.
struct LeanClient {
    stream: BufReader<TcpStream>,
    request: Vec<u8>,
    line: Vec<u8>,
}

impl LeanClient {
    async fn connect(url: &str, token: &str, body: &serde_json::Value) -> std::io::Result<Self> {
        let url = reqwest::Url::parse(url).map_err(std::io::Error::other)?;
        let host = url.host_str().unwrap_or("127.0.0.1");
        let port = url.port_or_known_default().unwrap_or(80);
        let body = serde_json::to_vec(body).map_err(std::io::Error::other)?;
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            url.path(),
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
            request,
            line: Vec::with_capacity(256),
        })
    }

    /// Send the request and read the whole answer; returns its status.
    async fn post(&mut self) -> std::io::Result<u16> {
        self.stream.get_mut().write_all(&self.request).await?;
        let status = {
            let line = self.read_line().await?;
            std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|code| code.parse().ok())
                .ok_or_else(|| std::io::Error::other("malformed status line"))?
        };
        let (mut length, mut chunked) = (0u64, false);
        loop {
            let line = self.read_line().await?;
            if line.is_empty() {
                break;
            }
            if let Some(value) = header_value(line, b"content-length:") {
                length = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| std::io::Error::other("malformed content-length"))?;
            } else if let Some(value) = header_value(line, b"transfer-encoding:") {
                chunked = value.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked"));
            }
        }
        if !chunked {
            self.skip(length).await?;
            return Ok(status);
        }
        loop {
            let size = {
                let line = self.read_line().await?;
                let digits = String::from_utf8_lossy(line);
                let digits = digits.split(';').next().unwrap_or("").trim().to_owned();
                u64::from_str_radix(&digits, 16).map_err(std::io::Error::other)?
            };
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(status);
            }
            self.skip(size + 2).await?;
        }
    }

    /// One line without its CRLF.
    async fn read_line(&mut self) -> std::io::Result<&[u8]> {
        self.line.clear();
        if self.stream.read_until(b'\n', &mut self.line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        while matches!(self.line.last(), Some(b'\n' | b'\r')) {
            self.line.pop();
        }
        Ok(&self.line)
    }

    async fn skip(&mut self, n: u64) -> std::io::Result<()> {
        let copied =
            tokio::io::copy(&mut (&mut self.stream).take(n), &mut tokio::io::sink()).await?;
        if copied < n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// The value of a header line named `name` (lowercase, with its colon), without allocating.
fn header_value<'l>(line: &'l [u8], name: &[u8]) -> Option<&'l [u8]> {
    let (head, value) = line.split_at_checked(name.len())?;
    head.eq_ignore_ascii_case(name).then_some(value)
}

/// Commands at a fixed rate; lag = applied in the read model − recorded in the event store.
async fn projection_lag(app: &TestApp, args: &Args) -> Vec<f64> {
    let (_, token) = app.user();
    let first = last_position(app).await;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    let mut sent = Vec::new();
    for _ in 0..args.rate * args.seconds {
        ticker.tick().await;
        let (client, url, token) = (
            app.client.clone(),
            format!("{}/api/v1/organizations", app.base),
            token.clone(),
        );
        sent.push(tokio::spawn(async move {
            client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({ "name": "Lag" }))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for task in sent {
        let _ = task.await;
    }
    app.caught_up_after(first, Duration::from_secs(60)).await;
    let mut lags: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM (o.applied_at - e.recorded_at))::float8 * 1000 \
         FROM events e JOIN projection_offsets o ON o.projection = 'organizations' \
          AND o.aggregate_type = e.aggregate_type AND o.aggregate_id = e.aggregate_id \
         WHERE e.position > $1",
    )
    .bind(first)
    .fetch_all(&app.pool)
    .await
    .expect("lags");
    lags.sort_by(f64::total_cmp);
    lags
}

/// Workspace tokens through `POST /api/v1/workspaces/{wsId}/token` (what `hexabase
/// kubectl-credential` calls) vs. signing the same claims with the same key directly, at the
/// same concurrency for the same time.
async fn token_throughput(
    app: &TestApp,
    base: &str,
    args: &Args,
    clients: usize,
) -> (f64, f64, Vec<f64>) {
    let (user, token) = app.user();
    let before_setup = last_position(app).await;
    let (org, _) = app.create_org(&token, "Tokens").await;
    let ws = app.create_workspace(&token, &org, "Tokens").await;
    app.caught_up_after(before_setup, Duration::from_secs(60))
        .await;
    let seconds = Duration::from_secs(args.seconds);

    let url = format!("{base}/api/v1/workspaces/{ws}/token");
    let tokens = vec![token; clients];
    let before = last_position(app).await;
    let (endpoint, all) = drive(args, &url, tokens, json!({})).await;
    // The tokens' events still being relayed and projected would take cores from the signing
    // loop below.
    app.caught_up_after(before, Duration::from_secs(600)).await;

    let ws_id = hexabase_command::WorkspaceId::parse(&ws).expect("workspace id");
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (state, user, ws_id, stop) =
            (app.state.clone(), user.clone(), ws_id.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut signed = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let claims = state.issuer.claims(
                    &user,
                    &ws_id,
                    vec!["WSAdmins".into(), "WorkspaceMembers".into()],
                );
                if state.issuer.sign(&claims).is_ok() {
                    signed += 1;
                }
                tokio::task::yield_now().await;
            }
            signed
        }));
    }
    tokio::time::sleep(seconds).await;
    stop.store(true, Ordering::Relaxed);
    let mut signed = 0;
    for task in tasks {
        signed += task.await.expect("signing task");
    }
    let raw = signed as f64 / started.elapsed().as_secs_f64();
    (endpoint, raw, all)
}

/// pgbench and the endpoint at `clients` clients, in rounds, then the endpoint again with the
/// worker stopped: one block of figures, headed by `clients`.
async fn write_path(app: &mut TestApp, base: &str, args: &Args, clients: usize) {
    // pgbench and the endpoint take turns, each round on the machine as the one before left
    // it (the worker caught up), and which of the two goes first alternates from round to
    // round: the figures are the rounds' medians, since one run of either swings by a
    // tenth or more on a shared machine.
    let mut rounds = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let pgbench_first = round % 2 == 0;
        let mut tps = if pgbench_first {
            pgbench(app, args, clients)
        } else {
            0.0
        };
        let before = last_position(app).await;
        let (ours, latencies) = create_throughput(app, base, args, clients).await;
        let backlog = Instant::now();
        app.caught_up_after(before, Duration::from_secs(600)).await;
        let drained = backlog.elapsed().as_secs_f64();
        if !pgbench_first {
            tps = pgbench(app, args, clients);
        }
        rounds.push(Round {
            tps,
            ours,
            latencies,
            drained,
        });
    }
    let ratios: Vec<f64> = rounds.iter().map(|r| r.ours / r.tps).collect();
    let ratio = median(ratios.clone());
    let median_of = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let (tps, ours, drained) = (
        median_of(|r| r.tps),
        median_of(|r| r.ours),
        median_of(|r| r.drained),
    );
    // The latencies are those of the round whose ratio is the median.
    let latencies = rounds
        .iter()
        .min_by(|a, b| {
            let off = |r: &Round| (r.ours / r.tps - ratio).abs();
            off(a).total_cmp(&off(b))
        })
        .map(|r| r.latencies.clone())
        .unwrap_or_default();
    // The same load with the worker stopped: what the write path alone costs, i.e. how
    // much of the machine the relay, NATS and the projections take in the figure above.
    app.kill_workers().await;
    let before = last_position(app).await;
    let (alone, _) = create_throughput(app, base, args, clients).await;
    app.start_worker_apart();
    app.caught_up_after(before, Duration::from_secs(600)).await;

    figure("clients", clients as f64, "connections");
    figure("pgbench_insert_tps", tps, "tx/s");
    figure("create_organization_throughput", ours, "req/s");
    figure(
        "create_organization_p50",
        percentile(&latencies, 0.50),
        "ms",
    );
    figure(
        "create_organization_p99",
        percentile(&latencies, 0.99),
        "ms",
    );
    figure("rounds", args.rounds as f64, "rounds");
    figure("throughput_ratio", ratio, "ratio");
    figure(
        "throughput_ratio_lowest",
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        "ratio",
    );
    figure(
        "throughput_ratio_highest",
        ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "ratio",
    );
    figure(
        "create_organization_throughput_worker_stopped",
        alone,
        "req/s",
    );
    figure("throughput_ratio_worker_stopped", alone / tps, "ratio");
    figure("backlog_drain_after_load", drained, "s");
}

#[tokio::main]
async fn main() {
    let args = args();
    let server = HttpServer::bind("127.0.0.1:0").await.expect("bind");
    // `BENCH_SERVER_THREADS`: the API server's `runtime.threads` (0: one per core).
    let server_threads = std::env::var("BENCH_SERVER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let options = TestAppOptions {
        max_connections: 2 * args.concurrencies.iter().copied().max().unwrap_or(32) as u32 + 8,
        // The worker runs apart (below), as a `worker` process would.
        worker: false,
    };
    // The load generator is one client on one address: measure the write path, not the limiter.
    let mut app = TestApp::spawn_on(server, options, |settings| {
        settings.rate_limit.api_per_window = 0;
        settings.runtime.threads = server_threads;
    })
    .await;
    // The system as it is deployed: a `serve` and a `worker` process, each on one thread
    // (`runtime.threads = 1`, for a machine of two cores that also runs Postgres and NATS),
    // beside the load generator's own runtime, as pgbench runs beside Postgres.
    app.start_worker_apart();
    let base = app.serve_apart();
    sqlx::query("CREATE TABLE bench_insert (id bigserial PRIMARY KEY, payload json NOT NULL)")
        .execute(&app.pool)
        .await
        .expect("create pgbench table");
    // Warm up connections and caches.
    let (_, token) = app.user();
    for _ in 0..20 {
        app.create_org(&token, "Warm-up").await;
    }
    app.caught_up().await;

    // `BENCH_PART=tokens` (scripts/bench tokens) measures the workspace tokens alone,
    // `BENCH_PART=writes` (scripts/bench writes) the write path and projection lag alone.
    let part = std::env::var("BENCH_PART").unwrap_or_default();
    if part != "tokens" {
        for &clients in &args.concurrencies {
            write_path(&mut app, &base, &args, clients).await;
        }
        let lags = projection_lag(&app, &args).await;
        figure("projection_rate", args.rate as f64, "cmd/s");
        figure("projection_lag_p50", percentile(&lags, 0.50), "ms");
        figure("projection_lag_p99", percentile(&lags, 0.99), "ms");
    }
    if part != "writes" {
        let (minted, raw_signed, token_latencies) =
            token_throughput(&app, &base, &args, args.concurrencies[0]).await;
        figure("workspace_tokens_endpoint", minted, "tokens/s");
        figure(
            "workspace_token_p99",
            percentile(&token_latencies, 0.99),
            "ms",
        );
        figure("workspace_tokens_raw_signing", raw_signed, "tokens/s");
        figure("workspace_token_ratio", minted / raw_signed, "ratio");
    }
    // Each run's database holds a few hundred thousand events: not left behind.
    app.kill_workers().await;
    app.db.remove().await;
}
