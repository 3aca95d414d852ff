"use client";
// A workspace: its status and provisioning steps, settings, kubeconfig, projects, groups and
// cluster role assignments.
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useState } from "react";
import { api, call, position, type Result, type Schemas } from "@/api/client";
import { Console } from "@/components/console";
import { SETTLED, Status } from "@/components/status";
import { Tabs } from "@/components/tabs";
import { ActionButton, Empty, Form, Show, Tree, useEvery, useLoad, When } from "@/components/ui";

type Ws = Schemas["WorkspaceView"];
type Org = Schemas["OrganizationDetail"];

/** The workspace's 20 most recent tasks, newest first. */
function newestTasks(ws: string): Promise<Result<Schemas["Task"][]>> {
  return call(async () => {
    const outcome = await api.GET("/api/v1/workspaces/{ws_id}/tasks", { params: { path: { ws_id: ws }, query: { limit: 20, order: "newest" } } });
    return { ...outcome, data: outcome.data?.items };
  });
}

/** The steps of the workspace's latest lifecycle task (provision, suspend, resume, delete), and
 * its recent tasks: what the control plane did to its cluster. */
function Steps({ ws }: { ws: Ws }) {
  const [tasks, reload] = useLoad(() => newestTasks(ws.id), [ws.id]);
  const recent = tasks.state === "ready" ? tasks.data : [];
  const lifecycle = recent.find((t) => t.kind !== "workspace.reconcile") ?? recent[0];
  const [task, reloadTask] = useLoad(
    async (): Promise<Result<Schemas["TaskView"] | undefined>> =>
      lifecycle ? call(() => api.GET("/api/v1/tasks/{task_id}", { params: { path: { task_id: lifecycle.id } } })) : { ok: true, data: undefined },
    [lifecycle?.id],
  );
  // The workspace may settle a moment before its task is recorded as finished.
  const finished = !lifecycle || lifecycle.state === "done" || lifecycle.state === "failed";
  useEvery(2000, !SETTLED.includes(ws.status) || !finished, () => {
    void reload();
    void reloadTask();
  });
  if (!lifecycle) return null;
  const word = (kind: string) => kind.replace(/^workspace\./, "");
  return (
    <section aria-labelledby="steps">
      <h2 id="steps">{word(lifecycle.kind)}: {lifecycle.state}</h2>
      <Show loaded={task} what="task">
        {(t) => t && (
          <>
            <ol className="steps">
              {t.steps.map((s) => (
                <li key={s.name} className={s.undone_at ? "undone" : s.finished_at ? "done" : s.started_at ? "running" : "pending"}>
                  <strong>{s.name}</strong>{" "}
                  {s.undone_at ? "undone" : s.finished_at ? "done" : s.started_at ? `running (attempt ${s.attempts})` : "waiting"}
                  {s.last_error && <div className="error">Last error: {s.last_error}</div>}
                </li>
              ))}
            </ol>
            {t.failure && <p className="error" role="alert">Failed at {t.failed_step}: {t.failure}</p>}
          </>
        )}
      </Show>
      <details>
        <summary>Recent tasks</summary>
        <table>
          <thead><tr><th scope="col">Task</th><th scope="col">State</th><th scope="col">Trigger</th><th scope="col">Updated</th></tr></thead>
          <tbody>
            {recent.map((t) => (
              <tr key={t.id}><td>{word(t.kind)}</td><td>{t.state}</td><td>{t.trigger}</td><td><When at={t.updated_at} /></td></tr>
            ))}
          </tbody>
        </table>
      </details>
    </section>
  );
}

function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(url);
}

function Access({ org, ws }: { org: Org; ws: Ws }) {
  const origin = typeof window === "undefined" ? "" : window.location.origin;
  const lines = [
    `hexabase auth login --server ${origin}`,
    `hexabase workspace kubeconfig ${org.name} ${ws.name} > kubeconfig`,
    "export KUBECONFIG=$PWD/kubeconfig",
    "kubectl get namespaces",
  ].join("\n");
  return (
    <section aria-labelledby="access">
      <h2 id="access">kubectl</h2>
      {ws.status !== "Ready" ? (
        <Empty>The kubeconfig is ready once the workspace is.</Empty>
      ) : (
        <>
          <ActionButton
            label="Download kubeconfig"
            run={async () => {
              const result = await call(() => api.GET("/api/v1/organizations/{org_id}/workspaces/{ws_id}/kubeconfig", { params: { path: { org_id: org.id, ws_id: ws.id } } }));
              if (result.ok) download(`kubeconfig-${ws.name}.json`, JSON.stringify(result.data, null, 2));
              return result;
            }}
          />
          <p>kubectl signs in through the hexabase CLI with short-lived tokens. In a terminal:</p>
          <pre aria-label="Commands" tabIndex={0}><code>{lines}</code></pre>
          <p>Where only kubectl runs: <code>hexabase login --server {origin} --workspace {ws.id}</code></p>
        </>
      )}
    </section>
  );
}

