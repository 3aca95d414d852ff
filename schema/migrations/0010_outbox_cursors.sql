-- Relays remember how far they have published with one cursor per outbox partition, instead of
-- marking each outbox row sent. Marking rewrote every row (and its index entries) once more,
-- and the scan for unsent rows had to step over the old versions until vacuum removed them.
-- The outbox is now written once and only read afterwards; it keeps every event's hash for
-- `verify`.
--
-- A cursor may only move past positions that can no longer appear, so events must become
-- visible in position order. Appends therefore take one transaction-scoped lock before their
-- first row gets its position (a BEFORE STATEMENT trigger fires before any row is formed) and
-- hold it until they commit: positions commit in order across every writer. Each appender
-- writes its commands in groups, one group at a time, so the lock is taken once per group. A
-- writer waits at most 10 seconds for it (then its command fails), so a transaction left open
-- after appending cannot hang every command.

CREATE FUNCTION events_append_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    previous text := current_setting('lock_timeout');
BEGIN
    PERFORM set_config('lock_timeout', '10s', true);
    -- "HBEV": one lock per database, so each database's appends are ordered on their own.
    PERFORM pg_advisory_xact_lock(1212302678);
    PERFORM set_config('lock_timeout', previous, true);
    RETURN NULL;
END $$;

CREATE TRIGGER events_append_in_order
    BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_in_order();

CREATE TABLE outbox_cursors
(
    partition smallint PRIMARY KEY,
    -- Every outbox row of the partition at or below this position has been published.
    position  bigint NOT NULL
);

-- One cursor per partition of `outbox_enqueue()` (0 to 7); a partition without a cursor would
-- never be published. Each starts just below its oldest unsent row, or else at the newest row
-- of the whole outbox: anything the earlier layout had not marked is published again (JetStream
-- drops what it had received), and no relay pass scans rows that are all published.
INSERT INTO outbox_cursors (partition, position)
SELECT p,
       coalesce((SELECT min(position) - 1 FROM outbox WHERE partition = p AND sent_at IS NULL),
                (SELECT max(position) FROM outbox),
                0)
FROM generate_series(0, 7) AS p;

DROP INDEX outbox_unsent;
ALTER TABLE outbox DROP COLUMN sent_at;

-- What the relays have still to publish (the backlog).
CREATE VIEW outbox_pending AS
SELECT o.*
FROM outbox o
         JOIN outbox_cursors c ON c.partition = o.partition
WHERE o.position > c.position
  AND o.position > (SELECT min(position) FROM outbox_cursors);
