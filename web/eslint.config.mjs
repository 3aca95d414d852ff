import next from "eslint-config-next/core-web-vitals";
import typescript from "eslint-config-next/typescript";

const config = [
  ...next,
  ...typescript,
  { ignores: [".next/", "out/", "node_modules/", "src/api/schema.d.ts", "next-env.d.ts", "e2e/artifacts/"] },
];

export default config;
