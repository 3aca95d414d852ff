//! The generated API client, authenticated as the saved session: every call sends its access
//! token (renewed before it expires, and once more when the control plane refuses it), lists
//! are paged through to the end, and reads pass the position of the session's last write.

use std::future::Future;
use std::num::{NonZeroU32, NonZeroU64};
use std::str::FromStr;

use progenitor_client::ResponseValue;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use super::error::{input, CliError};
use crate::api::{self, types};
use crate::error::ClientError;
use crate::session::{self, Session};

type Answer<T> = Result<ResponseValue<T>, progenitor_client::Error<types::ErrorBody>>;

pub struct Api {
    session: Session,
    client: api::Client,
}

/// The generated client, sending `session`'s access token.
pub fn client_for(session: &Session) -> Result<api::Client, CliError> {
    let mut bearer =
        HeaderValue::from_str(&format!("Bearer {}", session.access_token)).map_err(|_| {
            ClientError::SessionEnded {
                server: session.server.clone(),
                reason: "the saved access token is malformed".into(),
            }
        })?;
    bearer.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, bearer);
    Ok(api::Client::new_with_client(
        &session.server,
        session.http(headers)?,
    ))
}

impl Api {
    /// The saved session, its access token renewed if it is about to expire.
    pub async fn connect() -> Result<Self, CliError> {
        let session = session::current(None).await?;
        Ok(Self {
            client: client_for(&session)?,
            session,
        })
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The position reads pass: that of the session's last write.
    pub fn position(&self) -> Option<NonZeroU64> {
        self.session
            .position
            .and_then(|p| u64::try_from(p).ok())
            .and_then(NonZeroU64::new)
    }

    /// Run `request` (built anew for a retry); a 401 renews the access token once.
    pub async fn call<T, F, Fut>(&mut self, request: F) -> Result<T, CliError>
    where
        F: Fn(api::Client) -> Fut,
        Fut: Future<Output = Answer<T>>,
    {
        let answer = match request(self.client.clone()).await {
            Err(refused) if refused.status() == Some(reqwest::StatusCode::UNAUTHORIZED) => {
                let renewed = session::current(Some(&self.session.access_token)).await?;
                self.client = client_for(&renewed)?;
                self.session = renewed;
                request(self.client.clone()).await
            }
            answer => answer,
        };
        match answer {
            Ok(value) => Ok(value.into_inner()),
            Err(error) => Err(match CliError::from_api(error).await {
                // Refused again with a fresh token: the session is over.
                CliError::Api {
                    status: 401,
                    message,
                    ..
                } => ClientError::SessionEnded {
                    server: self.session.server.clone(),
                    reason: message,
                }
                .into(),
                other => other,
            }),
        }
    }

    /// Every item of a list, page after page (`page` asks for the one after a cursor, in the
    /// list's own cursor type).
    pub async fn all<P, C, F, Fut>(&mut self, page: F) -> Result<Vec<P::Item>, CliError>
    where
        P: Page,
        C: FromStr + Clone,
        C::Err: std::fmt::Display,
        F: Fn(api::Client, Option<C>) -> Fut,
        Fut: Future<Output = Answer<P>>,
    {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let after: Option<C> = cursor.as_deref().map(|c| input("cursor", c)).transpose()?;
            let (mut batch, next) = self.call(|c| page(c, after.clone())).await?.split();
            items.append(&mut batch);
            match next {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(items),
            }
        }
    }

    /// Before a write in `scope`: the read models the control plane decides it from have caught
    /// up with this session's last write. (Writes take no position; a read that passes it waits
    /// for them, so `workspace create` then `project create` does not meet a workspace the read
    /// model does not know yet.) A read that fails says nothing: the write will answer.
    pub async fn settle(&mut self, scope: Scope<'_>) {
        let Some(position) = self.position() else {
            return;
        };
        let _ = match scope {
            Scope::Organization(org) => self
                .call(|c| async move { c.get_organization(org, Some(position)).await })
                .await
                .map(drop),
            Scope::Workspace(ws) => self
                .call(|c| async move {
                    c.list_projects(ws, None, Some(NonZeroU32::MIN), Some(position))
                        .await
                })
                .await
                .map(drop),
            Scope::Project(project) => self
                .call(|c| async move {
                    c.list_roles(project, None, Some(NonZeroU32::MIN), Some(position))
                        .await
                })
                .await
                .map(drop),
        };
    }

    /// Keep the position of a write just made for the reads of the commands that follow.
    pub async fn wrote(&mut self, position: Option<i64>) {
        let Some(position) = position else { return };
        self.session.position = Some(self.session.position.map_or(position, |p| p.max(position)));
        if let Err(e) = session::record_position(position).await {
            eprintln!("warning: the write's position was not kept: {e}");
        }
    }
}

/// Where a write happens.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    Organization(&'a str),
    Workspace(&'a str),
    Project(&'a str),
}

/// Largest page the API serves (100).
pub const PAGE: NonZeroU32 = NonZeroU32::MIN.saturating_add(99);

/// A page of a list: its items and the cursor of the next one.
pub trait Page {
    type Item;
    fn split(self) -> (Vec<Self::Item>, Option<String>);
}

macro_rules! pages {
    ($($list:ident => $item:ident),* $(,)?) => {$(
        impl Page for types::$list {
            type Item = types::$item;
            fn split(self) -> (Vec<types::$item>, Option<String>) {
                (self.items, self.next_cursor)
            }
        }
    )*};
}

pages!(
    ListOrganizationView => OrganizationView,
    ListOrganizationMember => OrganizationMember,
    ListWorkspaceView => WorkspaceView,
    ListGroup => Group,
    ListGroupMember => GroupMember,
    ListProject => Project,
    ListRoleAssignmentView => RoleAssignmentView,
    ListAuditEvent => AuditEvent,
    ListTask => Task,
);
