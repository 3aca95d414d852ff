//! Workspace tokens: who may hold one for a workspace's API server, and minting it.
//!
//! Who may is decided on the workspace and organization aggregates, not on read models that
//! may lag. Each process keeps their states in memory; a grant decided on them is recorded
//! only if neither aggregate has had an event since (the issuance's append checks it),
//! otherwise the decision is taken again on their current states. A refusal is always decided
//! on current states. Every token is recorded (`WorkspaceTokenIssued`, one small aggregate per
//! token, so issuing never contends with the workspace's own changes).

use std::sync::Arc;

use cqrs_es::{Aggregate, AggregateError};
use hexabase_command::credential::CredentialCommand;
use hexabase_command::organization::Organization;
use hexabase_command::policy::WorkspaceAction;
use hexabase_command::store;
use hexabase_command::workspace::Workspace;
use hexabase_command::{CommandMetadata, OrganizationId, UserId, WorkspaceId};
use hexabase_identity::issuer::WorkspaceClaims;
use hexabase_query::workspace::WorkspaceRow;

use super::{App, OpContext};
use crate::error::{Error, Result};

/// What a workspace token says of its user — the organization and the user's groups — and the
/// workspace and organization aggregates as the decision read them.
pub struct Grant {
    org: OrganizationId,
    pub groups: Vec<String>,
    read: Vec<store::ReadAt>,
}

/// A signed workspace token and its claims.
pub struct Minted {
    pub token: String,
    pub claims: WorkspaceClaims,
}

/// Times a grant is decided again because the workspace or organization changed while its
/// token was being issued.
const GRANT_ATTEMPTS: usize = 3;

/// A grant when the workspace (at the sequence given) has `user` in one of its groups and its
/// organization (likewise) has them as a member.
fn decide(
    ws: &WorkspaceId,
    user: &UserId,
    (workspace, ws_sequence): (Arc<Workspace>, i64),
    (organization, org_sequence): (Arc<Organization>, i64),
) -> Option<Grant> {
    let (org, groups) = workspace.token_grant(user)?;
    organization.role_of(user)?;
    let read = vec![
        store::ReadAt {
            aggregate_type: Workspace::TYPE.to_owned(),
            aggregate_id: ws.to_string(),
            sequence: ws_sequence,
        },
        store::ReadAt {
            aggregate_type: Organization::TYPE.to_owned(),
            aggregate_id: org.to_string(),
            sequence: org_sequence,
        },
    ];
    Some(Grant { org, groups, read })
}

impl App {
    /// A token for the workspace's API server for the caller, who must be in one of its groups.
    /// A refusal answers as the workspace's other routes do: 404 to whoever may not see it.
    pub async fn workspace_token(&self, op: &OpContext, ws: &WorkspaceId) -> Result<Minted> {
        let user = op.user();
        let minted = match self.grant_in_state(user, ws).await? {
            Some(grant) => self.mint(user, ws, grant, None, &op.request_id).await?,
            None => None,
        };
        match minted {
            Some(minted) => Ok(minted),
            None => {
                self.authorize_workspace(ws, user, WorkspaceAction::Read)
                    .await?;
                Err(Error::forbidden(
                    "workspace tokens go to members of the workspace's groups only",
                ))
            }
        }
    }

