use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hexabase::app::{self, App};
use hexabase::config::Settings;
use hexabase::server::HttpServer;
use hexabase::{api, telemetry, worker};
use hexabase_identity::keyring::Kek;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "hexabase", version, about = "Hexabase KaaS control plane")]
struct Cli {
    /// TOML configuration file (layered over the defaults; HEXABASE_… variables override it).
    #[arg(long, global = true, env = "HEXABASE_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    client: hexabase_client::cli::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve,
    /// Run the outbox relay and the projections.
    Worker,
    /// Apply the database migrations.
    Migrate,
    /// Drop one read model and rebuild it from the event store.
    Replay {
        /// Projection name (`organizations`, `audit`).
        projection: String,
    },
    /// Check the hash chain of every aggregate in the event store.
    Verify,
    /// Everything in one process on local defaults: migrate, serve and worker.
    Dev {
        /// Start from empty: drop the database, the event and task streams and the local
        /// clusters first.
        #[arg(long)]
        reset: bool,
    },
    /// Write a new key-encryption key (base64 of 32 random bytes, mode 0600) to `--out` or
    /// `auth.key_encryption_key_file`; never overwrites.
    Keygen {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Sign a workspace's kubectl in: opens (or prints) the control plane's authorization URL,
    /// waits for the browser on a loopback port (or, with --device, shows a code to enter in
    /// any signed-in browser), and keeps the grant for `kubectl-credential` in
    /// ~/.hexabase/grants/<workspace>.json.
    Login {
        /// The workspace (`ws-…`).
        #[arg(long)]
        workspace: String,
        #[command(flatten)]
        sign_in: hexabase_client::oauth::SignIn,
    },
    /// kubectl's exec credential plugin: print an ExecCredential with a workspace token from the
    /// control plane (cached until shortly before it expires), from the grant `login` left, or
    /// else with the session of `hexabase auth login` for the same server, or the control-plane
    /// access token in HEXABASE_TOKEN or ~/.hexabase/token.
    KubectlCredential {
        /// The control plane's URL.
        #[arg(long)]
        server: String,
        /// The workspace (`ws-…`).
        #[arg(long)]
        workspace: String,
        /// A CA certificate (PEM) to trust for the control plane.
        #[arg(long, env = "HEXABASE_CA_FILE")]
        certificate_authority: Option<PathBuf>,
    },
    /// The API's commands (`auth`, `org`, `member`, `workspace`, `project`, `group`, `role`,
    /// `clusterrole`, `events`): see docs/cli.md.
    #[command(flatten)]
    Api(hexabase_client::cli::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The credential plugin, login and the API's commands run on users' machines: no server
    // configuration involved.
    let settings = match &cli.command {
        Command::KubectlCredential { .. } | Command::Login { .. } | Command::Api(_) => None,
        _ => match Settings::load(cli.config.as_deref()) {
            Ok(settings) => Some(settings),
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        },
    };
    let runtime = match settings.as_ref() {
        Some(settings) => settings.runtime.build(),
        None => tokio::runtime::Runtime::new(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, settings: Option<Settings>) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Cli {
        client, command, ..
    } = cli;
    // The API's commands print their own errors and choose their exit codes.
    let command = match command {
        Command::Api(command) => return Ok(hexabase_client::cli::run(command, client).await),
        other => other,
    };
    // The credential plugin runs on users' machines: no server configuration involved.
    if let Command::KubectlCredential {
        server,
        workspace,
        certificate_authority,
    } = &command
    {
        let credential =
            hexabase_client::exec_credential(server, workspace, certificate_authority.as_deref())
                .await?;
        println!("{credential}");
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Login { workspace, sign_in } = &command {
        let groups = hexabase_client::login(workspace, sign_in).await?;
        eprintln!("Signed in to {workspace} (groups: {}).", groups.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let Some(settings) = settings else {
        anyhow::bail!("the configuration was not read");
    };
    match command {
        // Answered above, before any configuration is read.
        Command::KubectlCredential { .. } | Command::Login { .. } | Command::Api(_) => {}
        Command::Openapi => {
            println!("{}", api::spec());
        }
        Command::Keygen { out } => {
            let path = out.unwrap_or_else(|| settings.auth.key_encryption_key_file.clone());
            if Kek::create_file(&path)? {
                println!("wrote {}", path.display());
            } else {
                anyhow::bail!(
                    "{} exists; refusing to overwrite a key-encryption key (the signing keys \
                     sealed with it could no longer be opened)",
                    path.display()
                );
            }
        }
        Command::Migrate => {
            telemetry::init_logging(&settings.log);
            let pool = app::connect_database(&settings).await?;
            app::migrate(&pool).await?;
            println!("migrations applied");
        }
        Command::Verify => {
            let pool = app::connect_database(&settings).await?;
            let report = hexabase_command::store::verify::verify(&pool).await?;
            for violation in &report.violations {
                println!("BROKEN {violation}");
            }
            println!(
                "{} events in {} aggregates checked, {} problems",
                report.events,
                report.aggregates,
                report.violations.len()
            );
            if !report.violations.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Replay { projection } => {
            telemetry::init_logging(&settings.log);
            let known: Vec<&str> = hexabase_projector::all().iter().map(|p| p.name()).collect();
            let Some(target) = hexabase_projector::by_name(&projection) else {
                anyhow::bail!(
                    "unknown projection `{projection}` (known: {})",
                    known.join(", ")
                );
            };
            let pool = app::connect_database(&settings).await?;
            let count = hexabase_projector::replay(&pool, target.as_ref()).await?;
            println!("{projection}: rebuilt from {count} events");
        }
        Command::Serve => {
            telemetry::init_logging(&settings.log);
            let server = HttpServer::bind_configured(&settings.http).await?;
            let app = App::connect(settings).await?;
            let shutdown = shutdown_on_signal();
            server.run(app, shutdown).await?;
        }
        Command::Worker => {
            telemetry::init_logging(&settings.log);
            let app = App::connect(settings).await?;
            worker::run_worker(app, shutdown_on_signal()).await?;
        }
        Command::Dev { reset } => {
            telemetry::init_logging(&settings.log);
            if reset {
                hexabase::dev::reset(&settings).await?;
                tracing::info!("reset: the database, the streams and the local clusters are empty");
            }
            let kek_file = &settings.auth.key_encryption_key_file;
            if settings.auth.key_encryption_key.is_none() && Kek::create_file(kek_file)? {
                tracing::info!(path = %kek_file.display(), "created a key-encryption key");
            }
            let pool = app::connect_database(&settings).await?;
            app::migrate(&pool).await?;
            let server = HttpServer::bind_configured(&settings.http).await?;
            let shutdown = shutdown_on_signal();
            // The worker runs as a `worker` process would: on a thread and runtime of its own,
            // with its own connections, so relaying and projecting never queue behind requests.
            let worker = worker::spawn_worker_apart(settings.clone(), shutdown.clone());
            let app = App::connect(settings).await?;
            let served = server.run(app, shutdown.clone()).await;
            shutdown.cancel();
            tokio::task::spawn_blocking(move || worker.join())
                .await?
                .map_err(|_| anyhow::anyhow!("the worker thread panicked"))??;
            served?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        trigger.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    token
}
