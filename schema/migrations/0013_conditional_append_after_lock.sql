-- An append conditional on other aggregates (a command decided from what it read of them) checks
-- that none of them has had an event since, and appends only then. Done as one INSERT, the check
-- read the table as of the statement's start, which comes before the statement's ordering lock
-- (`events_append_in_order`): an append of another aggregate type that held the lock could
-- commit during the wait, unseen by the check. This function takes the lock first; its INSERT is
-- a statement of its own, and (the function being VOLATILE, under READ COMMITTED) it reads the
-- table as of after the lock was granted, so it sees every event committed before its turn.
--
-- Arguments, one array element per event: aggregate type, id, sequence, event type, version,
-- payload, metadata, and the number of the command it belongs to; then one element per read:
-- the number of the command that read it, its aggregate type, id, and the sequence it was read
-- at. Returns the events appended (those of the commands whose reads are all current).

-- Taking the turn: the ordering lock, waited for at most 10 seconds (then the append fails).
CREATE FUNCTION events_take_turn() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    previous text := current_setting('lock_timeout');
BEGIN
    PERFORM set_config('lock_timeout', '10s', true);
    -- "HBEV": one lock per database, so each database's appends are ordered on their own.
    PERFORM pg_advisory_xact_lock(1212302678);
    PERFORM set_config('lock_timeout', previous, true);
END $$;

CREATE OR REPLACE FUNCTION events_append_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM events_take_turn();
    RETURN NULL;
END $$;

CREATE FUNCTION events_append_if_unchanged(
    text[], text[], bigint[], text[], text[], json[], json[], int[],
    int[], text[], text[], bigint[])
    RETURNS TABLE (appended_type text, appended_id text, appended_sequence bigint,
                   appended_position bigint)
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM events_take_turn();
    RETURN QUERY
        WITH moved AS (
            SELECT DISTINCT r.n
            FROM UNNEST($9, $10, $11, $12) AS r(n, t, i, s)
            CROSS JOIN LATERAL (SELECT x.sequence FROM events x
                                WHERE x.aggregate_type = r.t AND x.aggregate_id = r.i
                                ORDER BY x.sequence DESC LIMIT 1) AS last
            WHERE last.sequence > r.s),
        appended AS (
            INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                event_version, payload, metadata)
            SELECT u.t, u.i, u.s, u.e, u.v, u.p, u.m
            FROM UNNEST($1, $2, $3, $4, $5, $6, $7, $8) AS u(t, i, s, e, v, p, m, n)
            WHERE u.n NOT IN (SELECT n FROM moved)
            RETURNING aggregate_type, aggregate_id, sequence, position)
        SELECT * FROM appended;
END $$;
