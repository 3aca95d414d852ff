-- The OpenID provider's authorization code flow (for `hexabase login` and `kubectl oidc-login`).

-- A session whose `client_id` is a workspace id is a grant to that workspace's kubectl clients:
-- its refresh tokens mint tokens for that workspace's API server only, never control-plane
-- access tokens. Sign-ins to the control plane have none.
ALTER TABLE sessions ADD COLUMN client_id text;

-- An authorization request waiting for the signed-in user's approval (looked up by the SHA-256
-- of the approval secret shown only on the approval page), then, once approved, its code:
-- single use, short-lived, looked up by its SHA-256, redeemable only by the client with the
-- redirect URI and the PKCE verifier it was issued for.
CREATE TABLE oidc_authorizations
(
    approval_hash  bytea PRIMARY KEY,
    code_hash      bytea UNIQUE,
    client_id      text        NOT NULL,
    user_id        text        NOT NULL,
    redirect_uri   text        NOT NULL,
    code_challenge text        NOT NULL,
    nonce          text,
    state          text,
    expires_at     timestamptz NOT NULL
);

CREATE INDEX oidc_authorizations_expiry ON oidc_authorizations (expires_at);
