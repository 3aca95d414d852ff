"use client";
// The console's building blocks: loading a resource, forms whose errors are the API's words next
// to the field it names, and the empty, loading and not-found states.
import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from "react";
import type { ApiError, Result } from "@/api/client";

export type Loaded<T> =
  | { state: "loading" }
  /** `stale`: the last refresh failed, and this is what the one before it answered. */
  | { state: "ready"; data: T; stale?: ApiError }
  | { state: "failed"; error: ApiError; status: number };

/**
 * Load with `fetch` now, again when `deps` change, and whenever `reload` is called. One load
 * runs at a time: a reload asked for meanwhile runs once it is done. A refresh that fails
 * after data was shown keeps the data (marked `stale`), unless the thing is gone (404, 403).
 */
export function useLoad<T>(fetch: () => Promise<Result<T>>, deps: readonly unknown[]) {
  const key = JSON.stringify(deps);
  const [held, setHeld] = useState<{ key: string; loaded: Loaded<T> } | undefined>();
  const latest = useRef(fetch);
  const current = useRef(key);
  const run = useRef({ running: false, again: false });
  useEffect(() => {
    latest.current = fetch;
  });
  const load = useCallback(async () => {
    if (run.current.running) {
      run.current.again = true;
      return;
    }
    run.current.running = true;
    try {
      do {
        run.current.again = false;
        const forKey = current.current;
        const result = await latest.current();
        if (forKey !== current.current) {
          // The page moved on while this ran: load what it shows now.
          run.current.again = true;
          continue;
        }
        setHeld((before) => {
          if (result.ok) return { key: forKey, loaded: { state: "ready", data: result.data } };
          const shown = before?.key === forKey && before.loaded.state === "ready" ? before.loaded : undefined;
          if (shown && result.status !== 404 && result.status !== 403) {
            return { key: forKey, loaded: { ...shown, stale: result.error } };
          }
          return { key: forKey, loaded: { state: "failed", error: result.error, status: result.status } };
        });
      } while (run.current.again);
    } finally {
      run.current.running = false;
    }
  }, []);
  // `key` stands for `deps`, what the fetch depends on (the effect above has made `latest`
  // this render's fetch already).
  useEffect(() => {
    current.current = key;
    void load();
  }, [key, load]);
  const loaded: Loaded<T> = held && held.key === key ? held.loaded : { state: "loading" };
  return [loaded, load] as const;
}

/** Call `tick` every `ms` while `active`. */
export function useEvery(ms: number, active: boolean, tick: () => void) {
  const latest = useRef(tick);
  useEffect(() => {
    latest.current = tick;
  });
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => latest.current(), ms);
    return () => clearInterval(timer);
  }, [ms, active]);
}

