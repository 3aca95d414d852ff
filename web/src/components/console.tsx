"use client";
// Every page's frame: who is signed in (`/auth/me`), the header with sign-out, and the sign-in
// page for a browser without a session.
import Link from "next/link";
import { useEffect, useState, type ReactNode } from "react";
import { api, call, position, SIGNED_OUT, type Schemas } from "@/api/client";
import { Show, useLoad } from "./ui";

export type Me = Schemas["Me"];

function SignIn() {
  const [providers] = useLoad(() => call(() => api.GET("/auth/providers")), []);
  const here = typeof window === "undefined" ? "/console/" : window.location.pathname + window.location.search;
  return (
    <main id="main" className="signin">
      <title>Sign in · Hexabase</title>
      <h1>Sign in to Hexabase</h1>
      <p>Hexabase runs your organization&apos;s Kubernetes workspaces. Sign in with your identity provider.</p>
      <Show loaded={providers} what="identity providers">
        {(list) =>
          list.items.length === 0 ? (
            <p className="error" role="alert">No identity provider is configured (auth.providers).</p>
          ) : (
            <ul className="providers">
              {list.items.map((p) => (
                <li key={p.name}>
                  <a className="button" href={`/auth/login/${encodeURIComponent(p.name)}/browser?return_to=${encodeURIComponent(here)}`}>
                    Sign in with {p.name}
                  </a>
                </li>
              ))}
            </ul>
          )
        }
      </Show>
    </main>
  );
}

function SignOut() {
  const [error, setError] = useState<string | undefined>();
  const out = async () => {
    const result = await call(() => api.POST("/auth/logout"));
    // Reloaded without a session, the page shows the sign-in.
    if (result.ok || result.status === 401) window.location.reload();
    else setError(result.error.message);
  };
  return (
    <>
      <button type="button" onClick={out}>Sign out</button>
      {error && <span className="error" role="alert">{error}</span>}
    </>
  );
}

export type Crumb = { label: string; href?: string };

/** The page for a signed-in user: `children` gets who they are. */
export function Console({ title, crumbs = [], children }: {
  title: string;
  crumbs?: Crumb[];
  children: (me: Me, reloadMe: () => void) => ReactNode;
}) {
  const [me, reload] = useLoad(() => call(() => api.GET("/auth/me", { params: { query: { position: position() } } })), []);
  // Any call that finds the session gone (and could not renew it) brings the sign-in back.
  const [signedOut, setSignedOut] = useState(false);
  useEffect(() => {
    const gone = () => setSignedOut(true);
    window.addEventListener(SIGNED_OUT, gone);
    return () => window.removeEventListener(SIGNED_OUT, gone);
  }, []);
  if (signedOut || (me.state === "failed" && me.status === 401)) return <SignIn />;
  return (
    <>
      <title>{`${title} · Hexabase`}</title>
      <a className="skip" href="#main">Skip to content</a>
      <header className="top">
        <Link href="/" className="brand">Hexabase</Link>
        {me.state === "ready" && (
          <div className="who">
            <span>{me.data.email ?? me.data.id}</span>
            <SignOut />
          </div>
        )}
      </header>
      <main id="main">
        <nav aria-label="Breadcrumb" className="crumbs">
          <ol>
            <li><Link href="/">Organizations</Link></li>
            {crumbs.map((c) => (
              <li key={c.label}>{c.href ? <Link href={c.href}>{c.label}</Link> : <span aria-current="page">{c.label}</span>}</li>
            ))}
          </ol>
        </nav>
        <h1>{title}</h1>
        <Show loaded={me} what="your account">
          {(data) => children(data, () => void reload())}
        </Show>
      </main>
    </>
  );
}