function Overview({ org, ws, reload, plans }: { org: Org; ws: Ws; reload: () => void; plans: Schemas["Plan"][] }) {
  const admin = org.role === "admin";
  return (
    <>
      <dl className="facts">
        <dt>Status</dt><dd><Status ws={ws} /></dd>
        {ws.status_reason && (<><dt>Reason</dt><dd>{ws.status_reason}</dd></>)}
        {ws.progress?.last_error && (<><dt>Last error</dt><dd className="error">{ws.progress.last_error}</dd></>)}
        {ws.progress && !SETTLED.includes(ws.status) && (<><dt>Next attempt</dt><dd><When at={ws.progress.next_attempt_at} /></dd></>)}
        <dt>Plan</dt><dd>{ws.plan}</dd>
        <dt>Id</dt><dd><code>{ws.id}</code></dd>
        <dt>Created</dt><dd><When at={ws.created_at} /></dd>
      </dl>
      <Steps ws={ws} />
      <Access org={org} ws={ws} />
      {admin && ws.status !== "Deleting" && ws.status !== "Deleted" && (
        <div className="columns">
          <Form
            key={`name-${ws.name}`}
            title="Rename"
            action="Rename workspace"
            fields={[{ name: "name", label: "New name", required: true, defaultValue: ws.name }]}
            submit={({ name }) => call(() => api.PATCH("/api/v1/organizations/{org_id}/workspaces/{ws_id}", { params: { path: { org_id: org.id, ws_id: ws.id } }, body: { name } }))}
            done={reload}
          />
          {/* Drawn once the plans are known, again when the plan changes: a select takes its
              default only when it first appears. */}
          <Form
            key={`plan-${ws.plan}-${plans.length}`}
            title="Change the plan"
            action="Change plan"
            fields={[{ name: "plan", label: "Plan", type: "select", defaultValue: ws.plan, options: plans.map((p) => ({ value: p.id, label: p.name })) }]}
            submit={({ plan }) => call(() => api.PATCH("/api/v1/organizations/{org_id}/workspaces/{ws_id}", { params: { path: { org_id: org.id, ws_id: ws.id } }, body: { plan } }))}
            done={reload}
          />
          <section aria-labelledby="lifecycle">
            <h3 id="lifecycle">Lifecycle</h3>
            <p>Suspending stops the API server and keeps the data.</p>
            {ws.status === "Suspended" && (
              <ActionButton label="Resume workspace" run={() => call(() => api.POST("/api/v1/organizations/{org_id}/workspaces/{ws_id}/resume", { params: { path: { org_id: org.id, ws_id: ws.id } } }))} done={reload} />
            )}
            {ws.status === "Ready" && (
              <ActionButton label="Suspend workspace" run={() => call(() => api.POST("/api/v1/organizations/{org_id}/workspaces/{ws_id}/suspend", { params: { path: { org_id: org.id, ws_id: ws.id } }, body: {} }))} done={reload} />
            )}{" "}
            <ActionButton
              label="Delete workspace"
              danger
              confirm={`Delete ${ws.name} and everything in it?`}
              run={() => call(() => api.DELETE("/api/v1/organizations/{org_id}/workspaces/{ws_id}", { params: { path: { org_id: org.id, ws_id: ws.id } } }))}
              done={reload}
            />
          </section>
        </div>
      )}
    </>
  );
}

function Projects({ org, ws }: { org: Org; ws: Ws }) {
  const [list, reload] = useLoad(
    () => call(() => api.GET("/api/v1/workspaces/{ws_id}/projects", { params: { path: { ws_id: ws.id }, query: { limit: 100, position: position() } } })),
    [ws.id],
  );
  const items = list.state === "ready" ? list.data.items : [];
  return (
    <>
      <section aria-labelledby="projects">
        <h2 id="projects">Projects</h2>
        <p className="muted">Each project is a namespace of the workspace; a sub-project inherits its parent&apos;s access.</p>
        <Show loaded={list} what="projects">
          {(data) => data.items.length === 0 ? <Empty>No projects yet.</Empty> : (
            <Tree
              label="Projects"
              items={data.items}
              render={(p) => (
                <>
                  <Link href={`/project/?org=${org.id}&ws=${ws.id}&project=${p.id}`}>{p.name}</Link>{" "}
                  <ActionButton label={`Delete project ${p.name}`} danger confirm={`Delete project ${p.name}?`} run={() => call(() => api.DELETE("/api/v1/workspaces/{ws_id}/projects/{project_id}", { params: { path: { ws_id: ws.id, project_id: p.id } } }))} done={() => void reload()} />
                </>
              )}
            />
          )}
        </Show>
      </section>
      <Form
        title="Create a project"
        action="Create project"
        fields={[
          { name: "name", label: "Project name", required: true, placeholder: "web", hint: "A DNS label: lower-case letters, digits and -." },
          { name: "parent_id", label: "Parent project", type: "select", options: [{ value: "", label: "none (top level)" }, ...items.map((p) => ({ value: p.id, label: p.name }))] },
        ]}
        submit={({ name, parent_id }) => call(() => api.POST("/api/v1/workspaces/{ws_id}/projects", { params: { path: { ws_id: ws.id } }, body: { name: name ?? "", parent_id: parent_id || undefined } }))}
        done={() => void reload()}
      />
    </>
  );
}

