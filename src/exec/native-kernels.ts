/**
 * Finds and loads the native selection kernels (src/core/select/native-kernels.c, built by
 * scripts/build-native.mjs into dist/native/selection-kernels.node). They are used only where they load and the CPU
 * has AVX-512 VNNI; otherwise, or with RELABEL_KERNELS=wasm, the selection runs its WebAssembly kernels, which give
 * the same results.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { UsageError } from "../core/errors.js";
import type { NativeKernels } from "../core/select/fps-kernel.js";

/** Which kernels a selection asks for: "auto" takes the native ones where they can run. */
export type KernelChoice = "auto" | "native" | "wasm";

export interface LoadedKernels {
  /** The module's path, for worker threads to load it too. */
  path: string;
  kernels: NativeKernels;
}

// From dist/exec or src/exec (tests) alike.
const modulePath = fileURLToPath(new URL("../../dist/native/selection-kernels.node", import.meta.url));
const cache = new Map<string, LoadedKernels | string>();

/** RELABEL_KERNELS (auto, native or wasm; default auto). */
export function kernelChoiceFromEnv(env: NodeJS.ProcessEnv = process.env): KernelChoice {
  const value = env.RELABEL_KERNELS ?? "auto";
  if (value === "auto" || value === "native" || value === "wasm") return value;
  throw new UsageError(`RELABEL_KERNELS must be auto, native or wasm (got "${value}")`);
}

/**
 * The native kernels for `choice`: undefined for "wasm", or for "auto" where they are not built or the CPU lacks
 * AVX-512 VNNI; "native" throws there instead, naming why.
 */
export function nativeKernels(choice: KernelChoice, path = modulePath): LoadedKernels | undefined {
  if (choice === "wasm") return undefined;
  let loaded = cache.get(path);
  if (loaded === undefined) {
    loaded = load(path);
    cache.set(path, loaded);
  }
  if (typeof loaded !== "string") return loaded;
  if (choice === "native") throw new UsageError(`RELABEL_KERNELS=native: ${loaded}`);
  return undefined;
}

/** The module's kernels, or why they cannot run here. */
function load(path: string): LoadedKernels | string {
  if (!existsSync(path)) return `the native kernels are not built (${path}; npm run build builds them)`;
  const module = { exports: {} as { supported?: boolean } & Partial<NativeKernels> };
  try {
    process.dlopen(module, path);
  } catch (error) {
    return `the native kernels at ${path} do not load: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (module.exports.supported !== true || typeof module.exports.bind !== "function") {
    return "this CPU lacks AVX-512 VNNI, which the native kernels need";
  }
  return { path, kernels: module.exports as NativeKernels };
}
