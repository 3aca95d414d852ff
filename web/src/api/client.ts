// The console's only way to the API: a client generated from `openapi/openapi.json`
// (openapi-typescript → `schema.d.ts`, openapi-fetch). The console is served on the API's own
// origin, so the browser sends the session cookies itself; every write echoes the `hxb_csrf`
// cookie in `X-CSRF-Token`, as the API requires of cookie sessions.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type ApiError = Schemas["ErrorBody"];

const CSRF_COOKIE = "hxb_csrf";

function cookie(name: string): string | undefined {
  if (typeof document === "undefined") return undefined;
  for (const part of document.cookie.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return undefined;
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (request.method !== "GET" && request.method !== "HEAD") {
      const token = cookie(CSRF_COOKIE);
      if (token) request.headers.set("X-CSRF-Token", token);
    }
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(csrf);

/** The newest event position this browser wrote: reads pass it on, to see their own writes. */
let seen: number | undefined;

export function remember(position: number | null | undefined): void {
  if (typeof position === "number" && (seen === undefined || position > seen)) seen = position;
}

export function position(): number | undefined {
  return seen;
}

/** A failed call: the API's error body, or one in its words for a network failure. */
export function failure(error: unknown, response: Response | undefined): ApiError {
  if (error && typeof error === "object" && "message" in error && "code" in error) {
    return error as ApiError;
  }
  if (!response) return { code: "unreachable", message: "The control plane cannot be reached." };
  return { code: `http_${response.status}`, message: `${response.status} ${response.statusText}` };
}

type Outcome<T> = { data?: T; error?: unknown; response: Response };

let refreshing: Promise<boolean> | undefined;

/** What a page hears when the session is gone for good (signed out elsewhere, expired). */
export const SIGNED_OUT = "hxb:signed-out";

/**
 * Renew the session from the refresh cookie; one renewal at a time for the whole page. A 409
 * means another tab renewed it a moment ago: its new cookies are this tab's too.
 */
async function refresh(): Promise<boolean> {
  refreshing ??= api
    .POST("/auth/refresh", { body: {} })
    .then(({ response }) => response.ok || response.status === 409)
    .catch(() => false)
    .finally(() => {
      refreshing = undefined;
    });
  return refreshing;
}

export type Result<T> = { ok: true; data: T } | { ok: false; error: ApiError; status: number };

/**
 * Run a call of `api`; an expired access token (401) is renewed once from the refresh cookie
 * and the call made again. Answers the data or the API's error.
 */
export async function call<T>(run: () => Promise<Outcome<T>>): Promise<Result<T>> {
  let outcome: Outcome<T>;
  try {
    outcome = await run();
    if (outcome.response.status === 401 && (await refresh())) outcome = await run();
    if (outcome.response.status === 401 && typeof window !== "undefined") {
      window.dispatchEvent(new Event(SIGNED_OUT));
    }
  } catch {
    return { ok: false, error: failure(undefined, undefined), status: 0 };
  }
  const { data, error, response } = outcome;
  if (response.ok) {
    if (data && typeof data === "object" && "position" in data) {
      remember((data as { position?: number | null }).position);
    }
    return { ok: true, data: data as T };
  }
  return { ok: false, error: failure(error, response), status: response.status };
}
