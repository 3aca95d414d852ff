-- Read models of the Organizations slice and the auditors' event history.

CREATE TABLE rm_organizations
(
    id         text PRIMARY KEY,
    name       text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE rm_organization_members
(
    org_id  text        NOT NULL,
    user_id text        NOT NULL,
    role    text        NOT NULL,
    since   timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

CREATE INDEX rm_organization_members_by_user ON rm_organization_members (user_id, org_id);

CREATE TABLE rm_organization_invitations
(
    org_id     text        NOT NULL,
    email      text        NOT NULL,
    role       text        NOT NULL,
    invited_by text        NOT NULL,
    invited_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, email)
);

-- Every event that concerns an organization, for auditors.
CREATE TABLE rm_audit_events
(
    position       bigint PRIMARY KEY,
    org_id         text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    sequence       bigint      NOT NULL,
    event_type     text        NOT NULL,
    event_version  text        NOT NULL,
    payload        jsonb       NOT NULL,
    actor          text,
    request_id     text,
    correlation_id text,
    causation_id   text,
    occurred_at    timestamptz NOT NULL
);

CREATE INDEX rm_audit_events_by_org ON rm_audit_events (org_id, position);
