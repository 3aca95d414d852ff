"use client";
import Link from "next/link";

/** Links to a page's parts, the current one marked. */
export function Tabs({ base, current, tabs }: { base: string; current: string; tabs: [string, string][] }) {
  return (
    <nav aria-label="Sections" className="tabs">
      <ul>
        {tabs.map(([key, label]) => (
          <li key={key}>
            <Link href={`${base}&tab=${key}`} aria-current={key === current ? "page" : undefined}>{label}</Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}
