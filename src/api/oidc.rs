//! The OpenID provider the vClusters trust: discovery, keys, and workspace tokens for members.

use chrono::{DateTime, Utc};
use hexabase_command::credential::CredentialCommand;
use hexabase_command::policy::WorkspaceAction;
use hexabase_command::store::load_state;
use hexabase_command::workspace::Workspace;
use hexabase_command::OrganizationId;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::{ApiError, ApiResult};
use super::security::SignedIn;
use super::workspace::scope;

#[derive(Tags)]
enum ApiTags {
    /// The OpenID provider behind `kubectl`'s access to the vClusters.
    Oidc,
}

#[derive(Debug, Object)]
pub struct WorkspaceToken {
    /// A JWT for the workspace's API server: `sub` = user id, `aud` = workspace id, `groups` =
    /// the caller's groups in it with their ancestors.
    pub token: String,
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
    /// The groups in the token.
    pub groups: Vec<String>,
}

pub struct OidcApi;

#[OpenApi(tag = "ApiTags::Oidc")]
impl OidcApi {
    /// OpenID Provider discovery document (issuer = this control plane's public URL).
    #[oai(
        path = "/.well-known/openid-configuration",
        method = "get",
        operation_id = "openidConfiguration"
    )]
    async fn discovery(&self, ctx: Ctx) -> Json<serde_json::Value> {
        Json(ctx.state.oidc.discovery())
    }

    /// The keys workspace tokens are signed with (retired keys stay until their tokens expire).
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, ctx: Ctx) -> ApiResult<Json<serde_json::Value>> {
        let jwks = ctx.state.oidc.keys.jwks().await;
        serde_json::to_value(jwks)
            .map(Json)
            .map_err(|e| ApiError::internal(&e))
    }

    /// A fresh token for the workspace's API server, for members of the workspace (in at least
    /// one of its groups). Every token handed out is recorded (`WorkspaceTokenIssued`, one
    /// small aggregate per token: issuing never contends with the workspace's own changes).
    #[oai(
        path = "/api/v1/workspaces/:ws_id/token",
        method = "post",
        operation_id = "issueWorkspaceToken"
    )]
    async fn token(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: poem_openapi::param::Header<Option<String>>,
    ) -> ApiResult<Json<WorkspaceToken>> {
        let user = auth.principal().user.clone();
        let (ws, row) = scope(&ctx, &ws_id, &user, WorkspaceAction::Read).await?;
        let org = OrganizationId::parse(&row.org_id)?;
        // The workspace's own state decides the groups (not a read model that may lag).
        let state: Workspace = load_state(&ctx.state.pool, ws.as_str())
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let groups = state.groups_of(&user);
        if groups.is_empty() {
            return Err(ApiError::forbidden(
                "workspace tokens go to members of the workspace's groups only",
            ));
        }
        let claims = ctx.state.oidc.claims(&user, &ws, groups.clone());
        let command = CredentialCommand::IssueWorkspaceToken {
            org_id: org,
            workspace_id: ws.clone(),
            user,
            expires_at: claims.exp,
            groups: groups.clone(),
        };
        let metadata = ctx.metadata(auth.principal()).into_map();
        ctx.state
            .credentials
            .execute_with_metadata(&claims.jti, command, metadata)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let token = ctx
            .state
            .oidc
            .sign(&claims)
            .map_err(|e| ApiError::internal(&e))?;
        let expires_at = DateTime::<Utc>::from_timestamp(i64::try_from(claims.exp).unwrap_or(0), 0)
            .unwrap_or_default();
        Ok(Json(WorkspaceToken {
            token,
            token_type: "Bearer".into(),
            expires_at,
            groups,
        }))
    }
}
