-- The audit projection applies organizations' and workspace tokens' events by position: each
-- names its organization itself and writes one row keyed by its position, so they need no
-- checkpoint per aggregate (a token is an aggregate of one event, and left a checkpoint row each
-- for good). Their checkpoints are no longer read.
DELETE FROM projection_offsets
WHERE projection = 'audit'
  AND aggregate_type IN ('Organization', 'Credential');