    /// The workspace and the grant a token for it would carry, if `user` may hold one: the
    /// policy lets them read the workspace, and the aggregates have them in one of its groups
    /// and in its organization.
    pub(super) async fn grant_for(
        &self,
        user: &UserId,
        ws: &WorkspaceId,
    ) -> Result<Option<(WorkspaceRow, Grant)>> {
        let row = match self
            .authorize_workspace(ws, user, WorkspaceAction::Read)
            .await
        {
            Ok(row) => row,
            Err(Error::NotFound(_) | Error::Forbidden(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(self
            .grant_in_state(user, ws)
            .await?
            .map(|grant| (row, grant)))
    }

    /// The grant, from the cached states of the aggregates when they grant it (the issuance is
    /// appended only if neither has moved on since), otherwise from their current states.
    async fn grant_in_state(&self, user: &UserId, ws: &WorkspaceId) -> Result<Option<Grant>> {
        let cached = self
            .workspace_states
            .cached_at(ws.as_str())
            .and_then(|workspace| {
                let org = workspace.0.organization()?;
                let organization = self.organization_states.cached_at(org.as_str())?;
                Some((workspace, organization))
            });
        if let Some((workspace, organization)) = cached {
            if let Some(grant) = decide(ws, user, workspace, organization) {
                return Ok(Some(grant));
            }
        }
        self.current_grant(user, ws).await
    }

    /// The grant decided from the events recorded up to now.
    async fn current_grant(&self, user: &UserId, ws: &WorkspaceId) -> Result<Option<Grant>> {
        let pool = &self.pool;
        // A workspace's organization never changes: once it is known, both aggregates are
        // caught up by one query.
        let known = self
            .workspace_states
            .cached_at(ws.as_str())
            .and_then(|(w, _)| w.organization().cloned());
        let (workspace, organization) = match known {
            Some(org) => {
                let (workspace, organization) = self
                    .workspace_states
                    .load_with(pool, ws.as_str(), &self.organization_states, org.as_str())
                    .await?;
                (workspace, Some((org, organization)))
            }
            None => (self.workspace_states.load(pool, ws.as_str()).await?, None),
        };
        let Some(org) = workspace.0.organization().cloned() else {
            return Ok(None);
        };
        let organization = match organization {
            Some((known, organization)) if known == org => organization,
            _ => self.organization_states.load(pool, org.as_str()).await?,
        };
        Ok(decide(ws, user, workspace, organization))
    }

    /// Sign a workspace token for `user` and record it as issued (who, which workspace, jti,
    /// expiry), if the workspace and organization are still as the grant read them; otherwise
    /// decide again from their current states. `None` when that decision refuses.
    pub(super) async fn mint(
        &self,
        user: &UserId,
        ws: &WorkspaceId,
        mut grant: Grant,
        nonce: Option<String>,
        request_id: &str,
    ) -> Result<Option<Minted>> {
        for _ in 0..GRANT_ATTEMPTS {
            let mut claims = self.issuer.claims(user, ws, grant.groups.clone());
            claims.nonce = nonce.clone();
            let command = CredentialCommand::IssueWorkspaceToken {
                org_id: grant.org.clone(),
                workspace_id: ws.clone(),
                user: user.clone(),
                expires_at: claims.exp,
                groups: grant.groups.clone(),
            };
            let metadata = CommandMetadata::for_request(user.clone(), request_id.to_owned());
            // A new aggregate per token (its jti): nothing to read first.
            let issued = store::if_unchanged(
                std::mem::take(&mut grant.read),
                store::create(
                    &self.credentials,
                    &claims.jti,
                    command,
                    &(),
                    metadata.into_map(),
                ),
            )
            .await;
            match issued {
                Ok(()) => {
                    let token = self.sign(&claims).await?;
                    return Ok(Some(Minted { token, claims }));
                }
                Err(AggregateError::AggregateConflict) => {
                    match self.current_grant(user, ws).await? {
                        Some(current) => grant = current,
                        None => return Ok(None),
                    }
                }
                Err(e) => return Err(Error::command_failed(e)),
            }
        }
        Err(Error::conflict(
            "the workspace's groups kept changing while the token was issued; retry",
        ))
    }

    /// An ES256 signature is about 0.4 ms of CPU: made on the blocking pool, so a server on one
    /// thread (`runtime.threads = 1`) keeps answering meanwhile.
    async fn sign(&self, claims: &WorkspaceClaims) -> Result<String> {
        let (tokens, claims) = (self.issuer.tokens.clone(), claims.clone());
        tokio::task::spawn_blocking(move || tokens.sign_claims(&claims))
            .await
            .map_err(|e| Error::internal(&e))?
            .map_err(|e| Error::internal(&e))
    }
}
