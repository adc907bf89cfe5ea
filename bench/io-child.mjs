// One relabel-loop workload of `npm run bench:io`, run in its own process so its peak RSS is its own.
// Prints a JSON line: seconds, frames, peak_rss_mb.
import { performance } from "node:perf_hooks";
import { ExtxyzReadTrace, readExtxyz, summarizeExtxyz, writeExtxyz } from "../dist/io/extxyz.js";
import { readVasprun } from "../dist/io/vasprun.js";
import { readAseTrajectory } from "../dist/io/ase-trajectory.js";
import { readLammpsDump } from "../dist/io/lammps-dump.js";
import { poolUnits, readPoolUnit } from "../dist/io/pool.js";
import { sha256File } from "../dist/io/open.js";
import { structureFeatures } from "../dist/core/select/frame-features.js";

const [workload, file, outFile] = process.argv.slice(2);
let frames = 0;
let start = performance.now();
if (workload === "extxyz-read") {
  for await (const _ of readExtxyz(file)) frames++;
} else if (workload === "extxyz-pool") {
  // As relabel rank reads an extxyz pool: each frame's candidate_id, atom count and formula, the frame starts and the
  // file's sha256, without building frames.
  const summary = await summarizeExtxyz(file, new ExtxyzReadTrace());
  if (summary === undefined) throw new Error(`${file}: not in the plain form rank reads directly`);
  frames = summary.ids.length;
} else if (workload === "extxyz-write") {
  const all = [];
  for await (const f of readExtxyz(file)) all.push(f);
  start = performance.now();
  frames = await writeExtxyz(outFile, all);
} else if (workload === "traj-read") {
  for await (const batch of readAseTrajectory(file)) frames += batch.length;
} else if (workload === "dump-read") {
  for await (const batch of readLammpsDump(file, ["O", "Si"])) frames += batch.length;
} else if (workload === "folder-read") {
  // As relabel rank reads a pool folder: every file's frames and its sha256.
  for (const unit of await poolUnits([file])) {
    for await (const batch of readPoolUnit(unit)) frames += batch.length;
    await sha256File(unit.path);
  }
} else if (workload === "features-read") {
  // As rank --features reads them: each structure's row.
  for await (const frame of readExtxyz(file)) {
    if (typeof structureFeatures(frame, "MACE_descriptors") === "string") throw new Error(`frame ${frames}: no features`);
    frames++;
  }
} else if (workload === "vasprun-read") {
  for await (const _ of readVasprun(file)) frames++;
} else {
  throw new Error(`unknown workload ${workload}`);
}
const seconds = (performance.now() - start) / 1000;
process.stdout.write(JSON.stringify({ seconds, frames, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }) + "\n");
