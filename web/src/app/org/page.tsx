"use client";
// An organization: its workspaces, members and invitations, billing, audit history, settings.
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { Suspense, useState } from "react";
import { api, call, position, type Schemas } from "@/api/client";
import { Console } from "@/components/console";
import { SETTLED, Status } from "@/components/status";
import { Tabs } from "@/components/tabs";
import { ActionButton, Empty, Form, Show, useEvery, useLoad, When } from "@/components/ui";

type Org = Schemas["OrganizationDetail"];

function usePlans() {
  return useLoad(() => call(() => api.GET("/api/v1/plans")), []);
}

function Workspaces({ org }: { org: Org }) {
  const router = useRouter();
  const [list, reload] = useLoad(
    () => call(() => api.GET("/api/v1/organizations/{org_id}/workspaces", {
      params: { path: { org_id: org.id }, query: { limit: 100, position: position() } },
    })),
    [org.id],
  );
  const [plans] = usePlans();
  const busy = list.state === "ready" && list.data.items.some((w) => !SETTLED.includes(w.status));
  useEvery(2000, busy, () => void reload());
  const options = plans.state === "ready"
    ? plans.data.items.map((p) => ({ value: p.id, label: `${p.name}${p.available ? "" : " (not available)"}` }))
    : [];
  return (
    <>
      <section aria-labelledby="ws">
        <h2 id="ws">Workspaces</h2>
        <Show loaded={list} what="workspaces">
          {(data) =>
            data.items.length === 0 ? (
              <Empty>No workspaces yet. A workspace is a Kubernetes cluster of its own; create one below.</Empty>
            ) : (
              <table>
                <thead><tr><th scope="col">Name</th><th scope="col">Plan</th><th scope="col">Status</th><th scope="col">Created</th></tr></thead>
                <tbody>
                  {data.items.map((ws) => (
                    <tr key={ws.id}>
                      <td><Link href={`/workspace/?org=${org.id}&ws=${ws.id}`}>{ws.name}</Link></td>
                      <td>{ws.plan}</td>
                      <td><Status ws={ws} /></td>
                      <td><When at={ws.created_at} /></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </Show>
      </section>
      {org.role === "admin" && (
        <Form
          title="Create a workspace"
          action="Create workspace"
          fields={[
            { name: "name", label: "Workspace name", required: true, placeholder: "dev" },
            { name: "plan", label: "Plan", type: "select", options },
          ]}
          submit={async ({ name, plan }) => {
            const result = await call(() => api.POST("/api/v1/organizations/{org_id}/workspaces", {
              params: { path: { org_id: org.id } },
              body: { name: name ?? "", plan: plan ?? "" },
            }));
            if (result.ok) router.push(`/workspace/?org=${org.id}&ws=${result.data.id}`);
            return result;
          }}
          done={() => void reload()}
        />
      )}
    </>
  );
}

function Members({ org, me, reloadOrg }: { org: Org; me: string; reloadOrg: () => void }) {
  const router = useRouter();
  const [list, reload] = useLoad(
    () => call(() => api.GET("/api/v1/organizations/{org_id}/users", {
      params: { path: { org_id: org.id }, query: { limit: 100, position: position() } },
    })),
    [org.id],
  );
  const admin = org.role === "admin";
  const roles = [{ value: "member", label: "member" }, { value: "admin", label: "admin" }];
  return (
    <>
      <section aria-labelledby="members">
        <h2 id="members">Members</h2>
        <Show loaded={list} what="members">
          {(data) => (
            <table>
              <thead><tr><th scope="col">Member</th><th scope="col">Role</th><th scope="col">Since</th>{admin && <th scope="col">Change</th>}</tr></thead>
              <tbody>
                {data.items.map((m) => (
                  <tr key={m.user_id}>
                    <td>{m.display_name ?? m.email ?? m.user_id}<br /><small className="muted">{m.email}</small></td>
                    <td>{m.role}</td>
                    <td><When at={m.since} /></td>
                    {admin && (
                      <td>
                        <ActionButton
                          label={m.role === "admin" ? `Make ${m.email ?? m.user_id} a member` : `Make ${m.email ?? m.user_id} an admin`}
                          run={() => call(() => api.PATCH("/api/v1/organizations/{org_id}/users/{user_id}", {
                            params: { path: { org_id: org.id, user_id: m.user_id } },
                            body: { role: m.role === "admin" ? "member" : "admin" },
                          }))}
                          done={() => {
                            void reload();
                            reloadOrg();
                          }}
                        />{" "}
                        <ActionButton
                          label={`Remove ${m.email ?? m.user_id}`}
                          danger
                          confirm={`Remove ${m.email ?? m.user_id} from ${org.name}?`}
                          run={() => call(() => api.DELETE("/api/v1/organizations/{org_id}/users/{user_id}", {
                            params: { path: { org_id: org.id, user_id: m.user_id } },
                          }))}
                          done={() => (m.user_id === me ? router.push("/") : void reload())}
                        />
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Show>
      </section>
      <section aria-labelledby="invitations">
        <h2 id="invitations">Invitations</h2>
        {org.invitations.length === 0 ? (
          <Empty>No invitations are waiting.</Empty>
        ) : (
          <ul>
            {org.invitations.map((inv) => (
              <li key={inv.email}>{inv.email} as {inv.role}, invited <When at={inv.invited_at} /></li>
            ))}
          </ul>
        )}
        {admin && (
          <Form
            title="Invite someone"
            action="Send invitation"
            fields={[
              { name: "email", label: "Email", type: "email", required: true, hint: "They accept it after signing in with this verified email." },
              { name: "role", label: "Role", type: "select", options: roles },
            ]}
            submit={({ email, role }) => call(() => api.POST("/api/v1/organizations/{org_id}/users", {
              params: { path: { org_id: org.id } },
              body: { email: email ?? "", role: role === "admin" ? "admin" : "member" },
            }))}
            done={reloadOrg}
          />
        )}
      </section>
    </>
  );
}

function Billing({ org }: { org: Org }) {
  const [billing] = useLoad(
    () => call(() => api.GET("/api/v1/organizations/{org_id}/billing", { params: { path: { org_id: org.id }, query: { position: position() } } })),
    [org.id],
  );
  const [plans] = usePlans();
  const paid = plans.state === "ready" ? plans.data.items.filter((p) => p.price_id) : [];
  return (
    <section aria-labelledby="billing">
      <h2 id="billing">Billing</h2>
      <Show loaded={billing} what="billing">
        {(b) =>
          !b.enabled ? (
            <Empty>Billing is not configured on this control plane: every plan is free to use.</Empty>
          ) : (
            <>
              <dl className="facts">
                <dt>Plan</dt><dd>{b.plan ?? "none paid for"}</dd>
                <dt>Subscription</dt><dd>{b.subscription_status ?? "none"}{b.cancel_at_period_end ? " (cancels at the period end)" : ""}</dd>
                <dt>Current period ends</dt><dd><When at={b.current_period_end} /></dd>
                <dt>Last payment</dt><dd>{b.last_payment ?? "—"} <When at={b.last_payment_at} /></dd>
                {b.grace_until && (<><dt>Grace period until</dt><dd><When at={b.grace_until} /></dd></>)}
                <dt>Suspended</dt><dd>{b.suspended ? `yes: ${b.suspension_reason ?? ""}` : "no"}</dd>
              </dl>
              <Form
                title="Subscribe to a plan"
                action="Go to checkout"
                fields={[{ name: "plan", label: "Plan", type: "select", options: paid.map((p) => ({ value: p.id, label: p.name })) }]}
                submit={async ({ plan }) => {
                  const result = await call(() => api.POST("/api/v1/organizations/{org_id}/billing/checkout", {
                    params: { path: { org_id: org.id } },
                    body: { plan: plan ?? "" },
                  }));
                  if (result.ok) window.location.assign(result.data.url);
                  return result;
                }}
              />
              <ActionButton
                label="Open the billing portal"
                run={async () => {
                  const result = await call(() => api.POST("/api/v1/organizations/{org_id}/billing/portal", { params: { path: { org_id: org.id } } }));
                  if (result.ok) window.location.assign(result.data.url);
                  return result;
                }}
              />
            </>
          )
        }
      </Show>
    </section>
  );
}

// Projects, groups, roles and assignments are recorded on their workspace.
const TYPES = ["", "Organization", "Workspace"];

function iso(local: string | undefined): string | undefined {
  if (!local) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function Audit({ org }: { org: Org }) {
  const [filter, setFilter] = useState<{
    aggregate_type?: string;
    aggregate_id?: string;
    since?: string;
    until?: string;
    order: "newest" | "oldest";
  }>({ order: "newest" });
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const [page] = useLoad(
    () => call(() => api.GET("/api/v1/organizations/{org_id}/events", {
      params: { path: { org_id: org.id }, query: { limit: 25, cursor, position: position(), ...filter } },
    })),
    [org.id, cursor, JSON.stringify(filter)],
  );
  return (
    <section aria-labelledby="audit">
      <h2 id="audit">Audit history</h2>
      <Form
        title="Filter"
        action="Apply filter"
        compact
        keep
        fields={[
          { name: "aggregate_type", label: "Resource type", type: "select", options: TYPES.map((t) => ({ value: t, label: t || "any" })) },
          { name: "aggregate_id", label: "Resource id", placeholder: "hxb-ws-…" },
          { name: "since", label: "From", type: "datetime-local" },
          { name: "until", label: "Until", type: "datetime-local" },
          { name: "order", label: "Order", type: "select", options: [{ value: "newest", label: "newest first" }, { value: "oldest", label: "oldest first" }] },
        ]}
        submit={async (v) => {
          setFilter({
            aggregate_type: v.aggregate_type || undefined,
            aggregate_id: v.aggregate_id?.trim() || undefined,
            since: iso(v.since),
            until: iso(v.until),
            order: v.order === "oldest" ? "oldest" : "newest",
          });
          setCursors([]);
          return { ok: true, data: null };
        }}
      />
      <Show loaded={page} what="history">
        {(data) => (
          <>
            {data.items.length === 0 ? (
              <Empty>No events match.</Empty>
            ) : (
              <table className="audit">
                <thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">Resource</th><th scope="col">Actor</th></tr></thead>
                <tbody>
                  {data.items.map((e) => (
                    <tr key={e.position}>
                      <td><When at={e.occurred_at} /></td>
                      <td>{e.event_type}</td>
                      <td>{e.aggregate_type} <small className="muted">{e.aggregate_id}</small></td>
                      <td><small>{e.actor ?? "—"}</small></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <div className="pager">
              <button type="button" disabled={cursors.length === 0} onClick={() => setCursors([])}>First page</button>
              <button type="button" disabled={!data.next_cursor} onClick={() => data.next_cursor && setCursors([...cursors, data.next_cursor])}>Next page</button>
            </div>
          </>
        )}
      </Show>
    </section>
  );
}

function Settings({ org, reloadOrg }: { org: Org; reloadOrg: () => void }) {
  const router = useRouter();
  if (org.role !== "admin") return <Empty>Only the organization&apos;s admins change its settings.</Empty>;
  return (
    <>
      <Form
        title="Rename"
        action="Rename organization"
        key={org.name}
        fields={[{ name: "name", label: "New name", required: true, defaultValue: org.name }]}
        submit={({ name }) => call(() => api.PATCH("/api/v1/organizations/{org_id}", { params: { path: { org_id: org.id } }, body: { name: name ?? "" } }))}
        done={reloadOrg}
      />
      <section aria-labelledby="delete">
        <h2 id="delete">Delete the organization</h2>
        <p>Its workspaces must be deleted first.</p>
        <ActionButton
          label="Delete organization"
          danger
          confirm={`Delete ${org.name}?`}
          run={() => call(() => api.DELETE("/api/v1/organizations/{org_id}", { params: { path: { org_id: org.id } } }))}
          done={() => router.push("/")}
        />
      </section>
    </>
  );
}

function OrgPage() {
  const params = useSearchParams();
  const id = params.get("org") ?? "";
  const tab = params.get("tab") ?? "workspaces";
  const [org, reload] = useLoad(
    () => call(() => api.GET("/api/v1/organizations/{org_id}", { params: { path: { org_id: id }, query: { position: position() } } })),
    [id],
  );
  const name = org.state === "ready" ? org.data.name : "Organization";
  return (
    <Console title={name} crumbs={[{ label: name }]}>
      {(me) => (
        <Show loaded={org} what="organization">
          {(data) => (
            <>
              <Tabs
                base={`/org/?org=${data.id}`}
                current={tab}
                tabs={[["workspaces", "Workspaces"], ["members", "Members"], ["billing", "Billing"], ["audit", "Audit history"], ["settings", "Settings"]]}
              />
              {tab === "workspaces" && <Workspaces org={data} />}
              {tab === "members" && <Members org={data} me={me.id} reloadOrg={() => void reload()} />}
              {tab === "billing" && <Billing org={data} />}
              {tab === "audit" && <Audit org={data} />}
              {tab === "settings" && <Settings org={data} reloadOrg={() => void reload()} />}
            </>
          )}
        </Show>
      )}
    </Console>
  );
}

export default function Page() {
  return (
    <Suspense>
      <OrgPage />
    </Suspense>
  );
}
