//! `hexabase dev --reset`: start from empty — the database dropped and created again, the
//! JetStream streams of events and tasks deleted (a new store numbers its events from 1 again,
//! and JetStream would drop them as duplicates of the old ones), the local clusters' state
//! removed. The key-encryption key stays: it seals nothing once the store is empty.

use secrecy::ExposeSecret;
use sqlx::{Connection, PgConnection};

use crate::config::Settings;

pub async fn reset(settings: &Settings) -> anyhow::Result<()> {
    let url = url::Url::parse(settings.database.url.expose_secret())?;
    let database = url.path().trim_start_matches('/').to_owned();
    anyhow::ensure!(
        !database.is_empty()
            && database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "database.url names no plain database to reset"
    );
    let mut admin_url = url.clone();
    admin_url.set_path("/postgres");
    let mut admin = PgConnection::connect(admin_url.as_str()).await?;
    // The name was checked to be a plain identifier: it cannot be a bound parameter here.
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
    ))
    .execute(&mut admin)
    .await?;
    sqlx::query(&format!("CREATE DATABASE \"{database}\""))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let nats = async_nats::connect(&settings.nats.url).await?;
    let js = async_nats::jetstream::new(nats);
    for stream in [&settings.nats.stream, &settings.sagas.stream] {
        match js.delete_stream(stream).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("not found") => {}
            Err(e) => anyhow::bail!("cannot delete stream {stream}: {e}"),
        }
    }
    let clusters = &settings.provisioning.local.state_dir;
    if clusters.exists() {
        std::fs::remove_dir_all(clusters)?;
    }
    Ok(())
}
