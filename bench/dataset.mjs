// `npm run bench:dataset`: throughput and peak memory of `relabel dataset build` over >= 2 GB of vasprun.xml.
// The runs are generated into bench/.data (git-ignored) from the bundled real runs: each run directory holds a
// vasprun.xml whose <calculation> blocks are those of dpdata_h2o_md10 (MD, 6 atoms) or dpdata_Ti-O-Ti_static_v630
// (static with eigenvalues and DOS, 8 atoms), repeated, with one position nudged per block so that every frame is
// a new structure. The build runs in a child process so that its peak RSS is its own.
// Anchor: bench/dataset-anchor.py rebuilds --anchor-runs runs (default 40, evenly spaced) the ASE way (Debian's
// python3-ase, /usr/bin/python3): read every step, split by run, write extxyz; rates per MB are compared.
// Options: --gb N (default 2), --anchor-runs N, --keep (keep the generated runs; they are deleted otherwise).
import { execFileSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

if (process.argv[2] === "child") {
  // The measured workload: one build, then its wall time and this process's peak RSS as a JSON line.
  const { buildDataset } = await import("../dist/io/dataset.js");
  const [root, out] = process.argv.slice(3);
  const start = performance.now();
  const res = await buildDataset({
    runRoots: [root],
    previous: null,
    out,
    energy: "free",
    frames: "all",
    requireConverged: false,
    head: "omat_pbe",
    configType: "Default",
    fractions: { train: 0.8, valid: 0.1, test: 0.1 },
    seed: 0,
    maxForce: 50,
    energyZ: 5,
    // The two templates differ in ENCUT and PREC; the gate would stop the build before writing.
    allowMixedSettings: true,
    // A small --gb run may leave a split empty; the throughput is what is measured.
    allowEmptySplit: true,
    growTest: false,
  });
  const seconds = (performance.now() - start) / 1000;
  process.stdout.write(
    JSON.stringify({ seconds, written: res.written, errors: res.errors, runs: res.summary.reading.runs_used, frames: res.summary.labels.frames, splits: res.summary.splits, duplicates: res.summary.gates.duplicates.frames, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }) + "\n",
  );
  process.exit(0);
}

const args = process.argv.slice(2);
const gb = Number(args.includes("--gb") ? args[args.indexOf("--gb") + 1] : 2);
const keep = args.includes("--keep");
const anchorRuns = Number(args.includes("--anchor-runs") ? args[args.indexOf("--anchor-runs") + 1] : 40);
const dataDir = path.join(here, ".data");
const runsDir = path.join(dataDir, "dataset-runs");
const outDir = path.join(dataDir, "dataset-out");
const sample = path.join(here, "..", "examples", "sample-data", "vasp");
const RUN_BYTES = 5 * 1024 * 1024;

/** head, <calculation> blocks and tail of a real vasprun.xml. */
function template(run) {
  const xml = readFileSync(path.join(sample, run, "vasprun.xml"), "latin1");
  const first = xml.indexOf("<calculation>");
  const end = xml.lastIndexOf("</calculation>") + "</calculation>".length;
  const blocks = xml.slice(first, end).split(/(?<=<\/calculation>)\s*/).filter((b) => b.includes("<calculation>"));
  return { head: xml.slice(0, first), blocks, tail: xml.slice(end) };
}

/** The block with the first two fractional coordinates of its structure's first atom moved by (k, run) micro-units. */
function nudged(block, k, run) {
  const at = block.indexOf('<varray name="positions" >');
  const rowStart = block.indexOf("<v>", at) + 3;
  const rowEnd = block.indexOf("</v>", rowStart);
  const [x, y, z] = block.slice(rowStart, rowEnd).trim().split(/\s+/).map(Number);
  const row = ` ${(x + (k + 1) * 1e-6).toFixed(8)} ${(y + run * 1e-6).toFixed(8)} ${z.toFixed(8)} `;
  return block.slice(0, rowStart) + row + block.slice(rowEnd);
}

async function writeRun(file, tpl, run) {
  const out = createWriteStream(file, { encoding: "latin1" });
  out.write(tpl.head);
  let size = tpl.head.length;
  for (let k = 0; size < RUN_BYTES; k++) {
    const block = nudged(tpl.blocks[k % tpl.blocks.length], k, run) + "\n";
    size += block.length;
    if (!out.write(block)) await once(out, "drain");
  }
  out.write(tpl.tail);
  out.end();
  await once(out, "finish");
  return size + tpl.tail.length;
}

async function generate(totalBytes) {
  const marker = path.join(runsDir, ".complete");
  if (existsSync(marker) && JSON.parse(readFileSync(marker, "utf8")).totalBytes >= totalBytes) return JSON.parse(readFileSync(marker, "utf8"));
  rmSync(runsDir, { recursive: true, force: true });
  const free = statfsSync(here).bavail * statfsSync(here).bsize;
  if (free < totalBytes * 1.3) throw new Error(`bench:dataset needs ${(totalBytes * 1.3 / 1e9).toFixed(1)} GB free beside bench/, has ${(free / 1e9).toFixed(1)} GB`);
  const templates = [template("dpdata_h2o_md10"), template("dpdata_Ti-O-Ti_static_v630")];
  let bytes = 0;
  let runs = 0;
  while (bytes < totalBytes) {
    const kind = runs % 2 === 0 ? "h2o" : "tio";
    const dir = path.join(runsDir, `batch${String(Math.floor(runs / 100)).padStart(2, "0")}`, `${kind}-${String(runs).padStart(4, "0")}`);
    mkdirSync(dir, { recursive: true });
    bytes += await writeRun(path.join(dir, "vasprun.xml"), templates[runs % 2], runs);
    runs++;
  }
  const info = { totalBytes: bytes, runs };
  writeFileSync(marker, JSON.stringify(info));
  return info;
}

mkdirSync(dataDir, { recursive: true });
console.error(`generating >= ${gb} GB of vasprun.xml run directories in ${path.relative(process.cwd(), runsDir)} ...`);
const genStart = performance.now();
const data = await generate(gb * 1e9);
console.error(`  ${data.runs} runs, ${(data.totalBytes / 1e9).toFixed(2)} GB (${((performance.now() - genStart) / 1000).toFixed(0)} s)`);

rmSync(outDir, { recursive: true, force: true });
const result = JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), "child", runsDir, outDir], { maxBuffer: 1 << 20 }).toString().trim().split("\n").pop());
if (!result.written) throw new Error(`build refused: ${result.errors.join("; ")}`);
const outBytes = ["train", "valid", "test"].reduce((n, s) => n + (existsSync(path.join(outDir, `${s}.extxyz`)) ? statSync(path.join(outDir, `${s}.extxyz`)).size : 0), 0);

