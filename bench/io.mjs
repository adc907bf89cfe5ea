// `npm run bench:io`: extxyz read/write and read as `relabel rank` reads a pool, ASE trajectory and LAMMPS dump read,
// a folder of one-frame files, vasprun.xml parse and features per structure (mace_eval_configs descriptors)
// throughput, side by side with ASE 3.22 (Debian's python3-ase, run with /usr/bin/python3). Generated inputs live in
// bench/.data (git-ignored).
import { execFileSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { writeExtxyzFrame } from "../dist/core/formats/extxyz.js";
import { readExtxyz } from "../dist/io/extxyz.js";
import { seededRandom } from "./prng.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const dataDir = path.join(here, ".data");
const PY = "/usr/bin/python3";
mkdirSync(dataDir, { recursive: true });

function ensureAse() {
  try {
    execFileSync(PY, ["-c", "import ase"], { stdio: "ignore" });
  } catch {
    console.error("bench:io needs ASE 3.22 from Debian: apt-get install -y python3-ase");
    process.exit(1);
  }
}

/**
 * A training set like the ones MACE fine-tunes on: 20,000 frames of 32 atoms with REF_energy/forces/stress.
 * Values carry 8 decimals, as ASE writes atom columns (%16.8f) and as VASP prints energies.
 */
async function makeTrainingSet(file, nframes = 20000, natoms = 32) {
  if (existsSync(file)) return;
  const random = seededRandom(42);
  const rand = () => Math.round(random() * 1e8) / 1e8;
  const out = createWriteStream(file);
  const symbols = Array.from({ length: natoms }, (_, i) => (i % 3 === 0 ? "O" : "Si"));
  for (let f = 0; f < nframes; f++) {
    const a = 8 + rand();
    const positions = Float64Array.from({ length: 3 * natoms }, () => Math.round(rand() * a * 1e8) / 1e8);
    const forces = Float64Array.from({ length: 3 * natoms }, () => Math.round((rand() - 0.5) * 4e8) / 1e8);
    const frame = {
      natoms,
      symbols,
      positions,
      cell: new Float64Array([a, 0, 0, 0, a, 0, 0, 0, a]),
      pbc: [true, true, true],
      info: new Map([
        ["REF_energy", { kind: "float", value: Math.round((-5.4 * natoms + rand()) * 1e8) / 1e8 }],
        ["REF_stress", { kind: "array", dtype: "float", shape: [6], data: Array.from({ length: 6 }, () => Math.round((rand() - 0.5) * 1e6) / 1e8) }],
        ["config_type", { kind: "string", value: "bulk" }],
      ]),
      arrays: new Map([["REF_forces", { dtype: "R", ncols: 3, data: forces }]]),
    };
    if (!out.write(writeExtxyzFrame(frame))) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}

/**
 * Descriptors as `mace_eval_configs --return_descriptors --descriptor_aggregation_method mean` leaves them: 20,000
 * 8-atom cells, each with a 256-value MACE_descriptors vector written as ASE writes one (every digit of each float).
 */
async function makeFeatureFile(file, nframes = 20000, natoms = 8, width = 256) {
  if (existsSync(file)) return;
  const random = seededRandom(7);
  const out = createWriteStream(file);
  const symbols = Array.from({ length: natoms }, (_, i) => (i === 0 ? "Ni" : "Cu"));
  for (let f = 0; f < nframes; f++) {
    const frame = {
      natoms,
      symbols,
      positions: Float64Array.from({ length: 3 * natoms }, () => Math.round(random() * 5e8) / 1e8),
      cell: new Float64Array([5, 0, 0, 0, 5, 0, 0, 0, 5]),
      pbc: [true, true, true],
      info: new Map([
        ["MACE_energy", { kind: "float", value: -4 * natoms + random() }],
        ["MACE_descriptors", { kind: "array", dtype: "float", shape: [width], data: Array.from({ length: width }, () => random() - 0.5) }],
      ]),
      arrays: new Map(),
    };
    if (!out.write(writeExtxyzFrame(frame))) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}

/** A vasprun.xml of at least `minBytes`, made by repeating the <calculation> blocks of a real VASP 5.4.4 MD run. */
async function makeBigVasprun(file, minBytes = 210 * 1024 * 1024) {
  if (existsSync(file)) return;
  const template = readFileSync(path.join(here, "..", "examples", "sample-data", "vasp", "dpdata_h2o_md10", "vasprun.xml"), "latin1");
  const first = template.indexOf("<calculation>");
  const last = template.lastIndexOf("</calculation>") + "</calculation>".length;
  const head = template.slice(0, first);
  const body = template.slice(first, last);
  const tail = template.slice(last);
  const out = createWriteStream(file, { encoding: "latin1" });
  out.write(head);
  let size = head.length;
  while (size < minBytes) {
    if (!out.write(body + "\n")) await once(out, "drain");
    size += body.length + 1;
  }
  out.write(tail);
  out.end();
  await once(out, "finish");
}

/** The training set's frames as a LAMMPS `dump custom id type x y z` (type 1 = O, 2 = Si), as LAMMPS MD writes it. */
async function makeLammpsDump(fromExtxyz, file) {
  if (existsSync(file)) return;
  const out = createWriteStream(file);
  let step = 0;
  for await (const f of readExtxyz(fromExtxyz)) {
    const c = f.cell;
    const lines = [`ITEM: TIMESTEP\n${10 * step++}\nITEM: NUMBER OF ATOMS\n${f.natoms}\nITEM: BOX BOUNDS pp pp pp\n0 ${c[0]}\n0 ${c[4]}\n0 ${c[8]}\nITEM: ATOMS id type x y z\n`];
    for (let i = 0; i < f.natoms; i++) lines.push(`${i + 1} ${f.symbols[i] === "O" ? 1 : 2} ${f.positions[3 * i]} ${f.positions[3 * i + 1]} ${f.positions[3 * i + 2]}\n`);
    if (!out.write(lines.join(""))) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}

/** The first `count` frames of the training set as one extxyz file each, as a frame-per-file trajectory folder. */
async function makeFrameFolder(fromExtxyz, dir, count = 5000) {
  if (existsSync(dir)) return;
  mkdirSync(`${dir}.partial`, { recursive: true });
  let i = 0;
  for await (const f of readExtxyz(fromExtxyz)) {
    if (i === count) break;
    writeFileSync(path.join(`${dir}.partial`, `${String(i).padStart(5, "0")}.extxyz`), writeExtxyzFrame(f));
    i++;
  }
  renameSync(`${dir}.partial`, dir);
}

function folderBytes(dir) {
  return readdirSync(dir).reduce((n, name) => n + statSync(path.join(dir, name)).size, 0);
}

function runJson(cmd, args) {
  return JSON.parse(execFileSync(cmd, args, { maxBuffer: 1 << 20 }).toString().trim().split("\n").pop());
}

function row(name, bytes, ours, ase) {
  const mb = bytes / 1e6;
  const fmt = (r) => `${(mb / r.seconds).toFixed(1).padStart(7)} MB/s ${(r.frames / r.seconds).toFixed(0).padStart(8)} frames/s ${r.peak_rss_mb.toFixed(0).padStart(5)} MiB RSS`;
  console.log(`${name.padEnd(14)} ours ${fmt(ours)} | ASE ${fmt(ase)} | ratio ${(ase.seconds / ours.seconds).toFixed(1)}x`);
  return { name, mb, ours, ase, ratio: ase.seconds / ours.seconds };
}

ensureAse();
const trainSet = path.join(dataDir, "train-20000x32-8dp.extxyz");
const bigXml = path.join(dataDir, "vasprun-210MB.xml");
const trainTraj = path.join(dataDir, "train-20000x32.traj");
const trainDump = path.join(dataDir, "train-20000x32.lammpstrj");
const child = path.join(here, "io-child.mjs");
const pyChild = path.join(here, "io_ase.py");
console.error("generating inputs in bench/.data (first run only) ...");
await makeTrainingSet(trainSet);
await makeBigVasprun(bigXml);
if (!existsSync(trainTraj)) runJson(PY, [pyChild, "traj-write", trainSet, trainTraj]);
await makeLammpsDump(trainSet, trainDump);
const frameFolder = path.join(dataDir, "frames-5000x32");
await makeFrameFolder(trainSet, frameFolder);
const featureFile = path.join(dataDir, "descriptors-20000x256.xyz");
await makeFeatureFile(featureFile);

const scratch = path.join(dataDir, "written");
const results = [];
const xyzBytes = statSync(trainSet).size;
const xmlBytes = statSync(bigXml).size;
const trajBytes = statSync(trainTraj).size;
const dumpBytes = statSync(trainDump).size;
console.log(`inputs: ${trainSet} (${(xyzBytes / 1e6).toFixed(1)} MB), the same frames as ${trainTraj} (${(trajBytes / 1e6).toFixed(1)} MB) and ${trainDump} (${(dumpBytes / 1e6).toFixed(1)} MB), ${bigXml} (${(xmlBytes / 1e6).toFixed(1)} MB)`);
results.push(row("extxyz read", xyzBytes, runJson("node", [child, "extxyz-read", trainSet]), runJson(PY, [pyChild, "extxyz-read", trainSet])));
results.push(row("extxyz as pool", xyzBytes, runJson("node", [child, "extxyz-pool", trainSet]), runJson(PY, [pyChild, "extxyz-read", trainSet])));
results.push(row("extxyz write", xyzBytes, runJson("node", [child, "extxyz-write", trainSet, `${scratch}-ours.extxyz`]), runJson(PY, [pyChild, "extxyz-write", trainSet, `${scratch}-ase.extxyz`])));
results.push(row("traj read", trajBytes, runJson("node", [child, "traj-read", trainTraj]), runJson(PY, [pyChild, "traj-read", trainTraj])));
results.push(row("LAMMPS dump", dumpBytes, runJson("node", [child, "dump-read", trainDump]), runJson(PY, [pyChild, "dump-read", trainDump])));
results.push(row("frame folder", folderBytes(frameFolder), runJson("node", [child, "folder-read", frameFolder]), runJson(PY, [pyChild, "folder-read", frameFolder])));
results.push(row("features", statSync(featureFile).size, runJson("node", [child, "features-read", featureFile]), runJson(PY, [pyChild, "features-read", featureFile])));
results.push(row("vasprun.xml", xmlBytes, runJson("node", [child, "vasprun-read", bigXml]), runJson(PY, [pyChild, "vasprun-read", bigXml])));
rmSync(`${scratch}-ours.extxyz`, { force: true });
rmSync(`${scratch}-ase.extxyz`, { force: true });

console.log("\nREADME rows:");
for (const r of results) {
  console.log(`| ${r.name} | ${(r.mb / r.ours.seconds).toFixed(0)} MB/s, ${(r.ours.frames / r.ours.seconds).toFixed(0)} frames/s, ${r.ours.peak_rss_mb.toFixed(0)} MiB RSS | ${(r.mb / r.ase.seconds).toFixed(1)} MB/s, ${r.ase.peak_rss_mb.toFixed(0)} MiB RSS | ${r.ratio.toFixed(1)}× |`);
}
