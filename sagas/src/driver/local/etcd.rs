//! The one etcd every local workspace shares (each API server under its own key prefix): its
//! ports, kept in `state_dir/etcd.json` so they survive restarts and every worker on the state
//! directory agrees on them, how it is started, and the few calls the driver makes to its JSON
//! gateway (counting and deleting a workspace's keys).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::process::{free_port, write_new};
use crate::driver::DriverError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdPorts {
    pub client: u16,
    /// etcd insists on a peer listener even alone; its default (2380) would collide between
    /// state directories on one machine.
    pub peer: u16,
}

impl EtcdPorts {
    /// The recorded ports, recording them first if this is the state directory's first run
    /// (`configured` 0: a free port). A configured port that disagrees with the record is a
    /// configuration error: the API servers' flags and other workers use the recorded one.
    pub fn load_or_create(state_dir: &Path, configured: u16) -> Result<Self, DriverError> {
        let path = state_dir.join("etcd.json");
        let permanent = |what: &str, e: &dyn std::fmt::Display| {
            DriverError::Permanent(format!("local driver: {what} {}: {e}", path.display()))
        };
        if !path.exists() {
            let client = match configured {
                0 => free_port().map_err(|e| permanent("no free port for", &e))?,
                port => port,
            };
            let peer = free_port().map_err(|e| permanent("no free port for", &e))?;
            let record = serde_json::to_vec(&EtcdPorts { client, peer })
                .map_err(|e| permanent("cannot encode", &e))?;
            // Of two workers starting together, one writes; both read what it wrote.
            write_new(&path, &record).map_err(|e| permanent("cannot write", &e))?;
        }
        let text = std::fs::read(&path).map_err(|e| permanent("cannot read", &e))?;
        let ports: EtcdPorts =
            serde_json::from_slice(&text).map_err(|e| permanent("cannot parse", &e))?;
        if configured != 0 && configured != ports.client {
            return Err(DriverError::Permanent(format!(
                "local driver: the settings say etcd_port {configured}, but etcd of {} listens on \
                 {} (recorded in {}); use that port or 0",
                state_dir.display(),
                ports.client,
                path.display()
            )));
        }
        Ok(ports)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }
}

/// etcd for local use: loopback only, no fsync (a machine crash may lose the last writes;
/// a process crash loses nothing), data in `state_dir/etcd`.
pub fn command(binary: &Path, state_dir: &Path, ports: EtcdPorts) -> Command {
    let (client, peer) = (
        format!("http://127.0.0.1:{}", ports.client),
        format!("http://127.0.0.1:{}", ports.peer),
    );
    let mut command = Command::new(binary);
    command.args([
        "--name=default".to_owned(),
        format!("--data-dir={}", state_dir.join("etcd").display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=default={peer}"),
        "--unsafe-no-fsync".to_owned(),
        "--log-level=warn".to_owned(),
    ]);
    command
}

/// The end of the key range starting with `prefix`: the prefix with its last byte plus one.
fn range_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte 0xff (or empty): the range runs to the end of the key space.
    vec![0]
}

/// A client of etcd's JSON gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    http: reqwest::Client,
    url: String,
}

impl Gateway {
    pub fn new(url: String) -> Result<Self, DriverError> {
        // Loopback, plain HTTP: a short timeout says "etcd is down" soon enough to retry.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| DriverError::Permanent(format!("local driver: HTTP client: {e}")))?;
        Ok(Self { http, url })
    }

    async fn call(&self, method: &str, body: serde_json::Value) -> Result<Response, DriverError> {
        let transient = |e: &dyn std::fmt::Display| {
            DriverError::Transient(format!("local driver: etcd {method} at {}: {e}", self.url))
        };
        let response = self
            .http
            .post(format!("{}/v3/kv/{method}", self.url))
            .json(&body)
            .send()
            .await
            .map_err(|e| transient(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| transient(&e))?;
        if !status.is_success() {
            return Err(transient(&format!("{status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| transient(&e))
    }

    fn range(prefix: &str) -> serde_json::Value {
        json!({ "key": BASE64.encode(prefix), "range_end": BASE64.encode(range_end(prefix)) })
    }

    /// How many keys start with `prefix`.
    pub async fn count(&self, prefix: &str) -> Result<u64, DriverError> {
        let mut body = Self::range(prefix);
        body["count_only"] = json!(true);
        Ok(self.call("range", body).await?.count.unwrap_or_default().0)
    }

    /// Delete every key starting with `prefix`; how many there were.
    pub async fn delete(&self, prefix: &str) -> Result<u64, DriverError> {
        let response = self.call("deleterange", Self::range(prefix)).await?;
        Ok(response.deleted.unwrap_or_default().0)
    }
}

/// The gateway leaves out zero counts and writes int64s as strings.
#[derive(Debug, Deserialize)]
struct Response {
    count: Option<Int64>,
    deleted: Option<Int64>,
}

#[derive(Debug, Default)]
struct Int64(u64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(u64),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(Int64(n)),
            Either::Text(text) => text.parse().map(Int64).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_after_its_last_byte() {
        assert_eq!(range_end("/hexabase/ws-1/"), b"/hexabase/ws-10".to_vec());
        assert_eq!(range_end("a\u{7f}"), b"a\x80".to_vec());
    }

    #[test]
    fn counts_arrive_as_strings_or_not_at_all() {
        let r: Response = serde_json::from_str(r#"{"header":{},"count":"12"}"#).unwrap();
        assert_eq!(r.count.unwrap().0, 12);
        let r: Response = serde_json::from_str(r#"{"header":{}}"#).unwrap();
        assert!(r.count.is_none() && r.deleted.is_none());
    }
}