function GroupMembers({ ws, group, people }: { ws: Ws; group: Schemas["Group"]; people: Schemas["OrganizationMember"][] }) {
  const [members, reload] = useLoad(
    () => call(() => api.GET("/api/v1/workspaces/{ws_id}/groups/{group_id}/members", { params: { path: { ws_id: ws.id, group_id: group.id }, query: { limit: 100, position: position() } } })),
    [ws.id, group.id],
  );
  const label = (id: string) => {
    const p = people.find((m) => m.user_id === id);
    return p?.email ?? p?.display_name ?? id;
  };
  return (
    <div className="members">
      <Show loaded={members} what="members">
        {(data) => data.items.length === 0 ? <span className="muted">no members</span> : (
          <ul>
            {data.items.map((m) => (
              <li key={m.user_id}>
                {label(m.user_id)}{" "}
                <ActionButton label={`Remove ${label(m.user_id)} from ${group.name}`} run={() => call(() => api.DELETE("/api/v1/workspaces/{ws_id}/groups/{group_id}/members/{user_id}", { params: { path: { ws_id: ws.id, group_id: group.id, user_id: m.user_id } } }))} done={() => void reload()} />
              </li>
            ))}
          </ul>
        )}
      </Show>
      <Form
        compact
        title={`Add to ${group.name}`}
        action="Add member"
        fields={[{ name: "user_id", label: "Member", type: "select", options: people.map((p) => ({ value: p.user_id, label: p.email ?? p.user_id })) }]}
        submit={({ user_id }) => call(() => api.POST("/api/v1/workspaces/{ws_id}/groups/{group_id}/members", { params: { path: { ws_id: ws.id, group_id: group.id } }, body: { user_id: user_id ?? "" } }))}
        done={() => void reload()}
      />
    </div>
  );
}

function useGroups(ws: Ws) {
  return useLoad(
    () => call(() => api.GET("/api/v1/workspaces/{ws_id}/groups", { params: { path: { ws_id: ws.id }, query: { limit: 100, position: position() } } })),
    [ws.id],
  );
}

function Groups({ org, ws }: { org: Org; ws: Ws }) {
  const [list, reload] = useGroups(ws);
  const [people] = useLoad(
    () => call(() => api.GET("/api/v1/organizations/{org_id}/users", { params: { path: { org_id: org.id }, query: { limit: 100, position: position() } } })),
    [org.id],
  );
  const [open, setOpen] = useState<string | undefined>();
  const items = list.state === "ready" ? list.data.items : [];
  return (
    <>
      <section aria-labelledby="groups">
        <h2 id="groups">Groups</h2>
        <p className="muted">Members of a group count as members of its ancestors. In the cluster a group is <code>hxb:&lt;name&gt;</code>.</p>
        <Show loaded={list} what="groups">
          {(data) => (
            <Tree
              label="Groups"
              items={data.items}
              render={(g) => (
                <>
                  <button type="button" className="link" aria-expanded={open === g.id} onClick={() => setOpen(open === g.id ? undefined : g.id)}>
                    {g.name}
                  </button>
                  {g.preset && <small className="muted"> preset</small>}
                  {!g.preset && (
                    <> <ActionButton label={`Delete group ${g.name}`} danger confirm={`Delete group ${g.name}?`} run={() => call(() => api.DELETE("/api/v1/workspaces/{ws_id}/groups/{group_id}", { params: { path: { ws_id: ws.id, group_id: g.id } } }))} done={() => void reload()} /></>
                  )}
                  {open === g.id && <GroupMembers ws={ws} group={g} people={people.state === "ready" ? people.data.items : []} />}
                </>
              )}
            />
          )}
        </Show>
      </section>
      <Form
        title="Create a group"
        action="Create group"
        fields={[
          { name: "name", label: "Group name", required: true, placeholder: "developers" },
          { name: "parent_id", label: "Parent group", type: "select", options: [{ value: "", label: "WorkspaceMembers (default)" }, ...items.filter((g) => g.name !== "WorkspaceMembers").map((g) => ({ value: g.id, label: g.name }))] },
        ]}
        submit={({ name, parent_id }) => call(() => api.POST("/api/v1/workspaces/{ws_id}/groups", { params: { path: { ws_id: ws.id } }, body: { name: name ?? "", parent_id: parent_id || undefined } }))}
        done={() => void reload()}
      />
    </>
  );
}

