// Compiles the native selection kernels (src/core/select/native-kernels.c) and the extxyz frame reader
// (src/core/formats/extxyz-native.c) into dist/native/selection-kernels.node with the machine's C compiler ($CC,
// else cc) against Node's own headers. Optional: where it cannot be built (not x86-64 Linux, no compiler, no
// headers) it says so in one line and `relabel rank` uses its WebAssembly kernels and JavaScript reader, which give
// the same results more slowly. Rebuilds only when a source is newer than the module.
// `node scripts/build-native.mjs [OUT]` builds into OUT instead (the tests do).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// The selection kernels and the extxyz frame reader, one module.
const sources = ["src/core/select/native-kernels.c", "src/core/formats/extxyz-native.c"].map((file) => join(root, file));
const target = process.argv[2] ?? join(root, "dist/native/selection-kernels.node");
const headers = join(dirname(process.execPath), "..", "include", "node");
const fallback = "`relabel rank` uses its WebAssembly kernels (same results, slower)";

function skip(reason) {
  process.stderr.write(`native selection kernels not built: ${reason}; ${fallback}\n`);
  process.exit(0);
}

if (existsSync(target) && sources.every((source) => statSync(target).mtimeMs >= statSync(source).mtimeMs)) process.exit(0);
// An out-of-date module never stays behind: the selection would load it.
rmSync(target, { force: true });
if (process.platform !== "linux" || process.arch !== "x64") skip(`they are for x86-64 Linux, this is ${process.arch} ${process.platform}`);
if (!existsSync(join(headers, "node_api.h"))) skip(`Node's headers are not at ${headers}`);
mkdirSync(dirname(target), { recursive: true });
const compiler = process.env.CC || "cc";
// -ffp-contract=off: no fused multiply-add, so that the exact distances match the WebAssembly kernels bit for bit.
// Warnings are printed, not fatal (a newer compiler's new warning should not cost users the kernels); the tests
// require a build without any.
const flags = ["-O2", "-std=c11", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared", "-Wall", `-I${headers}`];
const built = spawnSync(compiler, [...flags, ...sources, "-o", target, "-lm"], { encoding: "utf8" });
if (built.error) skip(`${compiler}: ${built.error.message}`);
if (built.status !== 0) {
  const first = (built.stderr || "").split("\n").find((line) => line.includes("error")) ?? `exit status ${built.status}`;
  skip(`${compiler} failed: ${first.trim()}`);
}
process.stderr.write(built.stderr);
