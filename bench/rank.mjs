// Benchmark of the candidate ranking core: greedy farthest-point selection (N = 1e4, 1e5, 1e6 rows,
// D = 100, k = 1000) against the same greedy selection in NumPy, `relabel rank` as a whole process
// (N = 1e5, pool parsing included) against the reference workflow as a whole process, and descriptor
// throughput on 64-atom periodic cells against ASE + NumPy (bench/descriptors-anchor.py). Run `npm run build` first; then
// `node bench/rank.mjs [--quick] [--million] [--only descriptors|whole|features]` (--only skips the other parts
// and writes no results file; --million adds `relabel rank` as a whole process at N = 1e6, a few minutes and a
// 386 MB pool written once; features: `relabel rank --features EVAL.xyz`, features per structure in extxyz).
//
// Synthetic features (seeded, written once to bench/.data, which is gitignored):
//   mixture: 50 clusters; each row = centre + A_c z + noise, z ~ N(0, diag(1, 1/2, ..., 1/8)) in 8
//            dimensions, A_c a random 100 x 8 map, noise N(0, 0.01^2): a low-dimensional, clustered
//            cloud as descriptors of MD snapshots are;
//   uniform: every value uniform in [0, 1), the worst case for the pruning (N = 1e5 only).
// Each selection runs in its own child process so that its peak RSS is its own. The machine may be
// shared: selections and the tuned NumPy run 3 times for N <= 1e5 and the fastest run is reported.
//
// Whole process: a pool of 1e5 distinct 8-atom periodic cells (extxyz, written once to bench/.data) with
// the 1e5 x 100 feature matrices as .npy; timed from spawn to exit:
//   ours:      relabel rank --pool POOL --features X.npy --scaling none --select 1000 -o OUT
//              (and with --select 1: what the process costs without the selection's work)
//   pipeline:  python3 rank-anchor.py --pipeline (ASE reads the pool, np.load, tuned selection, ASE writes)
//   tuned:     python3 rank-anchor.py with the tuned selection alone (interpreter, import, load included).
// ours and tuned run in alternated pairs; the report gives the fastest of each side and the median of the pairs'
// ratios, since the machine's load drifts between runs.

import { spawnSync } from "node:child_process";
import {
  closeSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync,
} from "node:fs";
import { createInterface } from "node:readline";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { seededRandom } from "./prng.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, "../dist");
const dataDir = path.join(here, ".data");
const PYTHON = "/usr/bin/python3";
const D = 100;
const K = 1000;
// Pairs of whole-process runs (ours and the tuned NumPy) per feature set; even, so that each goes first as often.
const WHOLE_PAIRS = 6;

function gaussian(next) {
  let u = 0;
  while (u === 0) u = next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
}

function featureFile(kind, n) {
  const file = path.join(dataDir, `features-${kind}-${n}x${D}.f32`);
  if (existsSync(file) && statSync(file).size === n * D * 4) return file;
  mkdirSync(dataDir, { recursive: true });
  const next = seededRandom(kind === "mixture" ? 7 : 2);
  const clusters = 50, dims = 8;
  const centres = Array.from({ length: clusters }, () => Float64Array.from({ length: D }, () => gaussian(next) * 3));
  const maps = Array.from({ length: clusters }, () => Float64Array.from({ length: D * dims }, () => gaussian(next)));
  const fd = openSync(file, "w");
  const chunkRows = 10000;
  const chunk = new Float32Array(chunkRows * D);
  const z = new Float64Array(dims);
  for (let start = 0; start < n; start += chunkRows) {
    const rows = Math.min(chunkRows, n - start);
    for (let r = 0; r < rows; r++) {
      if (kind === "uniform") {
        for (let j = 0; j < D; j++) chunk[r * D + j] = next();
        continue;
      }
      const c = Math.floor(next() * clusters);
      for (let q = 0; q < dims; q++) z[q] = gaussian(next) / (q + 1);
      const A = maps[c], m = centres[c];
      for (let j = 0; j < D; j++) {
        let v = m[j];
        for (let q = 0; q < dims; q++) v += A[j * dims + q] * z[q];
        chunk[r * D + j] = v + 0.01 * gaussian(next);
      }
    }
    writeSync(fd, new Uint8Array(chunk.buffer, 0, rows * D * 4));
  }
  closeSync(fd);
  return file;
}