function ClusterRoles({ ws }: { ws: Ws }) {
  const [groups] = useGroups(ws);
  const [list, reload] = useLoad(
    () => call(() => api.GET("/api/v1/workspaces/{ws_id}/clusterroleassignments", { params: { path: { ws_id: ws.id }, query: { limit: 100, position: position() } } })),
    [ws.id],
  );
  const all = groups.state === "ready" ? groups.data.items : [];
  const name = (id: string) => all.find((g) => g.id === id)?.name ?? id;
  return (
    <>
      <section aria-labelledby="cra">
        <h2 id="cra">Cluster role assignments</h2>
        <p className="muted">A group&apos;s role across every namespace of the workspace.</p>
        <Show loaded={list} what="assignments">
          {(data) => data.items.length === 0 ? <Empty>No cluster role assignments.</Empty> : (
            <table>
              <thead><tr><th scope="col">Group</th><th scope="col">Cluster role</th><th scope="col">Since</th><th scope="col">Remove</th></tr></thead>
              <tbody>
                {data.items.map((a) => (
                  <tr key={a.id}>
                    <td>{name(a.group_id)}</td><td>{a.role}</td><td><When at={a.created_at} /></td>
                    <td><ActionButton label={`Remove ${a.role} from ${name(a.group_id)}`} run={() => call(() => api.DELETE("/api/v1/workspaces/{ws_id}/clusterroleassignments/{assignment_id}", { params: { path: { ws_id: ws.id, assignment_id: a.id } } }))} done={() => void reload()} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Show>
      </section>
      <Form
        title="Assign a cluster role"
        action="Assign cluster role"
        fields={[
          { name: "group_id", label: "Group", type: "select", options: all.map((g) => ({ value: g.id, label: g.name })) },
          { name: "cluster_role", label: "Cluster role", type: "select", options: ["view", "edit", "admin"].map((r) => ({ value: r, label: r })) },
        ]}
        submit={({ group_id, cluster_role }) => call(() => api.POST("/api/v1/workspaces/{ws_id}/clusterroleassignments", { params: { path: { ws_id: ws.id } }, body: { group_id: group_id ?? "", cluster_role: cluster_role ?? "" } }))}
        done={() => void reload()}
      />
    </>
  );
}

function WorkspacePage() {
  const params = useSearchParams();
  const orgId = params.get("org") ?? "";
  const wsId = params.get("ws") ?? "";
  const tab = params.get("tab") ?? "overview";
  const [org] = useLoad(() => call(() => api.GET("/api/v1/organizations/{org_id}", { params: { path: { org_id: orgId }, query: { position: position() } } })), [orgId]);
  const [ws, reload] = useLoad(
    () => call(() => api.GET("/api/v1/organizations/{org_id}/workspaces/{ws_id}", { params: { path: { org_id: orgId, ws_id: wsId }, query: { position: position() } } })),
    [orgId, wsId],
  );
  const [plans] = useLoad(() => call(() => api.GET("/api/v1/plans")), []);
  useEvery(2000, ws.state === "ready" && !SETTLED.includes(ws.data.status), () => void reload());
  const orgName = org.state === "ready" ? org.data.name : "Organization";
  const wsName = ws.state === "ready" ? ws.data.name : "Workspace";
  return (
    <Console title={wsName} crumbs={[{ label: orgName, href: `/org/?org=${orgId}` }, { label: wsName }]}>
      {() => (
        <Show loaded={org} what="organization">
          {(o) => (
            <Show loaded={ws} what="workspace">
              {(w) => (
                <>
                  <Tabs
                    base={`/workspace/?org=${o.id}&ws=${w.id}`}
                    current={tab}
                    tabs={[["overview", "Overview"], ["projects", "Projects"], ["groups", "Groups"], ["access", "Cluster roles"]]}
                  />
                  {tab === "overview" && <Overview org={o} ws={w} reload={() => void reload()} plans={plans.state === "ready" ? plans.data.items : []} />}
                  {tab === "projects" && <Projects org={o} ws={w} />}
                  {tab === "groups" && <Groups org={o} ws={w} />}
                  {tab === "access" && <ClusterRoles ws={w} />}
                </>
              )}
            </Show>
          )}
        </Show>
      )}
    </Console>
  );
}

export default function Page() {
  return (
    <Suspense>
      <WorkspacePage />
    </Suspense>
  );
}
