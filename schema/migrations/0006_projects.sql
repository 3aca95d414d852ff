-- Projects (namespaces of a workspace's vCluster) and where to find a project's workspace.

CREATE TABLE rm_projects
(
    id         text PRIMARY KEY,
    ws_id      text        NOT NULL,
    name       text        NOT NULL,
    parent_id  text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (ws_id, name)
);

CREATE INDEX rm_projects_by_ws ON rm_projects (ws_id, id);
CREATE INDEX rm_workspace_groups_by_ws ON rm_workspace_groups (ws_id, id);

-- The workspace each project id belongs to, written by the command side before the project's
-- first event, so commands addressed by project id (roles, role assignments) find their
-- workspace without waiting for a read model.
CREATE TABLE project_directory
(
    project_id text PRIMARY KEY,
    ws_id      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