function readFeatures(file, n) {
  const data = new Float32Array(n * D);
  const bytes = new Uint8Array(data.buffer);
  const fd = openSync(file, "r");
  for (let offset = 0; offset < bytes.length; ) offset += readSync(fd, bytes, offset, Math.min(1 << 28, bytes.length - offset), offset);
  closeSync(fd);
  return data;
}

async function childSelect(file, n, threads) {
  const { selectCandidatesThreaded } = await import(path.join(dist, "exec/fps-threads.js"));
  const data = readFeatures(file, n);
  const ids = Array.from({ length: n }, (_, i) => `c${i}`);
  const start = performance.now();
  const result = await selectCandidatesThreaded(
    { features: { rows: n, cols: D, data }, ids, k: K, rule: { kind: "weighted", wDiv: 1, wDis: 0 } },
    threads > 0 ? { threads } : {},
  );
  const seconds = (performance.now() - start) / 1000;
  process.stdout.write(JSON.stringify({ seconds, peakRssMb: process.resourceUsage().maxRSS / 1024, picks: result.picks.map((p) => p.index), lazyFrom: result.lazyFrom }));
}

function runChild(args) {
  const out = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--child", ...args.map(String)], {
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  if (out.status !== 0) throw new Error(`child ${args.join(" ")} failed: ${out.stderr}`);
  return JSON.parse(out.stdout);
}

