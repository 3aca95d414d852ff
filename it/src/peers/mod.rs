//! Real test peers built by `scripts/peers`: kube-apiserver with etcd (plus controller-manager,
//! scheduler and KWOK on request), and the others added beside them. Each runs on free loopback
//! ports in a temporary directory of its own and is killed when its handle drops or, failing
//! that, when the test process exits.

pub mod identity_provider;
pub mod kube_cluster;
pub mod pki;
pub mod process;
pub mod stripe_mock;

use std::path::PathBuf;

pub use identity_provider::{IdentityProvider, IdpUser};
pub use kube_cluster::{JwtAuthenticator, KubeCluster, KubeClusterOptions};
pub use stripe_mock::StripeMock;

/// Where `scripts/peers` keeps its builds and its manifest (`name version path` per line).
pub fn peers_dir() -> PathBuf {
    std::env::var_os("HEXABASE_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hexabase/peers"))
}

/// The absolute path of a built peer, or a panic that says how to build it.
pub fn binary(name: &str) -> PathBuf {
    let manifest = peers_dir().join("manifest.txt");
    let how = "build the test peers with `scripts/peers` (scripts/test does it too)";
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| {
        panic!(
            "test peer `{name}` is missing ({}: {e}); {how}",
            manifest.display()
        )
    });
    let path = text
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next() == Some(name)).then(|| parts.nth(1).map(PathBuf::from))?
        })
        .next()
        .unwrap_or_else(|| panic!("test peer `{name}` is not in {}; {how}", manifest.display()));
    assert!(
        path.exists(),
        "test peer `{name}` is missing at {}; {how}",
        path.display()
    );
    path
}

/// The quota of the built-in `starter` plan, for driver tests that make clusters directly.
pub fn test_quota() -> hexabase_sagas::quota::Quota {
    hexabase_sagas::quota::Quota {
        cpu: "4".into(),
        memory: "8Gi".into(),
        storage: "50Gi".into(),
        pods: 50,
        services: 20,
        persistent_volume_claims: 10,
    }
}
