-- The outbox rows of an append are written by one statement-level trigger, from the rows the
-- append inserted, instead of one trigger call (an INSERT and a notification) per event: an
-- append of many events costs one INSERT into the outbox and one notification.

CREATE FUNCTION outbox_enqueue_appended() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    written bigint;
BEGIN
    INSERT INTO outbox (position, aggregate_type, aggregate_id, sequence, partition, hash)
    SELECT position, aggregate_type, aggregate_id, sequence,
           ((hashtext(aggregate_id) & 2147483647) % 8)::smallint, metadata ->> 'hash'
    FROM appended;
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written > 0 THEN
        PERFORM pg_notify('hexabase_outbox', '');
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER events_outbox ON events;
DROP FUNCTION outbox_enqueue();

CREATE TRIGGER events_outbox
    AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_enqueue_appended();
