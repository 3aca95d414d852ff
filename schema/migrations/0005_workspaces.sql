-- Read models of workspaces and their groups.

CREATE TABLE rm_workspaces
(
    id            text PRIMARY KEY,
    org_id        text        NOT NULL,
    name          text        NOT NULL,
    plan          text        NOT NULL,
    status        text        NOT NULL,
    status_reason text,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE INDEX rm_workspaces_by_org ON rm_workspaces (org_id, id);

CREATE TABLE rm_workspace_groups
(
    id         text PRIMARY KEY,
    ws_id      text        NOT NULL,
    name       text        NOT NULL,
    parent_id  text,
    preset     boolean     NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (ws_id, name)
);

-- Direct members of each group (membership of ancestors follows from the hierarchy).
CREATE TABLE rm_workspace_group_members
(
    group_id text        NOT NULL,
    ws_id    text        NOT NULL,
    user_id  text        NOT NULL,
    since    timestamptz NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

CREATE INDEX rm_workspace_group_members_by_user ON rm_workspace_group_members (user_id, ws_id);
CREATE INDEX rm_workspace_group_members_by_ws ON rm_workspace_group_members (ws_id, user_id);
