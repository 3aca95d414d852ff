//! Identity against real services: dex (a real OpenID Connect provider) driven like a browser,
//! a stand-in for GitHub's OAuth endpoints, PostgreSQL, NATS and Redis.

mod attacks;
mod github;
mod login;
mod sessions;

use hexabase::server::HttpServer;
use hexabase_it::github::GithubStandIn;
use hexabase_it::hostile_idp::HostileIdp;
use hexabase_it::peers::{IdentityProvider, IdpUser};
use hexabase_it::{TestApp, TestAppOptions};

pub struct World {
    pub app: TestApp,
    pub dex: IdentityProvider,
    pub github: GithubStandIn,
    /// An OIDC provider that forges ID tokens on request (`mallory`).
    pub hostile: HostileIdp,
    pub ada: IdpUser,
    pub bob: IdpUser,
}

/// The control plane with two providers configured: `dex` (OIDC) and `github`.
pub async fn world() -> World {
    hexabase_it::init_crypto();
    let server = HttpServer::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", server.addr);
    let (ada, bob) = (IdpUser::new("ada"), IdpUser::new("bob"));
    let dex = IdentityProvider::start(
        &[ada.clone(), bob.clone()],
        &format!("{base}/auth/callback/dex"),
    )
    .await;
    let github = GithubStandIn::start().await;
    let hostile = HostileIdp::start().await;
    let (dex_settings, github_settings, hostile_settings) = (
        dex.provider_settings(),
        github.provider_settings(),
        hostile.provider_settings(),
    );
    let app = TestApp::spawn_on(server, TestAppOptions::default(), move |settings| {
        settings.auth.providers.insert("dex".into(), dex_settings);
        settings
            .auth
            .providers
            .insert("github".into(), github_settings);
        settings
            .auth
            .providers
            .insert("mallory".into(), hostile_settings);
    })
    .await;
    World {
        app,
        dex,
        github,
        hostile,
        ada,
        bob,
    }
}
