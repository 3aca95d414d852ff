"use client";
// The start page: the caller's organizations, creating one, and invitations waiting for them.
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { Suspense } from "react";
import { api, call, position } from "@/api/client";
import { Console } from "@/components/console";
import { ActionButton, Empty, Form, Show, useLoad, When } from "@/components/ui";

function Organizations({ reloadMe }: { reloadMe: () => void }) {
  const router = useRouter();
  const [orgs, reload] = useLoad(
    () => call(() => api.GET("/api/v1/organizations", { params: { query: { limit: 100, position: position() } } })),
    [],
  );
  return (
    <>
      <section aria-labelledby="orgs">
        <h2 id="orgs">Your organizations</h2>
        <Show loaded={orgs} what="organizations">
          {(list) =>
            list.items.length === 0 ? (
              <Empty>You belong to no organization yet. Create one, or accept an invitation.</Empty>
            ) : (
              <table>
                <thead><tr><th scope="col">Name</th><th scope="col">Your role</th><th scope="col">Created</th></tr></thead>
                <tbody>
                  {list.items.map((org) => (
                    <tr key={org.id}>
                      <td><Link href={`/org/?org=${org.id}`}>{org.name}</Link></td>
                      <td>{org.role ?? "—"}</td>
                      <td><When at={org.created_at} /></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </Show>
      </section>
      <Form
        title="Create an organization"
        action="Create organization"
        fields={[{ name: "name", label: "Organization name", required: true, placeholder: "acme" }]}
        submit={async ({ name }) => {
          const result = await call(() => api.POST("/api/v1/organizations", { body: { name: name ?? "" } }));
          if (result.ok) router.push(`/org/?org=${result.data.id}`);
          return result;
        }}
        done={() => {
          void reload();
          reloadMe();
        }}
      />
    </>
  );
}

/** Where Stripe's checkout sends the buyer back (`billing.success_url`, `billing.cancel_url`). */
function BillingNotice() {
  const billing = useSearchParams().get("billing");
  if (billing === "success") {
    return <p className="ok" role="status">Payment received. The subscription shows on the organization&apos;s Billing page once Stripe confirms it.</p>;
  }
  if (billing === "canceled") {
    return <p className="muted" role="status">Checkout was canceled: nothing was charged.</p>;
  }
  return null;
}

export default function Home() {
  const router = useRouter();
  return (
    <Console title="Organizations">
      {(me, reloadMe) => (
        <>
          <Suspense>
            <BillingNotice />
          </Suspense>
          {me.invitations.length > 0 && (
            <section aria-labelledby="invitations">
              <h2 id="invitations">Invitations for you</h2>
              <ul>
                {me.invitations.map((inv) => (
                  <li key={inv.org_id}>
                    {inv.org_name} invites you as {inv.role} (<When at={inv.invited_at} />){" "}
                    <ActionButton
                      label={`Accept invitation to ${inv.org_name}`}
                      run={() => call(() => api.POST("/api/v1/organizations/{org_id}/invitations/accept", { params: { path: { org_id: inv.org_id } } }))}
                      done={() => router.push(`/org/?org=${inv.org_id}`)}
                    />
                  </li>
                ))}
              </ul>
            </section>
          )}
          <Organizations reloadMe={reloadMe} />
        </>
      )}
    </Console>
  );
}
