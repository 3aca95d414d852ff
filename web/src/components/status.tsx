import type { Schemas } from "@/api/client";

/** The statuses a workspace stays in until someone acts; the others change by themselves. */
export const SETTLED = ["Ready", "Suspended", "Deleted", "Failed"];

export function Status({ ws }: { ws: Schemas["WorkspaceView"] }) {
  return (
    <span className={`status status-${ws.status.toLowerCase()}`}>
      {ws.status}
      {ws.progress?.step && !SETTLED.includes(ws.status) ? ` · ${ws.progress.step}` : ""}
    </span>
  );
}