const mb = data.totalBytes / 1e6;
console.log(`dataset build: ${data.runs} runs, ${mb.toFixed(0)} MB of vasprun.xml -> ${result.frames} frames (${(outBytes / 1e6).toFixed(0)} MB extxyz; train/valid/test frames ${result.splits.train.frames}/${result.splits.valid.frames}/${result.splits.test.frames}, duplicates ${result.duplicates})`);
console.log(`  ${result.seconds.toFixed(1)} s: ${(result.runs / result.seconds).toFixed(1)} runs/s, ${(mb / result.seconds).toFixed(1)} MB/s, ${(result.frames / result.seconds).toFixed(0)} frames/s, peak RSS ${result.peak_rss_mb.toFixed(0)} MiB (target < 500 MB)`);
rmSync(outDir, { recursive: true, force: true });

const anchor = JSON.parse(
  execFileSync("/usr/bin/python3", [path.join(here, "dataset-anchor.py"), runsDir, outDir, String(anchorRuns)], { maxBuffer: 1 << 20 }).toString().trim().split("\n").pop(),
);
const anchorMb = anchor.bytes / 1e6;
console.log(
  `ASE (${anchor.runs} runs, ${anchorMb.toFixed(0)} MB; read every step, split, write extxyz, no gates): ${anchor.seconds.toFixed(1)} s, ` +
    `${(anchorMb / anchor.seconds).toFixed(1)} MB/s, ${(anchor.frames / anchor.seconds).toFixed(0)} frames/s, peak RSS ${anchor.peak_rss_mb.toFixed(0)} MiB` +
    `  | relabel is ${((mb / result.seconds) / (anchorMb / anchor.seconds)).toFixed(1)}x faster per MB; frames per MB ${(result.frames / mb).toFixed(2)} (relabel) vs ${(anchor.frames / anchorMb).toFixed(2)} (ASE)`,
);
rmSync(outDir, { recursive: true, force: true });
if (!keep) rmSync(runsDir, { recursive: true, force: true });
