//! Rate limits per client IP and per signed-in user. Counters live in Redis, in fixed windows,
//! so every replica enforces the same limit. While Redis is unreachable each process limits on
//! its own (governor, same quota): an outage loosens the limit by the number of replicas instead
//! of failing requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use poem::{Endpoint, IntoResponse, Request, Response, Result};

use crate::app::App;
use crate::config::RateLimitSettings;
use crate::error::Error;

/// Past this many keys, the per-process limiter forgets the ones back at a full quota.
const FALLBACK_KEYS: usize = 10_000;

/// Which limit a request counts against; operations endpoints (health, metrics, docs) have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Sign-in and token endpoints: stricter, per client IP.
    Auth,
    /// The resource API, and the reads a page makes on every view (who am I, which providers):
    /// per client IP and per signed-in user.
    Api,
}

/// Reads under `/auth/` that sign nobody in and issue nothing.
const AUTH_READS: [&str; 2] = ["/auth/me", "/auth/providers"];

impl Class {
    fn of(path: &str) -> Option<Self> {
        if AUTH_READS.contains(&path) {
            Some(Self::Api)
        } else if path.starts_with("/auth/") || path.starts_with("/oauth/") {
            Some(Self::Auth)
        } else if path.starts_with("/api/") {
            Some(Self::Api)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Api => "api",
        }
    }

    fn per_window(self, settings: &RateLimitSettings) -> u64 {
        match self {
            Self::Auth => settings.auth_per_window,
            Self::Api => settings.api_per_window,
        }
    }
}

/// The fixed window `now` falls in, and the seconds until it ends (at least 1).
fn window(now_secs: u64, window_secs: u64) -> (u64, u64) {
    let window_secs = window_secs.max(1);
    (now_secs / window_secs, window_secs - now_secs % window_secs)
}

/// Counts requests per (class, subject) and answers 429 with `Retry-After` past the limit.
pub async fn limit<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    if let Some(retry_after) = refused(&req).await {
        return Ok(too_many_requests(retry_after));
    }
    Ok(next.call(req).await?.into_response())
}

/// `Some(seconds to wait)` when the request is over one of its limits.
async fn refused(req: &Request) -> Option<u64> {
    let class = Class::of(req.uri().path())?;
    let state = req.data::<Arc<App>>()?;
    let settings = &state.settings.rate_limit;
    let limit = class.per_window(settings);
    if limit == 0 {
        return None;
    }
    let mut subjects = vec![("ip", client(req, settings.trust_forwarded_for))];
    if class == Class::Api {
        if let Some(principal) = super::security::presented_principal(state, req) {
            subjects.push(("user", principal.user.to_string()));
        }
    }
    let keys: Vec<String> = subjects
        .iter()
        .map(|(kind, subject)| state.shared.key(&["rl", class.name(), kind, subject]))
        .collect();

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (index, retry_after) = window(now, settings.window_secs);
    let ttl = i64::try_from(settings.window_secs).unwrap_or(i64::MAX);
    let mut pipe = redis::pipe();
    pipe.atomic();
    for key in &keys {
        let key = format!("{key}:{index}");
        pipe.incr(&key, 1).expire(&key, ttl).ignore();
    }
    match state.shared.pipeline::<Vec<u64>>(&pipe).await {
        Some(counts) => counts.iter().any(|&n| n > limit).then_some(retry_after),
        None => fallback(limit, settings.window_secs).refused(&keys),
    }
}

/// The client's address: the right-most `X-Forwarded-For` entry (the address the trusted proxy
/// in front saw; entries to its left are the client's own claims) when configured, the peer otherwise. IPv6 clients count per /64, the block one host gets.
fn client(req: &Request, trust_forwarded_for: bool) -> String {
    let forwarded = trust_forwarded_for
        .then(|| req.headers().get("x-forwarded-for")?.to_str().ok())
        .flatten()
        .and_then(|v| v.split(',').next_back()?.trim().parse::<IpAddr>().ok());
    let peer = || req.remote_addr().as_socket_addr().map(|a| a.ip());
    match forwarded.or_else(peer).map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => {
            let s = ip.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => req.remote_addr().to_string(),
    }
}

fn too_many_requests(retry_after: u64) -> Response {
    Error::TooManyRequests { retry_after }.into_response()
}

/// Per-process limiter for one quota, used while Redis is unreachable.
struct Fallback(DefaultKeyedRateLimiter<String>);

