-- Read model of dedicated nodes: each request for nodes (pending, assigned with the nodes it
-- got, or failed with the reason) and each node a workspace has.

CREATE TABLE rm_node_requests
(
    id           text PRIMARY KEY,
    ws_id        text        NOT NULL,
    count        integer     NOT NULL,
    -- `Pending`, `Assigned` or `Failed`.
    status       text        NOT NULL,
    reason       text,
    requested_by text        NOT NULL,
    requested_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE INDEX rm_node_requests_by_workspace ON rm_node_requests (ws_id, requested_at, id);

CREATE TABLE rm_dedicated_nodes
(
    node        text PRIMARY KEY,
    ws_id       text        NOT NULL,
    request_id  text        NOT NULL,
    assigned_at timestamptz NOT NULL
);

CREATE INDEX rm_dedicated_nodes_by_workspace ON rm_dedicated_nodes (ws_id, node);
