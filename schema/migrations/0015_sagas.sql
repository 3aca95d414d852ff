-- The saga log: every saga the control plane runs (provisioning, deletion, reconciliation of
-- a workspace's cluster), where it stands, and what each finished step produced. Written before
-- and after each step, so a saga whose worker died is resumed from here by any worker. This is
-- the sagas' own state, not a read model: `replay` never touches it (a replay must not
-- provision anything again).

CREATE TABLE sagas
(
    id              text PRIMARY KEY,
    kind            text        NOT NULL,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    -- What started it, once: `event:<position>` for a domain event, `maintenance:<period>` for
    -- a scheduled pass. The same trigger delivered again starts nothing.
    trigger         text        NOT NULL,
    -- Sagas of one aggregate run one at a time, in this order (the triggering event's position).
    position        bigint      NOT NULL,
    params          jsonb       NOT NULL,
    -- running → done, or running → unwinding → failed.
    state           text        NOT NULL CHECK (state IN ('running', 'unwinding', 'done', 'failed')),
    -- The next step to run (running), or one past the next step to undo (unwinding).
    step            integer     NOT NULL DEFAULT 0,
    -- Attempts of the current step (or undo) so far.
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    -- Why it is unwinding or failed, and at which step.
    failure         text,
    failed_step     text,
    -- The unwinding was recorded as a domain event (the saga's own hook ran).
    unwind_noted    boolean     NOT NULL DEFAULT false,
    -- The request that caused the triggering event, carried into the events the saga records.
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (kind, aggregate_id, trigger)
);

-- What a worker looks for: unfinished sagas that are due, and one aggregate's sagas in order.
CREATE INDEX sagas_due ON sagas (next_attempt_at) WHERE state IN ('running', 'unwinding');
CREATE INDEX sagas_by_aggregate ON sagas (aggregate_type, aggregate_id, position, created_at);

CREATE TABLE saga_steps
(
    saga_id     text        NOT NULL REFERENCES sagas (id) ON DELETE CASCADE,
    step        integer     NOT NULL,
    name        text        NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0,
    started_at  timestamptz,
    finished_at timestamptz,
    -- What the step produced (ids, names, endpoints later steps and its undo need).
    output      jsonb,
    last_error  text,
    undone_at   timestamptz,
    PRIMARY KEY (saga_id, step)
);
