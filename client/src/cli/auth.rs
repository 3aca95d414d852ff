//! `hexabase auth`: signing the CLI in to the control plane as the user (client
//! `hexabase-cli`, through the browser or a device code), signing out, and who is signed in.

use clap::Subcommand;

use super::connection::{client_for, Api};
use super::error::exit;
use super::error::CliError;
use super::output::{or_dash, show, time, Output, Table};
use crate::error::ClientError;
use crate::files::lock_beside;
use crate::oauth::{self, payload, Provider, SignIn};
use crate::session::{self, Session, CLI_CLIENT};

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Sign in: opens (or prints) the control plane's authorization URL and waits for the
    /// browser on a loopback port (or, with --device, shows a code to enter in any signed-in
    /// browser); keeps the session in ~/.hexabase/session.json.
    Login(SignIn),
    /// Sign out: the control plane ends the session, and it is forgotten here.
    Logout,
    /// Who is signed in: the user, their identities and organizations.
    Whoami,
}

pub async fn run(command: AuthCommand, output: Output) -> Result<(), CliError> {
    match command {
        AuthCommand::Login(how) => login(&how).await,
        AuthCommand::Logout => logout().await,
        AuthCommand::Whoami => whoami(output).await,
    }
}

async fn login(how: &SignIn) -> Result<(), CliError> {
    let server = how.server.as_str();
    // Kept as an absolute path: later commands run from anywhere.
    let certificate_authority = how
        .certificate_authority
        .as_ref()
        .map(|path| {
            std::fs::canonicalize(path).map_err(|e| ClientError::Ca {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        })
        .transpose()?;
    let http = oauth::http_client(server, certificate_authority.as_deref(), Default::default())?;
    let provider = Provider::discover(&http, server).await?;
    let signed_in = provider.sign_in(CLI_CLIENT, how).await?;
    let session = Session::signed_in(
        server,
        certificate_authority,
        provider.endpoint("token_endpoint")?,
        signed_in.tokens,
    );
    let previous = {
        let _lock = lock_beside(&session::path()).await?;
        let previous = Session::load().ok();
        session.save()?;
        previous
    };
    // The session this one replaces is ended too, not left running unseen (if its access
    // token is still good: this is a courtesy, not a guarantee).
    if let Some(previous) = previous {
        let _ = sign_out(&previous).await;
    }
    let user = payload(&session.access_token)
        .and_then(|claims| claims["sub"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    eprintln!("Signed in to {} as {user}.", session.server);
    Ok(())
}

/// Tell the control plane to end `session`.
async fn sign_out(session: &Session) -> Result<(), CliError> {
    let client = client_for(session)?;
    match client.logout().await {
        Ok(_) => Ok(()),
        Err(e) => Err(CliError::from_api(e).await),
    }
}

async fn logout() -> Result<(), CliError> {
    let told = match Api::connect().await {
        Ok(mut api) => api
            .call(|c| async move { c.logout().await })
            .await
            .map(|()| true),
        // Its refresh token was refused: the control plane has ended it already.
        Err(CliError::Client(ClientError::SessionEnded { .. })) => Ok(false),
        Err(other) => return Err(other),
    };
    session::remove().await?;
    let ended_already = match told {
        Ok(told) => !told,
        Err(e) if e.exit_code() == exit::UNAUTHENTICATED => true,
        Err(e) => {
            return Err(CliError::Other(format!(
                "the session was forgotten here, but the control plane could not be told to \
                 end it: {e}"
            )))
        }
    };
    if ended_already {
        eprintln!("Signed out (the session had ended already).");
    } else {
        eprintln!("Signed out.");
    }
    Ok(())
}

async fn whoami(output: Output) -> Result<(), CliError> {
    let mut api = Api::connect().await?;
    let position = api.position();
    let me = api.call(|c| async move { c.me(position).await }).await?;
    let server = api.session().server.clone();
    show(output, &me, |me| {
        let mut text = Table::details(&[
            ("USER", me.id.clone()),
            ("EMAIL", or_dash(me.email.as_deref())),
            ("NAME", or_dash(me.display_name.as_deref())),
            ("SERVER", server),
            ("SINCE", time(&me.registered_at)),
        ]);
        for org in &me.organizations {
            text.row(vec![
                "ORGANIZATION:".into(),
                format!("{} {} ({})", org.id, org.name, org.role),
            ]);
        }
        for invitation in &me.invitations {
            text.row(vec![
                "INVITED TO:".into(),
                format!(
                    "{} {} as {}",
                    invitation.org_id, invitation.org_name, invitation.role
                ),
            ]);
        }
        text
    })?;
    Ok(())
}
