/**
 * Builds stand-in stage directories for the executor tests (never shipped): the run.sh double plus the MACE
 * doubles (with their argparse.mjs) in bin/, so the stage is self-contained on the execution host. An eval
 * stage also gets model.model as the mace_run_train double writes it.
 */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const here = path.dirname(new URL(import.meta.url).pathname);

export interface StageDouble {
  kind?: "train" | "eval";
  name?: string;
  /** Seconds the MACE double pretends to work. */
  sleep?: number;
  /** Exit code of the MACE double. */
  exit?: number;
  /** run.sh exits 0 without writing FINISHED. */
  skipFinished?: boolean;
  /** Write no stage.json (the executor must hash the directory itself). */
  noStageJson?: boolean;
  /** Extra files, relative path -> content. */
  files?: Record<string, string | Buffer>;
}

export interface BuiltStage {
  dir: string;
  name: string;
  kind: "train" | "eval";
  /** The stage hash written to stage.json as "sha256" (null with noStageJson). */
  hash: string | null;
}

export function makeStage(options: StageDouble = {}, parent = mkdtempSync(path.join(tmpdir(), "relabel-stage-"))): BuiltStage {
  const kind = options.kind ?? "train";
  const name = options.name ?? `${kind}-double`;
  const dir = path.join(parent, name);
  mkdirSync(path.join(dir, "bin"), { recursive: true });
  mkdirSync(path.join(dir, "data"), { recursive: true });
  copyFileSync(path.join(here, "run.sh"), path.join(dir, "run.sh"));
  for (const f of ["mace_run_train", "mace_eval_configs", "argparse.mjs"]) copyFileSync(path.join(here, f), path.join(dir, "bin", f));
  for (const f of ["run.sh", "bin/mace_run_train", "bin/mace_eval_configs"]) chmodSync(path.join(dir, f), 0o755);
  writeFileSync(
    path.join(dir, "double.env"),
    `KIND=${kind}\nMACE_DOUBLE_SLEEP=${options.sleep ?? 0}\nMACE_DOUBLE_EXIT=${options.exit ?? 0}\nSKIP_FINISHED=${options.skipFinished ? 1 : 0}\n`,
  );
  if (kind === "eval") writeFileSync(path.join(dir, "model.model"), `${JSON.stringify({ double: "mace_run_train", name: "model", seed: 42, heads: ["Default"] })}\n`);
  // A unique structure file makes every built stage a different stage (different hash, different remote dir).
  writeFileSync(
    path.join(dir, "data", "structures.extxyz"),
    `1\nLattice="5.0 0.0 0.0 0.0 5.0 0.0 0.0 0.0 5.0" Properties=species:S:1:pos:R:3 REF_energy=-1.0 nonce=${randomBytes(8).toString("hex")} pbc="T T T"\nH 0.0 0.0 0.0\n`,
  );
  for (const [rel, content] of Object.entries(options.files ?? {})) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  }
  let hash: string | null = null;
  if (!options.noStageJson) {
    hash = createHash("sha256").update(`${name}\n${randomBytes(16).toString("hex")}`).digest("hex");
    writeFileSync(path.join(dir, "stage.json"), `${JSON.stringify({ kind, name, sha256: hash }, null, 2)}\n`);
  }
  return { dir, name, kind, hash };
}