impl Fallback {
    fn new(limit: u64, window_secs: u64) -> Self {
        let burst =
            NonZeroU32::new(u32::try_from(limit).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs(window_secs.max(1)) / burst.get();
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        Self(RateLimiter::keyed(quota))
    }

    /// Like the Redis path: every key is counted, and any key over its quota refuses.
    fn refused(&self, keys: &[String]) -> Option<u64> {
        if self.0.len() > FALLBACK_KEYS {
            self.0.retain_recent();
        }
        let now = self.0.clock().now();
        keys.iter()
            .filter_map(|key| self.0.check_key(key).err())
            .map(|not_until| not_until.wait_time_from(now).as_secs_f64().ceil() as u64)
            .max()
            .map(|secs| secs.max(1))
    }
}

/// The process's fallback limiter for this quota (one per quota: settings may differ between
/// servers sharing a process, as in tests).
fn fallback(limit: u64, window_secs: u64) -> Arc<Fallback> {
    type ByQuota = HashMap<(u64, u64), Arc<Fallback>>;
    static LIMITERS: OnceLock<Mutex<ByQuota>> = OnceLock::new();
    let limiters = LIMITERS.get_or_init(Default::default);
    let mut limiters = limiters
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    limiters
        .entry((limit, window_secs))
        .or_insert_with(|| Arc::new(Fallback::new(limit, window_secs)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_and_retry_after_points_at_their_end() {
        assert_eq!(window(120, 60), (2, 60));
        assert_eq!(window(121, 60), (2, 59));
        assert_eq!(window(179, 60), (2, 1));
        assert_eq!(window(180, 60), (3, 60));
        assert_eq!(window(7, 0), (7, 1), "a zero window is one second");
    }

    #[test]
    fn classes_follow_the_path() {
        assert_eq!(Class::of("/auth/login/github"), Some(Class::Auth));
        assert_eq!(Class::of("/auth/nothing-here"), Some(Class::Auth));
        assert_eq!(Class::of("/oauth/token"), Some(Class::Auth));
        assert_eq!(Class::of("/auth/me"), Some(Class::Api));
        assert_eq!(Class::of("/auth/providers"), Some(Class::Api));
        assert_eq!(Class::of("/auth/me/x"), Some(Class::Auth));
        assert_eq!(Class::of("/api/v1/organizations"), Some(Class::Api));
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/docs",
            "/openapi.json",
            "/authx",
        ] {
            assert_eq!(Class::of(path), None, "{path}");
        }
        let settings = RateLimitSettings {
            window_secs: 60,
            auth_per_window: 3,
            api_per_window: 9,
            trust_forwarded_for: false,
        };
        assert_eq!(Class::Auth.per_window(&settings), 3);
        assert_eq!(Class::Api.per_window(&settings), 9);
    }

    /// A request from `peer` carrying `X-Forwarded-For: forwarded_for`.
    fn from(peer: &str, forwarded_for: &str) -> Request {
        let (parts, ()) = poem::http::Request::builder()
            .header("x-forwarded-for", forwarded_for)
            .body(())
            .unwrap()
            .into_parts();
        let remote = poem::web::RemoteAddr(poem::Addr::SocketAddr(peer.parse().unwrap()));
        let parts = poem::RequestParts::from((
            parts,
            poem::web::LocalAddr::default(),
            remote,
            poem::http::uri::Scheme::HTTP,
        ));
        Request::from_parts(parts, poem::Body::empty())
    }

    #[test]
    fn the_client_is_the_peer_unless_the_proxy_is_trusted() {
        // The client claimed 198.51.100.9; the proxy appended the address it saw.
        let req = from("[::ffff:192.0.2.1]:4000", "198.51.100.9, 203.0.113.7");
        assert_eq!(client(&req, false), "192.0.2.1");
        assert_eq!(client(&req, true), "203.0.113.7");
        let req = from("[2001:db8:1:2:3:4:5:6]:4000", "not an address");
        assert_eq!(client(&req, false), "2001:db8:1:2::/64");
        assert_eq!(client(&req, true), "2001:db8:1:2::/64");
    }

    #[test]
    fn the_fallback_allows_the_quota_then_refuses_until_it_refills() {
        let limiter = Fallback::new(3, 60);
        let keys = ["k".to_owned()];
        for _ in 0..3 {
            assert_eq!(limiter.refused(&keys), None);
        }
        let retry_after = limiter.refused(&keys).expect("over the quota");
        assert!((1..=20).contains(&retry_after), "{retry_after}");
        assert_eq!(limiter.refused(&["other".to_owned()]), None);
    }
}