function runNumpy(file, n, variant, picks) {
  const out = spawnSync(PYTHON, [path.join(here, "rank-anchor.py"), file, n, D, K, variant, picks].map(String), {
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  if (out.status !== 0) throw new Error(`numpy ${variant} failed: ${out.stderr}`);
  const result = JSON.parse(out.stdout);
  return { ...result, fullSeconds: (result.seconds * K) / result.picks_run, extrapolated: result.picks_run < K };
}

function samePrefix(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** NumPy's version and the BLAS library it has loaded: Debian picks reference BLAS or OpenBLAS by what is installed. */
function numpyBlas() {
  const script = [
    "import numpy",
    "numpy.ones((2, 2), numpy.float32) @ numpy.ones(2, numpy.float32)",
    "libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l.split()[-1]})",
    "print(numpy.__version__, 'with', ', '.join(libs) or 'no BLAS library found')",
  ].join("\n");
  const out = spawnSync(PYTHON, ["-c", script], { encoding: "utf8" });
  return out.status === 0 ? out.stdout.trim() : `unavailable (${out.stderr.trim().split("\n").pop()})`;
}

const POOL_FRAMES = 100_000;
const POOL_ATOMS = 8;

/** The whole-process pool: distinct 8-atom cells (random positions, 8 decimals), written once. */
function poolFile(frames = POOL_FRAMES) {
  const file = path.join(dataDir, `pool-${frames}x${POOL_ATOMS}.extxyz`);
  if (existsSync(file)) return file;
  mkdirSync(dataDir, { recursive: true });
  const next = seededRandom(13);
  const fd = openSync(file, "w");
  let text = "";
  for (let f = 0; f < frames; f++) {
    const a = (4.2 + next() * 0.2).toFixed(4);
    text += `${POOL_ATOMS}\nLattice="${a} 0.0 0.0 0.0 ${a} 0.0 0.0 0.0 ${a}" Properties=species:S:1:pos:R:3 pbc="T T T"\n`;
    for (let i = 0; i < POOL_ATOMS; i++) {
      const xyz = [0, 1, 2].map(() => (next() * Number(a)).toFixed(8)).join(" ");
      text += `${i % 4 === 0 ? "O" : "Zr"} ${xyz}\n`;
    }
    if (text.length > 1 << 20) {
      writeSync(fd, text);
      text = "";
    }
  }
  writeSync(fd, text);
  closeSync(fd);
  return file;
}

/** The first n rows of a .f32 feature file as a .npy (little-endian float32, C order). */
function npyFile(f32, n) {
  const file = f32.replace(/\.f32$/, ".npy");
  if (existsSync(file)) return file;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${D}), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const prefix = Buffer.alloc(10);
  prefix.write("\x93NUMPY", 0, "latin1");
  prefix[6] = 1;
  prefix.writeUInt16LE(header.length, 8);
  const fd = openSync(file, "w");
  writeSync(fd, Buffer.concat([prefix, Buffer.from(header, "latin1")]));
  writeSync(fd, new Uint8Array(readFeatures(f32, n).buffer));
  closeSync(fd);
  return file;
}

/** Wall time of a child process from spawn to exit; peak RSS when /usr/bin/time is there. */
function timeProcess(command, args) {
  const timed = existsSync("/usr/bin/time");
  const start = performance.now();
  const out = spawnSync(timed ? "/usr/bin/time" : command, timed ? ["-f", "PEAK_RSS_KB=%M", command, ...args] : args, {
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  const seconds = (performance.now() - start) / 1000;
  if (out.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${out.stderr}`);
  const rss = /PEAK_RSS_KB=(\d+)/.exec(out.stderr);
  return { seconds, peakRssMb: rss ? Number(rss[1]) / 1024 : undefined, stdout: out.stdout };
}

function wholeProcess(kind, repeats) {
  const pool = poolFile();
  const features = npyFile(featureFile(kind, POOL_FRAMES), POOL_FRAMES);
  const scratch = mkdtempSync(path.join(os.tmpdir(), "bench-rank-"));
  const relabel = path.resolve(here, "../bin/relabel.js");
  try {
    const rank = (select, out) =>
      timeProcess(process.execPath, [relabel, "rank", "--pool", pool, "--features", features, "--scaling", "none", "--select", select, "-o", out].map(String));
    const tunedProcess = () =>
      timeProcess(PYTHON, [path.join(here, "rank-anchor.py"), featureFile(kind, POOL_FRAMES), POOL_FRAMES, D, K, "tuned"].map(String));
    // The host's load drifts over seconds and moves NumPy's memory-bound process far more than ours, so the two
    // run in pairs, taking turns to go first; each pair's ratio compares runs made seconds apart.
    const pairs = Array.from({ length: repeats }, (_, r) => {
      if (r % 2 === 1) {
        const tuned = tunedProcess();
        return { ours: rank(K, path.join(scratch, `ours-${r}`)), tuned };
      }
      const ours = rank(K, path.join(scratch, `ours-${r}`));
      return { ours, tuned: tunedProcess() };
    });
    const fastest = (runs) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const ours = fastest(pairs.map((p) => p.ours));
    const tuned = fastest(pairs.map((p) => p.tuned));
    const pairRatios = pairs.map((p) => p.tuned.seconds / p.ours.seconds);
    // The same command picking 1: everything but the selection's work (start, pool, ids, .npy, artifacts).
    const floor = fastest(Array.from({ length: Math.min(repeats, 3) }, (_, r) => rank(1, path.join(scratch, `floor-${r}`))));
    const pipeline = timeProcess(PYTHON, [path.join(here, "rank-anchor.py"), "--pipeline", pool, features, K, path.join(scratch, "ase.extxyz")].map(String));
    const picked = JSON.parse(readFileSync(path.join(scratch, "ours-0", "ranking.json"), "utf8")).selected.map((s) => s.frame);
    const pipelinePicks = JSON.parse(pipeline.stdout).picks;
    return {
      data: kind, n: POOL_FRAMES, atomsPerFrame: POOL_ATOMS, ours, floor, tuned, pipeline, samePicks: `${samePrefix(picked, pipelinePicks)}/${K}`,
      pairs: pairs.map((p) => ({ ours: p.ours.seconds, tuned: p.tuned.seconds })),
      medianPairRatio: median(pairRatios),
      pairsAhead: pairRatios.filter((x) => x >= 1).length,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * `relabel rank` on its default baseline descriptors, against the reference workflow with its own
 * descriptors estimated by parts (rank-anchor.py --estimate-descriptors).
 */
function wholeProcessDescriptors(repeats) {
  const pool = poolFile();
  const scratch = mkdtempSync(path.join(os.tmpdir(), "bench-rank-"));
  const relabel = path.resolve(here, "../bin/relabel.js");
  try {
    const ours = Array.from({ length: repeats }, (_, r) =>
      timeProcess(process.execPath, [relabel, "rank", "--pool", pool, "--select", K, "-o", path.join(scratch, `ours-${r}`)].map(String)),
    ).reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const parts = JSON.parse(timeProcess(PYTHON, [path.join(here, "rank-anchor.py"), "--estimate-descriptors", pool, K, 2000].map(String)).stdout);
    const reference = parts.read + parts.describe + parts.select;
    console.log(
      `whole process, baseline descriptors N=${POOL_FRAMES} (${POOL_ATOMS}-atom cells): relabel rank ${ours.seconds.toFixed(2)} s, peak RSS ${ours.peakRssMb?.toFixed(0)} MiB` +
        `  | reference workflow, estimated ${reference.toFixed(0)} s (x${(reference / ours.seconds).toFixed(0)}): ASE read ${parts.read.toFixed(1)} s,` +
        ` neighbour-list descriptors ${parts.describe.toFixed(0)} s (timed on ${parts.described} structures), tuned selection ${parts.select.toFixed(2)} s\n`,
    );
    return { ours, reference: parts };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The pool's frames with the mixture features of each as an info vector (`MACE_descriptors`, 8 decimals as ASE
 * writes them), as `mace_eval_configs --return_descriptors --descriptor_aggregation_method mean` writes them; with
 * `moved`, every x is 3e-7 A off the pool's, so that every structure has another id and is matched by geometry (a pool
 * that prints more digits than the eval file). Written once.
 */
async function structureFeatureFile(frames, moved) {
  const file = path.join(dataDir, `features-mixture-${frames}x${D}${moved ? "-moved" : ""}.xyz`);
  if (existsSync(file)) return file;
  const values = readFeatures(featureFile("mixture", frames), frames);
  const fd = openSync(`${file}.partial`, "w");
  let text = "";
  let frame = -1;
  let natoms = 0;
  let atomsLeft = 0;
  let comment = false;
  for await (const line of createInterface({ input: createReadStream(poolFile(frames)), crlfDelay: Infinity })) {
    if (atomsLeft > 0) {
      const [symbol, x, y, z] = line.split(" ");
      text += `${symbol} ${moved ? (Number(x) + 3e-7).toFixed(8) : x} ${y} ${z}\n`;
      atomsLeft--;
    } else if (comment) {
      const row = Array.from(values.subarray(frame * D, (frame + 1) * D), (v) => v.toFixed(8)).join(" ");
      text += `${line} MACE_descriptors="${row}"\n`;
      comment = false;
      atomsLeft = natoms;
    } else {
      natoms = Number(line);
      frame++;
      comment = true;
      text += `${line}\n`;
    }
    if (text.length > 1 << 20) {
      writeSync(fd, text);
      text = "";
    }
  }
  writeSync(fd, text);
  closeSync(fd);
  renameSync(`${file}.partial`, file);
  return file;
}

/**
 * `relabel rank --features EVAL.xyz` (features per structure, matched to the pool by id, else by geometry) against the
 * reference workflow reading the same file with ASE in pool order (rank-anchor.py --pipeline-features). At N = 1e6
 * (`million`) ours runs alone: the targets are absolute.
 */
async function wholeProcessStructureFeatures(frames, repeats) {
  const pool = poolFile(frames);
  const scratch = mkdtempSync(path.join(os.tmpdir(), "bench-rank-"));
  const relabel = path.resolve(here, "../bin/relabel.js");
  try {
    for (const moved of [false, true]) {
      const features = await structureFeatureFile(frames, moved);
      const runs = Array.from({ length: repeats }, (_, r) =>
        timeProcess(process.execPath, [relabel, "rank", "--pool", pool, "--features", features, "--scaling", "none", "--select", K, "-o", path.join(scratch, `${moved}-${r}`)].map(String)),
      );
      const ours = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
      let anchor = "";
      if (frames <= POOL_FRAMES) {
        const pipeline = timeProcess(PYTHON, [path.join(here, "rank-anchor.py"), "--pipeline-features", pool, features, K, path.join(scratch, "ase.extxyz")].map(String));
        const picked = JSON.parse(readFileSync(path.join(scratch, `${moved}-0`, "ranking.json"), "utf8")).selected.map((s) => s.frame);
        anchor =
          `  | ASE + NumPy pipeline (features read in pool order) ${pipeline.seconds.toFixed(2)} s, peak RSS ${pipeline.peakRssMb?.toFixed(0)} MiB` +
          ` (x${(pipeline.seconds / ours.seconds).toFixed(1)}), same picks ${samePrefix(picked, JSON.parse(pipeline.stdout).picks)}/${K}`;
      }
      console.log(
        `whole process, features by structure (${(statSync(features).size / 1e6).toFixed(0)} MB extxyz${moved ? ", every id differs: matched by geometry" : ""}) N=${frames}:` +
          ` relabel rank ${ours.seconds.toFixed(2)} s, peak RSS ${ours.peakRssMb?.toFixed(0)} MiB (fastest of ${repeats})${anchor}`,
      );
    }
    console.log("");
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** `relabel rank` as a whole process at N = 1e6: no anchor (the targets are absolute: under 60 s). */
function wholeProcessMillion() {
  const frames = 1_000_000;
  const pool = poolFile(frames);
  const features = npyFile(featureFile("mixture", frames), frames);
  const scratch = mkdtempSync(path.join(os.tmpdir(), "bench-rank-"));
  const relabel = path.resolve(here, "../bin/relabel.js");
  try {
    const rows = [
      ["mixture .npy", ["--features", features, "--scaling", "none"]],
      ["baseline descriptors", []],
    ].map(([name, extra], r) => {
      const run = timeProcess(process.execPath, [relabel, "rank", "--pool", pool, ...extra, "--select", K, "-o", path.join(scratch, `million-${r}`)].map(String));
      console.log(`whole process, ${name} N=${frames} (${POOL_ATOMS}-atom cells, a ${(statSync(pool).size / 1e6).toFixed(0)} MB pool): relabel rank ${run.seconds.toFixed(1)} s, peak RSS ${run.peakRssMb?.toFixed(0)} MiB`);
      return { name, ...run };
    });
    console.log("");
    return rows;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function reportWhole(rows) {
  for (const r of rows) {
    const rss = (x) => (x.peakRssMb === undefined ? "" : `, peak RSS ${x.peakRssMb.toFixed(0)} MiB`);
    console.log(
      `whole process, ${r.data.padEnd(7)} N=${r.n} (${r.atomsPerFrame}-atom cells): relabel rank ${r.ours.seconds.toFixed(2)} s${rss(r.ours)}` +
        ` (${r.floor.seconds.toFixed(2)} s with --select 1)` +
        `  | tuned NumPy process ${r.tuned.seconds.toFixed(2)} s (fastest against fastest x${(r.tuned.seconds / r.ours.seconds).toFixed(2)};` +
        ` ${r.pairs.length} alternated pairs: median ratio x${r.medianPairRatio.toFixed(2)}, ours ahead in ${r.pairsAhead})` +
        `  | ASE + NumPy pipeline ${r.pipeline.seconds.toFixed(2)} s${rss(r.pipeline)} (x${(r.pipeline.seconds / r.ours.seconds).toFixed(1)})` +
        `  | same picks as the pipeline: ${r.samePicks}`,
    );
  }
  console.log("  tuned NumPy process: interpreter start, import, np.fromfile and the selection, no pool parsing; each pair runs both");
  console.log("  processes back to back, taking turns to go first (x > 1: ours is faster)");
  console.log("  --select 1: the same relabel rank with no selection work to speak of: what parsing the pool, the ids and the artifacts cost alone\n");
}

function fccFrames(count) {
  const next = seededRandom(11);
  const a = 3.61;
  const basis = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]];
  const rep = [2, 2, 4];
  return Array.from({ length: count }, () => {
    const e = () => (next() - 0.5) * 0.04;
    const strain = [1 + e(), e(), e(), 1 + e(), e(), 1 + e()];
    const cell = Float64Array.from([
      rep[0] * a * strain[0], rep[0] * a * strain[1], rep[0] * a * strain[2],
      rep[1] * a * strain[1], rep[1] * a * strain[3], rep[1] * a * strain[4],
      rep[2] * a * strain[2], rep[2] * a * strain[4], rep[2] * a * strain[5],
    ]);
    const positions = new Float64Array(64 * 3);
    const symbols = [];
    let p = 0;
    for (let i = 0; i < rep[0]; i++) for (let j = 0; j < rep[1]; j++) for (let k = 0; k < rep[2]; k++) {
      for (const b of basis) {
        const f = [(i + b[0]) / rep[0], (j + b[1]) / rep[1], (k + b[2]) / rep[2]];
        for (let c = 0; c < 3; c++) positions[3 * p + c] = f[0] * cell[c] + f[1] * cell[3 + c] + f[2] * cell[6 + c] + (next() - 0.5) * 0.2;
        symbols.push(next() < 0.3 ? "Au" : "Cu");
        p++;
      }
    }
    return { natoms: 64, symbols, positions, cell, pbc: [true, true, true], info: new Map(), arrays: new Map() };
  });
}

/** A float64 .npy as a Float64Array (the anchor writes plain C-order arrays, format version 1 or 2). */
function readFloat64Npy(file) {
  const bytes = readFileSync(file);
  const start = bytes[6] === 1 ? 10 + bytes.readUInt16LE(8) : 12 + bytes.readUInt32LE(8);
  return new Float64Array(bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + bytes.length));
}

/** Largest |ours - anchor| and how many values differ by more than 1e-5 (relative above 1). */
function compareValues(ours, anchor) {
  let largest = 0;
  let differing = 0;
  for (let i = 0; i < ours.length; i++) {
    const gap = Math.abs(ours[i] - anchor[i]);
    largest = Math.max(largest, gap);
    if (gap > 1e-5 * Math.max(1, Math.abs(anchor[i]))) differing++;
  }
  return { largest, differing, values: ours.length };
}

async function descriptorThroughput(count, repeats) {
  const { computeDescriptors, descriptorSpecies } = await import(path.join(dist, "core/select/descriptors.js"));
  const { candidateId } = await import(path.join(dist, "core/select/candidate-id.js"));
  const { readExtxyz, writeExtxyz } = await import(path.join(dist, "io/extxyz.js"));
  // Written once and read back, so that both sides describe the same parsed structures.
  const file = path.join(dataDir, `fcc-${count}x64.extxyz`);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    await writeExtxyz(file, fccFrames(count));
  }
  const frames = [];
  for await (const frame of readExtxyz(file)) frames.push(frame);
  const species = descriptorSpecies(frames);
  const best = (fn) => {
    let seconds = Infinity;
    let result;
    for (let r = 0; r < repeats; r++) {
      const start = performance.now();
      result = fn();
      seconds = Math.min(seconds, (performance.now() - start) / 1000);
    }
    return { seconds, result };
  };
  const ours = {
    baseline: best(() => computeDescriptors(frames, { kind: "baseline", species })),
    elementPairs: best(() => computeDescriptors(frames, { kind: "element-pairs", species })),
    candidateId: best(() => frames.map((f) => candidateId(f))),
  };
  const scratch = mkdtempSync(path.join(os.tmpdir(), "bench-descriptors-"));
  try {
    // The anchor describes the first structures only (tens of milliseconds each); rates are per structure.
    const first = Math.min(count, 1000);
    const run = spawnSync(PYTHON, [path.join(here, "descriptors-anchor.py"), file, path.join(scratch, "%s.npy"), String(first)], {
      encoding: "utf8",
      maxBuffer: 256 << 20,
    });
    if (run.status !== 0) throw new Error(`descriptors-anchor.py failed: ${run.stderr}`);
    const anchor = JSON.parse(run.stdout);
    const rate = (seconds, structures = count) => ({ structuresPerSecond: structures / seconds, atomsPerSecond: (structures * 64) / seconds });
    const out = {};
    for (const name of ["baseline", "elementPairs"]) {
      const mine = ours[name].result;
      out[name] = {
        ...rate(ours[name].seconds),
        anchor: rate(anchor.seconds[name], first),
        agreement: compareValues(mine.data.subarray(0, first * mine.cols), readFloat64Npy(path.join(scratch, `${name}.npy`))),
      };
    }
    const sameIds = anchor.ids.filter((id, i) => id === ours.candidateId.result[i]).length;
    out.candidateId = { ...rate(ours.candidateId.seconds), anchor: rate(anchor.seconds.candidateId, first), sameIds: `${sameIds}/${first}` };
    return out;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function reportDescriptors(quick) {
  const descriptors = await descriptorThroughput(quick ? 5000 : 20_000, 3);
  for (const [name, r] of Object.entries(descriptors)) {
    const check = r.agreement
      ? `max |difference| ${r.agreement.largest.toExponential(1)}, ${r.agreement.differing} of ${r.agreement.values} values differ by more than 1e-5`
      : `same ids: ${r.sameIds}`;
    console.log(
      `${name.padEnd(13)} ${r.structuresPerSecond.toFixed(0).padStart(7)} structures/s  ${(r.atomsPerSecond / 1e6).toFixed(2)} M atoms/s` +
        `  | ASE + NumPy ${r.anchor.structuresPerSecond.toFixed(0)} structures/s (x${(r.structuresPerSecond / r.anchor.structuresPerSecond).toFixed(1)})  | ${check}`,
    );
  }
  console.log("  64-atom periodic cells, one thread; the anchor (bench/descriptors-anchor.py) uses ASE's neighbour list and hashlib\n");
  return descriptors;
}

async function main() {
  if (process.argv[2] === "--child") {
    const [, , , file, n, threads] = process.argv;
    await childSelect(file, Number(n), Number(threads));
    return;
  }
  if (!existsSync(path.join(dist, "exec/fps-threads.js"))) {
    console.error("dist/ is missing: run `npm run build` first");
    process.exit(1);
  }
  const quick = process.argv.includes("--quick");
  const onlyAt = process.argv.indexOf("--only");
  const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
  if (onlyAt >= 0 && only !== "descriptors" && only !== "whole" && only !== "features") {
    console.error(`--only takes "descriptors", "whole" or "features" (got ${only ?? "nothing"})`);
    process.exit(1);
  }
  if (only === "descriptors") {
    await reportDescriptors(quick);
    return;
  }
  const million = process.argv.includes("--million");
  const numpy = numpyBlas();
  if (numpy.startsWith("unavailable")) {
    console.error(`the NumPy anchor cannot run: ${PYTHON} has no NumPy (${numpy}); install Debian's python3-numpy and python3-ase`);
    process.exit(1);
  }
  console.log(`numpy: ${numpy}; OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? "(unset)"}`);
  const { kernelChoiceFromEnv, nativeKernels } = await import(path.join(dist, "exec/native-kernels.js"));
  console.log(`selection kernels: ${nativeKernels(kernelChoiceFromEnv()) ? "native (AVX-512 VNNI)" : "WebAssembly"} (RELABEL_KERNELS=wasm forces WebAssembly)`);
  if (only === "features") {
    await wholeProcessStructureFeatures(POOL_FRAMES, quick ? 1 : 2);
    if (million) await wholeProcessStructureFeatures(1_000_000, 1);
    return;
  }
  if (only === "whole") {
    reportWhole(["mixture", "uniform"].map((kind) => wholeProcess(kind, quick ? 2 : WHOLE_PAIRS)));
    wholeProcessDescriptors(quick ? 1 : 2);
    if (million) wholeProcessMillion();
    return;
  }
  console.log(`node ${process.version}, ${(await import("node:os")).availableParallelism()} cores\n`);
  const cases = [
    { kind: "mixture", n: 10_000, repeats: 3, straightPicks: K, tunedPicks: K },
    { kind: "mixture", n: 100_000, repeats: 3, straightPicks: 100, tunedPicks: K, oneThread: true },
    { kind: "uniform", n: 100_000, repeats: 1, straightPicks: 50, tunedPicks: K },
    ...(quick ? [] : [{ kind: "mixture", n: 1_000_000, repeats: 1, straightPicks: 10, tunedPicks: 200 }]),
  ];
  const results = [];
  for (const c of cases) {
    const file = featureFile(c.kind, c.n);
    const runs = Array.from({ length: c.repeats }, () => runChild([file, c.n, 0]));
    const ours = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const single = c.oneThread ? runChild([file, c.n, 1]) : undefined;
    const straight = runNumpy(file, c.n, "straightforward", c.straightPicks);
    const tunedRuns = Array.from({ length: c.repeats }, () => runNumpy(file, c.n, "tuned", c.tunedPicks));
    const tuned = tunedRuns.reduce((a, b) => (b.fullSeconds < a.fullSeconds ? b : a));
    const row = {
      data: c.kind,
      n: c.n,
      oursSeconds: ours.seconds,
      oursPeakRssMb: ours.peakRssMb,
      oursOneThreadSeconds: single?.seconds,
      oursLazyFrom: ours.lazyFrom,
      numpyStraightSeconds: straight.fullSeconds,
      numpyStraightExtrapolated: straight.extrapolated,
      numpyTunedSeconds: tuned.fullSeconds,
      numpyTunedExtrapolated: tuned.extrapolated,
      speedupVsStraight: straight.fullSeconds / ours.seconds,
      speedupVsTuned: tuned.fullSeconds / ours.seconds,
      picksAgreeWithStraight: `${samePrefix(ours.picks, straight.picks)}/${straight.picks.length}`,
      picksAgreeWithTuned: `${samePrefix(ours.picks, tuned.picks)}/${tuned.picks.length}`,
    };
    results.push(row);
    const mark = (extrapolated) => (extrapolated ? "*" : "");
    console.log(
      `${c.kind.padEnd(8)} N=${String(c.n).padStart(7)}  ours ${ours.seconds.toFixed(2)} s (peak RSS ${ours.peakRssMb.toFixed(0)} MiB)` +
        (single ? `, 1 thread ${single.seconds.toFixed(2)} s` : "") +
        (ours.lazyFrom === null ? "" : `, lazy after pick ${ours.lazyFrom}`) +
        `  | numpy straightforward ${straight.fullSeconds.toFixed(2)} s${mark(straight.extrapolated)} (x${row.speedupVsStraight.toFixed(1)})` +
        `  | numpy tuned ${tuned.fullSeconds.toFixed(2)} s${mark(tuned.extrapolated)} (x${row.speedupVsTuned.toFixed(2)})` +
        `  | same picks: ${row.picksAgreeWithStraight} straightforward, ${row.picksAgreeWithTuned} tuned`,
    );
  }
  console.log("  * extrapolated from the first picks (time per pick x 1000)\n");
  const whole = ["mixture", "uniform"].map((kind) => wholeProcess(kind, quick ? 2 : WHOLE_PAIRS));
  reportWhole(whole);
  const wholeDescriptors = wholeProcessDescriptors(quick ? 1 : 2);
  await wholeProcessStructureFeatures(POOL_FRAMES, quick ? 1 : 2);
  const wholeMillion = million ? wholeProcessMillion() : undefined;
  if (million) await wholeProcessStructureFeatures(1_000_000, 1);
  const descriptors = await reportDescriptors(quick);
  writeFileSync(path.join(dataDir, "rank-results.json"), JSON.stringify({ selection: results, whole, wholeDescriptors, wholeMillion, descriptors }, null, 2));
}

await main();
