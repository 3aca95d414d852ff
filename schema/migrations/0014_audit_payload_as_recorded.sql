-- The audit history keeps each event's payload as the event store recorded it (`json`, the text
-- itself) instead of converting it to `jsonb` on every insert: the history is only ever read
-- back whole, never searched inside, and auditors see the payload byte for byte as recorded.
ALTER TABLE rm_audit_events ALTER COLUMN payload TYPE json USING payload::json;
