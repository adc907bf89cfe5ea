/**
 * Finds and loads the native selection kernels (src/core/select/native-kernels.c, built by
 * scripts/build-native.mjs into dist/native/selection-kernels.node). They are used only where they load and the CPU
 * has AVX-512 VNNI; otherwise, or with RELABEL_KERNELS=wasm, the selection runs its WebAssembly kernels, which give
 * the same results. The module's extxyz frame reader needs no AVX-512 (nativeExtxyzFrames).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CHEMICAL_SYMBOLS } from "../core/elements.js";
import { UsageError } from "../core/errors.js";
import type { NativeFrameScan } from "../core/formats/extxyz-summary.js";
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
const cache = new Map<string, NativeModule | string>();

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
  const loaded = loadedModule(path);
  if (typeof loaded !== "string" && loaded.supported === true && typeof loaded.bind === "function") return { path, kernels: loaded as NativeKernels };
  if (choice === "native") {
    throw new UsageError(`RELABEL_KERNELS=native: ${typeof loaded === "string" ? loaded : "this CPU lacks AVX-512 VNNI, which the native kernels need"}`);
  }
  return undefined;
}

/**
 * The same module's extxyz frame reader (src/core/formats/extxyz-native.c, plain C), bound to the element symbols:
 * undefined with RELABEL_KERNELS=wasm or where the module is not built or does not load (the JavaScript reader then
 * reads every frame, to the same ids).
 */
export function nativeExtxyzFrames(choice: KernelChoice = kernelChoiceFromEnv(), path = modulePath): NativeFrameScan | undefined {
  if (choice === "wasm") return undefined;
  const loaded = loadedModule(path);
  if (typeof loaded === "string" || typeof loaded.extxyzFrames !== "function") return undefined;
  return (readers.get(path) ?? readers.set(path, loaded.extxyzFrames(CHEMICAL_SYMBOLS.join(","))).get(path))!;
}
const readers = new Map<string, NativeFrameScan>();

interface NativeModule extends Partial<NativeKernels> {
  supported?: boolean;
  extxyzFrames?: (symbols: string) => NativeFrameScan;
}

/** The module's exports, or why it cannot be used here (loaded once per path). */
function loadedModule(path: string): NativeModule | string {
  let loaded = cache.get(path);
  if (loaded === undefined) {
    loaded = load(path);
    cache.set(path, loaded);
  }
  return loaded;
}

function load(path: string): NativeModule | string {
  if (!existsSync(path)) return `the native kernels are not built (${path}; npm run build builds them)`;
  const module = { exports: {} as NativeModule };
  try {
    process.dlopen(module, path);
  } catch (error) {
    return `the native kernels at ${path} do not load: ${error instanceof Error ? error.message : String(error)}`;
  }
  return module.exports;
}
