//! `StripeMock`: Stripe's own API mock (stateless, answers from Stripe's OpenAPI spec).

use std::process::Command;
use std::time::Duration;

use super::binary;
use super::process::{free_port, wait_ready, Peer, TempDir};

pub struct StripeMock {
    _dir: TempDir,
    _peer: Peer,
    pub port: u16,
}

impl StripeMock {
    pub async fn start() -> Self {
        crate::init_crypto();
        let dir = TempDir::new("hxb-stripe");
        let (port, https_port) = (free_port(), free_port());
        let mut command = Command::new(binary("stripe-mock"));
        command.args([
            "-http-addr".to_owned(),
            format!("127.0.0.1:{port}"),
            "-https-addr".to_owned(),
            format!("127.0.0.1:{https_port}"),
        ]);
        let mut peer = Peer::spawn("stripe-mock", command, &dir.path().join("stripe-mock.log"));
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/v1/customers");
        // Any HTTP answer means it listens (unauthenticated calls get 401).
        wait_ready(&mut peer, Duration::from_secs(30), || async {
            client.get(&url).send().await.is_ok()
        })
        .await;
        Self {
            _dir: dir,
            _peer: peer,
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An async-stripe client pointed at this mock (stripe-mock accepts any `sk_test_…` key).
    pub fn client(&self) -> stripe::Client {
        stripe::ClientBuilder::new("sk_test_123")
            .url(self.url())
            .build()
            .expect("stripe client")
    }
}
