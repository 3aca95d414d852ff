//! GitHub's OAuth apps: plain OAuth 2.0 without ID tokens. Who signed in comes from the REST
//! API: `/user` for the numeric id (the subject; logins can be renamed) and `/user/emails` for
//! the primary email and whether GitHub verified it. Base URLs are configuration, so GitHub
//! Enterprise Server works too.

use hexabase_command::user::{ExternalProfile, Identity};
use hexabase_command::values::Email;
use serde::Deserialize;

use super::{LoginError, Provider};
use crate::config::ProviderSettings;

const AUTHORIZE_URL: &str = "https://github.com/login/oauth/authorize";
const TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
const API_URL: &str = "https://api.github.com";

pub fn authorize_url(settings: &ProviderSettings) -> String {
    settings
        .authorize_url
        .clone()
        .unwrap_or_else(|| AUTHORIZE_URL.to_owned())
}

pub fn token_url(settings: &ProviderSettings) -> String {
    settings
        .token_url
        .clone()
        .unwrap_or_else(|| TOKEN_URL.to_owned())
}

fn api_url(settings: &ProviderSettings) -> String {
    settings
        .api_url
        .clone()
        .unwrap_or_else(|| API_URL.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

pub async fn profile(
    provider: &Provider,
    access_token: &str,
) -> Result<ExternalProfile, LoginError> {
    let api = api_url(&provider.settings);
    let user: GithubUser = provider
        .get_json(&format!("{api}/user"), Some(access_token))
        .await?;
    let emails: Vec<GithubEmail> = provider
        .get_json(&format!("{api}/user/emails"), Some(access_token))
        .await?;
    let primary = emails.into_iter().find(|e| e.primary);
    let (email, email_verified) = match primary {
        Some(e) => (Email::parse("email", &e.email).ok(), e.verified),
        None => (None, false),
    };
    Ok(ExternalProfile {
        identity: Identity {
            provider: provider.name.clone(),
            subject: user.id.to_string(),
        },
        email_verified: email.is_some() && email_verified,
        email,
        display_name: user.name.or(Some(user.login)),
    })
}
