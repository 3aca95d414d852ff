-- The device authorization grant (RFC 8628), for kubectl on machines without a browser:
-- `hexabase login --device` shows a short user code; its user enters it at /oauth/device in a
-- browser signed in to the control plane and allows the request there; the machine, polling
-- /oauth/token with the device code, then gets the tokens. Both codes are single use; the
-- device code (the machine's secret) and the approval page's secret are stored as SHA-256.
CREATE TABLE oidc_device_grants
(
    device_hash   bytea PRIMARY KEY,
    user_code     text        NOT NULL UNIQUE,
    client_id     text        NOT NULL,
    -- The approval page shown to `approver` (the latest user who entered the code).
    approval_hash bytea UNIQUE,
    approver      text,
    -- Who allowed it; `denied` once someone refused it.
    user_id       text,
    denied        boolean     NOT NULL DEFAULT false,
    interval_secs integer     NOT NULL,
    polled_at     timestamptz,
    expires_at    timestamptz NOT NULL
);

CREATE INDEX oidc_device_grants_expiry ON oidc_device_grants (expires_at);
