-- Event store (the postgres-es tables) with the outbox beside it.

CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    -- Global position, assigned at insert: JetStream's Nats-Msg-Id and the read-your-writes token.
    position       bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    recorded_at    timestamptz                  NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- History is append-only. Tampering needs the table's owner (or a superuser) to disable this
-- trigger first, and `hexabase verify` then notices through the hash chain and the outbox's copy
-- of each hash — unless the tamperer also rewrites every later hash of the aggregate and the
-- outbox, which the chain (unkeyed) cannot prevent. Run the services as a role that does not
-- own these tables for that.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only (% refused)', TG_OP;
END $$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- Transactional outbox: one row per event, written by the trigger below in the event's own
-- transaction. Rows are kept after publishing (sent_at set): they double as a second record of
-- every event's hash for `verify`.
CREATE TABLE outbox
(
    position       bigint PRIMARY KEY,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    sequence       bigint      NOT NULL,
    -- Relays lock whole partitions while they publish; one aggregate always falls in one
    -- partition, so its events are published by one relay at a time, in order.
    partition      smallint    NOT NULL,
    hash           text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz
);

CREATE INDEX outbox_unsent ON outbox (position) WHERE sent_at IS NULL;

CREATE FUNCTION outbox_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (position, aggregate_type, aggregate_id, sequence, partition, hash)
    VALUES (NEW.position, NEW.aggregate_type, NEW.aggregate_id, NEW.sequence,
            ((hashtext(NEW.aggregate_id) & 2147483647) % 8)::smallint, NEW.metadata ->> 'hash');
    PERFORM pg_notify('hexabase_outbox', '');
    RETURN NEW;
END $$;

CREATE TRIGGER events_outbox
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION outbox_enqueue();
