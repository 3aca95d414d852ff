-- Projector checkpoints and idempotency records.

-- Per projection and aggregate: the last sequence applied, written in the same transaction as
-- the read-model rows. Makes apply idempotent and lets readers wait for their own writes.
CREATE TABLE projection_offsets
(
    projection     text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    sequence       bigint      NOT NULL,
    position       bigint      NOT NULL,
    applied_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (projection, aggregate_type, aggregate_id)
);

-- Responses to POSTs carrying an Idempotency-Key, per caller.
CREATE TABLE idempotency
(
    user_id       text        NOT NULL,
    key           text        NOT NULL,
    request_hash  text        NOT NULL,
    -- NULL while the first request is still running (a claim older than a minute is stale:
    -- its request died, and a retry may take it over).
    status        smallint,
    -- Response headers worth replaying (content type, location), as a JSON object.
    headers       jsonb,
    body          bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
