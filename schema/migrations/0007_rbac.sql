-- Read models of custom roles, role assignments (group → role in a project) and cluster role
-- assignments (group → preset ClusterRole across the workspace).

CREATE TABLE rm_roles
(
    id         text PRIMARY KEY,
    project_id text        NOT NULL,
    ws_id      text        NOT NULL,
    name       text        NOT NULL,
    rules      jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (project_id, name)
);

CREATE INDEX rm_roles_by_project ON rm_roles (project_id, id);

CREATE TABLE rm_role_assignments
(
    id         text PRIMARY KEY,
    project_id text        NOT NULL,
    ws_id      text        NOT NULL,
    group_id   text        NOT NULL,
    -- `admin`, `edit`, `view`, or a role id.
    role       text        NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX rm_role_assignments_by_project ON rm_role_assignments (project_id, id);

CREATE TABLE rm_cluster_role_assignments
(
    id           text PRIMARY KEY,
    ws_id        text        NOT NULL,
    group_id     text        NOT NULL,
    cluster_role text        NOT NULL,
    created_at   timestamptz NOT NULL
);

CREATE INDEX rm_cluster_role_assignments_by_ws ON rm_cluster_role_assignments (ws_id, id);

-- The organization each workspace belongs to, as the audit projection learned it from the
-- workspace's first event (later events of the workspace do not repeat it).
CREATE TABLE rm_audit_scopes
(
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL,
    org_id         text NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Where each workspace's API server is (recorded by provisioning), for kubeconfigs.
ALTER TABLE rm_workspaces ADD COLUMN api_server text;
ALTER TABLE rm_workspaces ADD COLUMN api_server_ca text;
