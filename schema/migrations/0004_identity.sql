-- Identity: logins in progress, the identity → user index of the write side, login sessions
-- with rotating refresh tokens, and the users read model.

-- A login started with an identity provider: single use, short-lived. Looked up by the SHA-256
-- of its `state`; the PKCE verifier and nonce never leave the server. `binder_hash` ties it to
-- the browser that started it (the `hxb_login` cookie), so nobody can finish it in another.
CREATE TABLE login_attempts
(
    state_hash    bytea PRIMARY KEY,
    binder_hash   bytea       NOT NULL,
    provider      text        NOT NULL,
    nonce         text        NOT NULL,
    code_verifier text        NOT NULL,
    -- Set when a signed-in user links another identity to their account.
    link_user     text,
    return_to     text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

CREATE INDEX login_attempts_expiry ON login_attempts (expires_at);

-- Which user an external identity belongs to. Written by the login command before the user's
-- first event, so two simultaneous first logins of one identity end up as one user.
CREATE TABLE user_identities
(
    provider   text        NOT NULL,
    subject    text        NOT NULL,
    user_id    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);

-- A login session (the refresh-token family). Revoking it ends every token it issued.
CREATE TABLE sessions
(
    id             text PRIMARY KEY,
    user_id        text        NOT NULL,
    provider       text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text
);

CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Refresh tokens, stored as SHA-256 hashes; each refresh rotates to a new one, and presenting
-- a rotated one again revokes the session.
CREATE TABLE refresh_tokens
(
    token_hash  bytea PRIMARY KEY,
    session_id  text        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    rotated_at  timestamptz,
    -- The token this one was rotated to.
    replaced_by bytea
);

CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- Read model of users.
CREATE TABLE rm_users
(
    id             text PRIMARY KEY,
    email          text,
    email_verified boolean     NOT NULL,
    display_name   text,
    registered_at  timestamptz NOT NULL,
    last_login_at  timestamptz NOT NULL
);

CREATE TABLE rm_user_identities
(
    user_id   text        NOT NULL,
    provider  text        NOT NULL,
    subject   text        NOT NULL,
    linked_at timestamptz NOT NULL,
    PRIMARY KEY (provider, subject)
);

CREATE INDEX rm_user_identities_by_user ON rm_user_identities (user_id);

CREATE INDEX rm_organization_invitations_by_email ON rm_organization_invitations (email);