/** What a `Loaded` shows until it has data: a loading line, a not-found page, or the error. */
export function Show<T>({ loaded, what, children }: {
  loaded: Loaded<T>;
  what: string;
  children: (data: T) => ReactNode;
}) {
  if (loaded.state === "loading") {
    return <p className="muted" role="status">Loading {what}…</p>;
  }
  if (loaded.state === "failed") {
    if (loaded.status === 404 || loaded.status === 403) {
      return (
        <section className="notfound" aria-labelledby="notfound">
          <h2 id="notfound">Not found</h2>
          <p>There is no {what} here that you can see. {loaded.error.message}</p>
        </section>
      );
    }
    return <p className="error" role="alert">{loaded.error.message}</p>;
  }
  return (
    <>
      {loaded.stale && <p className="error" role="alert">Could not refresh {what}: {loaded.stale.message}</p>}
      {children(loaded.data)}
    </>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

type FieldSpec = {
  name: string;
  label: string;
  type?: "text" | "email" | "select" | "textarea" | "datetime-local";
  options?: { value: string; label: string }[];
  required?: boolean;
  placeholder?: string;
  defaultValue?: string;
  hint?: string;
};

/**
 * A form: its fields, a submit button, and the API's error under the field it names (or above
 * the button when it names none). `submit` gets the values by field name.
 */
export function Form({ title, fields, action, submit, done, compact, keep }: {
  title: string;
  fields: FieldSpec[];
  action: string;
  submit: (values: Record<string, string>) => Promise<Result<unknown>>;
  done?: () => void;
  compact?: boolean;
  /** Keep what was entered after a success (a filter), instead of emptying the form. */
  keep?: boolean;
}) {
  const id = useId();
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | undefined>();
  const onSubmit = async (event: React.FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const values: Record<string, string> = {};
    new FormData(form).forEach((value, key) => {
      values[key] = String(value);
    });
    setBusy(true);
    setMessage(undefined);
    const result = await submit(values);
    setBusy(false);
    if (result.ok) {
      setError(undefined);
      if (!keep) {
        setMessage(`${action}: done.`);
        form.reset();
      }
      done?.();
    } else {
      setError(result.error);
    }
  };
  const fieldOf = (error?.field ?? "").split(".").pop() ?? "";
  const named = error && fields.some((f) => f.name === fieldOf);
  return (
    <form className={compact ? "form compact" : "form"} onSubmit={onSubmit} aria-labelledby={`${id}-t`} noValidate>
      <h3 id={`${id}-t`}>{title}</h3>
      {fields.map((field) => {
        const inputId = `${id}-${field.name}`;
        const invalid = named && fieldOf === field.name;
        const describedBy = invalid ? `${inputId}-error` : field.hint ? `${inputId}-hint` : undefined;
        const common = {
          id: inputId,
          name: field.name,
          required: field.required,
          "aria-invalid": invalid || undefined,
          "aria-describedby": describedBy,
          defaultValue: field.defaultValue,
        };
        return (
          <div className="field" key={field.name}>
            <label htmlFor={inputId}>{field.label}</label>
            {field.type === "select" ? (
              <select {...common}>
                {field.options?.map((o) => (
                  <option key={o.value} value={o.value}>{o.label}</option>
                ))}
              </select>
            ) : field.type === "textarea" ? (
              <textarea {...common} placeholder={field.placeholder} rows={4} />
            ) : (
              <input {...common} type={field.type ?? "text"} placeholder={field.placeholder} />
            )}
            {field.hint && !invalid && <small id={`${inputId}-hint`} className="muted">{field.hint}</small>}
            {invalid && <small id={`${inputId}-error`} className="error" role="alert">{error.message}</small>}
          </div>
        );
      })}
      {error && !named && <p className="error" role="alert">{error.message}</p>}
      {message && <p className="ok" role="status">{message}</p>}
      <button type="submit" disabled={busy}>{busy ? "Working…" : action}</button>
    </form>
  );
}

/** A button for a one-click write (delete, suspend…), with the API's error beside it. */
export function ActionButton({ label, run, done, confirm: question, danger }: {
  label: string;
  run: () => Promise<Result<unknown>>;
  done?: () => void;
  confirm?: string;
  danger?: boolean;
}) {
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const onClick = async () => {
    if (question && !window.confirm(question)) return;
    setBusy(true);
    const result = await run();
    setBusy(false);
    if (result.ok) {
      setError(undefined);
      done?.();
    } else {
      setError(result.error);
    }
  };
  return (
    <span className="action">
      <button type="button" className={danger ? "danger" : undefined} onClick={onClick} disabled={busy}>
        {label}
      </button>
      {error && <span className="error" role="alert"> {error.message}</span>}
    </span>
  );
}

export type TreeItem = { id: string; name: string; parent_id?: string | null };

/** Items with a `parent_id` as a nested list; `render` draws one item's line. */
export function Tree<T extends TreeItem>({ items, render, label }: {
  items: T[];
  render: (item: T) => ReactNode;
  label: string;
}) {
  const ids = new Set(items.map((i) => i.id));
  const children = (parent: string | undefined) =>
    items
      .filter((i) => (i.parent_id && ids.has(i.parent_id) ? i.parent_id : undefined) === parent)
      .sort((a, b) => a.name.localeCompare(b.name));
  const level = (parent: string | undefined): ReactNode => {
    const here = children(parent);
    if (here.length === 0) return null;
    return (
      <ul className="tree">
        {here.map((item) => (
          <li key={item.id}>
            {render(item)}
            {level(item.id)}
          </li>
        ))}
      </ul>
    );
  };
  return <div role="group" aria-label={label}>{level(undefined)}</div>;
}

export function When({ at }: { at?: string | null }) {
  if (!at) return <span className="muted">—</span>;
  const date = new Date(at);
  return <time dateTime={at}>{date.toLocaleString()}</time>;
}
