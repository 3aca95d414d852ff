import Link from "next/link";

export default function NotFound() {
  return (
    <main id="main" className="signin">
      <h1>Not found</h1>
      <p>There is no such page in the console.</p>
      <p><Link href="/">Back to your organizations</Link></p>
    </main>
  );
}
