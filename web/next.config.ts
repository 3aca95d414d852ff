import type { NextConfig } from "next";

// A static export: one HTML file per page under `out/`, which the control plane serves at
// `/console/` (`http.console_dir`) on the API's own origin, so the session cookies reach the API.
const config: NextConfig = {
  output: "export",
  basePath: "/console",
  trailingSlash: true,
  images: { unoptimized: true },
  poweredByHeader: false,
};

export default config;
