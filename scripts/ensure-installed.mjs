// Installs the locked dependencies when node_modules is missing or older than package-lock.json,
// so the README's commands work on a fresh clone.
import { execSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";

const marker = "node_modules/.package-lock.json";
const stale = !existsSync(marker) || !existsSync("dist/cli/main.js") || statSync(marker).mtimeMs < statSync("package-lock.json").mtimeMs;
if (stale) {
  process.stderr.write("relabel-loop: installing dependencies (npm ci)...\n");
  execSync("npm ci --no-audit --no-fund", { stdio: ["ignore", "inherit", "inherit"] });
}
