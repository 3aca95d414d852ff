"use client";
// A project (a namespace of its workspace): its custom roles and who has which role in it.
import { useSearchParams } from "next/navigation";
import { Suspense } from "react";
import { api, call, position, type Result, type Schemas } from "@/api/client";
import { Console } from "@/components/console";
import { ActionButton, Empty, Form, Show, useLoad, When } from "@/components/ui";

type Rule = Schemas["PolicyRuleSpec"];

function list(text: string | undefined): string[] {
  return (text ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** A rule from the form's comma-separated fields; `core` (or nothing) is the core API group. */
function rule(values: Record<string, string>): Rule {
  const groups = list(values.api_groups).map((g) => (g === "core" ? "" : g));
  return { verbs: list(values.verbs), resources: list(values.resources), api_groups: groups.length ? groups : [""] };
}

function rulesOf(rules: unknown): Rule[] {
  return Array.isArray(rules) ? (rules as Rule[]) : [];
}

function describe(r: Rule): string {
  return `${r.verbs.join(",")} on ${r.resources.join(",")} in ${r.api_groups.map((g) => g || "core").join(",")}`;
}

/** A role's rules; a custom role's can be removed one by one (`change` writes the new list). */
function Rules({ role, change, done }: {
  role: Schemas["ProjectRole"];
  change: (rules: Rule[]) => Promise<Result<unknown>>;
  done: () => void;
}) {
  if (role.preset) return <span className="muted">Kubernetes&apos; own ClusterRole</span>;
  const rules = rulesOf(role.rules);
  return (
    <ul className="rules">
      {rules.map((r, i) => (
        <li key={i}>
          <code>{describe(r)}</code>{" "}
          {rules.length > 1 && (
            <ActionButton label={`Remove rule ${describe(r)} from ${role.name}`} run={() => change(rules.filter((_, j) => j !== i))} done={done} />
          )}
        </li>
      ))}
    </ul>
  );
}

const RULE_FIELDS = [
  { name: "verbs", label: "Verbs", required: true, placeholder: "get, list, watch" },
  { name: "resources", label: "Resources", required: true, placeholder: "pods, pods/log" },
  { name: "api_groups", label: "API groups", placeholder: "core, apps", hint: "Comma-separated; core (or empty) is the core group." },
];

function ProjectView({ ws, project }: { ws: string; project: Schemas["Project"] }) {
  const id = project.id;
  const [roles, reloadRoles] = useLoad(
    () => call(() => api.GET("/api/v1/projects/{project_id}/roles", { params: { path: { project_id: id }, query: { limit: 100, position: position() } } })),
    [id],
  );
  const [assignments, reloadAssignments] = useLoad(
    () => call(() => api.GET("/api/v1/projects/{project_id}/roleassignments", { params: { path: { project_id: id }, query: { limit: 100, position: position() } } })),
    [id],
  );
  const [groups] = useLoad(
    () => call(() => api.GET("/api/v1/workspaces/{ws_id}/groups", { params: { path: { ws_id: ws }, query: { limit: 100, position: position() } } })),
    [ws],
  );
  const changeRules = (role: string, rules: Rule[]) =>
    call(() => api.PATCH("/api/v1/projects/{project_id}/roles/{role_id}", { params: { path: { project_id: id, role_id: role } }, body: { rules } }));
  const allRoles = roles.state === "ready" ? [...roles.data.presets, ...roles.data.items] : [];
  const allGroups = groups.state === "ready" ? groups.data.items : [];
  const groupName = (g: string) => allGroups.find((x) => x.id === g)?.name ?? g;
  const roleName = (r: string) => allRoles.find((x) => x.id === r)?.name ?? r;
  return (
    <>
      <p>Namespace <code>{project.name}</code>, created <When at={project.created_at} />.</p>
      <section aria-labelledby="assignments">
        <h2 id="assignments">Role assignments</h2>
        <Show loaded={assignments} what="role assignments">
          {(data) => data.items.length === 0 ? <Empty>No group has a role in this project yet.</Empty> : (
            <table>
              <thead><tr><th scope="col">Group</th><th scope="col">Role</th><th scope="col">Since</th><th scope="col">Remove</th></tr></thead>
              <tbody>
                {data.items.map((a) => (
                  <tr key={a.id}>
                    <td>{groupName(a.group_id)}</td><td>{roleName(a.role)}</td><td><When at={a.created_at} /></td>
                    <td><ActionButton label={`Remove ${roleName(a.role)} from ${groupName(a.group_id)}`} run={() => call(() => api.DELETE("/api/v1/projects/{project_id}/roleassignments/{assignment_id}", { params: { path: { project_id: id, assignment_id: a.id } } }))} done={() => void reloadAssignments()} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Show>
        <Form
          title="Assign a role"
          action="Assign role"
          fields={[
            { name: "group_id", label: "Group", type: "select", options: allGroups.map((g) => ({ value: g.id, label: g.name })) },
            { name: "role", label: "Role", type: "select", options: allRoles.map((r) => ({ value: r.id, label: r.preset ? `${r.name} (preset)` : r.name })) },
          ]}
          submit={({ group_id, role }) => call(() => api.POST("/api/v1/projects/{project_id}/roleassignments", { params: { path: { project_id: id } }, body: { group_id: group_id ?? "", role: role ?? "" } }))}
          done={() => void reloadAssignments()}
        />
      </section>
      <section aria-labelledby="roles">
        <h2 id="roles">Roles</h2>
        <Show loaded={roles} what="roles">
          {(data) => (
            <table>
              <thead><tr><th scope="col">Role</th><th scope="col">Rules</th><th scope="col">Change</th></tr></thead>
              <tbody>
                {[...data.presets, ...data.items].map((r) => (
                  <tr key={r.id}>
                    <td>{r.name}{r.preset && <small className="muted"> preset</small>}</td>
                    <td>
                      <Rules role={r} change={(rules) => changeRules(r.id, rules)} done={() => void reloadRoles()} />
                      {!r.preset && (
                        <Form compact title={`Add a rule to ${r.name}`} action={`Add rule to ${r.name}`} fields={RULE_FIELDS}
                          submit={(values) => changeRules(r.id, [...rulesOf(r.rules), rule(values)])} done={() => void reloadRoles()} />
                      )}
                    </td>
                    <td>{!r.preset && (
                      <ActionButton label={`Delete role ${r.name}`} danger confirm={`Delete role ${r.name}?`} run={() => call(() => api.DELETE("/api/v1/projects/{project_id}/roles/{role_id}", { params: { path: { project_id: id, role_id: r.id } } }))} done={() => void reloadRoles()} />
                    )}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Show>
        <Form
          title="Create a custom role"
          action="Create role"
          fields={[
            { name: "name", label: "Role name", required: true, placeholder: "log-reader" },
            ...RULE_FIELDS,
          ]}
          submit={(values) => call(() => api.POST("/api/v1/projects/{project_id}/roles", { params: { path: { project_id: id } }, body: { name: values.name ?? "", rules: [rule(values)] } }))}
          done={() => void reloadRoles()}
        />
      </section>
    </>
  );
}

function ProjectPage() {
  const params = useSearchParams();
  const orgId = params.get("org") ?? "";
  const wsId = params.get("ws") ?? "";
  const projectId = params.get("project") ?? "";
  const [org] = useLoad(() => call(() => api.GET("/api/v1/organizations/{org_id}", { params: { path: { org_id: orgId }, query: { position: position() } } })), [orgId]);
  const [ws] = useLoad(() => call(() => api.GET("/api/v1/organizations/{org_id}/workspaces/{ws_id}", { params: { path: { org_id: orgId, ws_id: wsId }, query: { position: position() } } })), [orgId, wsId]);
  const [project] = useLoad(
    () => call(() => api.GET("/api/v1/workspaces/{ws_id}/projects/{project_id}", { params: { path: { ws_id: wsId, project_id: projectId }, query: { position: position() } } })),
    [wsId, projectId],
  );
  const orgName = org.state === "ready" ? org.data.name : "Organization";
  const wsName = ws.state === "ready" ? ws.data.name : "Workspace";
  const name = project.state === "ready" ? project.data.name : "Project";
  return (
    <Console
      title={`Project ${name}`}
      crumbs={[{ label: orgName, href: `/org/?org=${orgId}` }, { label: wsName, href: `/workspace/?org=${orgId}&ws=${wsId}&tab=projects` }, { label: name }]}
    >
      {() => <Show loaded={project} what="project">{(p) => <ProjectView ws={wsId} project={p} />}</Show>}
    </Console>
  );
}

export default function Page() {
  return (
    <Suspense>
      <ProjectPage />
    </Suspense>
  );
}
