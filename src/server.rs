//! The HTTP server: bound before it serves (port 0 picks a free one), plain or TLS, with the
//! signing keyrings kept in step while it runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::Server;
use tokio_util::sync::CancellationToken;

use crate::app::{App, StartError};

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

    pub async fn run(self, app: Arc<App>, shutdown: CancellationToken) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, "HTTP API listening");
        // Signing keys: refreshed from the event store and rotated while the API serves.
        let keys_stop = shutdown.child_token();
        let keys = {
            let (app, stop) = (app.clone(), keys_stop.clone());
            tokio::spawn(async move { app.session_keys.run(&app.tokens, stop).await })
        };
        let issuer_keys = {
            let (app, stop) = (app.clone(), keys_stop.clone());
            tokio::spawn(async move { app.issuer.keys.run(&app.issuer.tokens, stop).await })
        };
        let routes = crate::api::routes(app);
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
        let _ = issuer_keys.await;
        served
    }
}
