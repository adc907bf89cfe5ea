import { mkdtempSync, readFileSync, writeFileSync, cpSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseExtxyz } from "../../src/core/formats/extxyz.js";
import { infoNumber, type Frame } from "../../src/core/structure.js";
import { aseReference, realPath } from "../helpers/real-data.js";
import { runCli } from "../helpers/run-cli.js";

const tmp = () => mkdtempSync(path.join(tmpdir(), "relabel-convert-"));

describe("relabel convert", () => {
  it("labels every DFT step of a run tree with the free energy by default", async () => {
    const out = path.join(tmp(), "all.extxyz");
    const res = await runCli("convert", realPath("vasp/dpdata_h2o_md10"), realPath("vasp/dpdata_Ti-O-Ti_static_v630"), "-o", out);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const frames = parseExtxyz(readFileSync(out), out).map((f) => f.frame);
    expect(frames).toHaveLength(11);
    const ref = aseReference()["vasp/dpdata_h2o_md10/vasprun.xml"].frames!;
    frames.slice(0, 10).forEach((f, i) => {
      expect(infoNumber(f, "REF_energy")).toBeCloseTo(ref[i].free_energy!, 6);
      expect(infoNumber(f, "REF_energy_sigma0")).toBeCloseTo(ref[i].energy!, 6);
      expect(f.info.get("source")).toEqual({ kind: "string", value: "dpdata_h2o_md10" });
      expect(f.info.get("ionic_step")).toEqual({ kind: "int", value: i });
    });
    expect(res.stdout).toMatch(/wrote 11 frames from 2 of 2 inputs/);
  });

  it("uses the sigma->0 energy with --energy sigma0 and keeps only the last step with --frames final", async () => {
    const out = path.join(tmp(), "final.extxyz");
    const res = await runCli("convert", realPath("vasp/dpdata_h2o_md10"), "-o", out, "--energy", "sigma0", "--frames", "final");
    expect(res.code).toBe(0);
    const frames = parseExtxyz(readFileSync(out), out).map((f) => f.frame);
    expect(frames).toHaveLength(1);
    const last = aseReference()["vasp/dpdata_h2o_md10/vasprun.xml"].frames!.at(-1)!;
    expect(infoNumber(frames[0], "REF_energy")).toBeCloseTo(last.energy!, 6);
    expect(frames[0].info.get("ionic_step")).toEqual({ kind: "int", value: 9 });
  });

  it("names run ids relative to the input root for a tree of runs", async () => {
    const root = tmp();
    cpSync(realPath("vasp/dpdata_Ti-O-Ti_static_v630"), path.join(root, "batch1", "TiO"), { recursive: true });
    const out = path.join(root, "out.extxyz");
    const res = await runCli("convert", root, "-o", out);
    expect(res.code).toBe(0);
    const frame = parseExtxyz(readFileSync(out), out)[0].frame;
    expect(frame.info.get("source")).toEqual({ kind: "string", value: "batch1/TiO" });
  });

  it("keeps going past a bad file, reports it in one line and exits 1", async () => {
    const dir = tmp();
    const bad = path.join(dir, "broken.xyz");
    writeFileSync(bad, "2\nLattice=\"1 0 0 0 1 0 0 0 1\"\nH 0 0 0\n");
    const out = path.join(dir, "out.extxyz");
    const res = await runCli("convert", bad, realPath("vasp/dpdata_Ti-O-Ti_static_v630"), "-o", out);
    expect(res.code).toBe(1);
    const lines = res.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^error: ${bad.replace(/[.]/g, "\\.")}:\\d+: `));
    expect(parseExtxyz(readFileSync(out), out)).toHaveLength(1);
  });

  it("refuses a file that is not VASP output or extxyz", async () => {
    const dir = tmp();
    const junk = path.join(dir, "notes.txt");
    writeFileSync(junk, "hello\n");
    const res = await runCli("convert", junk, "-o", path.join(dir, "o.extxyz"));
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`error: ${junk}:1: not a recognised input: expected extxyz, vasprun.xml, OUTCAR or a run directory\n`);
    // Structures without labels: what to do with them instead.
    const xdatcar = path.join(realPath("vasp/custodian_lobster_NaCl_static"), "XDATCAR");
    const trajectory = await runCli("convert", xdatcar, "-o", path.join(dir, "t.extxyz"));
    expect(trajectory.code).toBe(1);
    expect(trajectory.stderr).toBe(
      `error: ${xdatcar}:1: holds structures without DFT labels: rank them as a candidate pool (relabel rank --pool); expected extxyz, vasprun.xml, OUTCAR or a run directory\n`,
    );
  });

  it("reports cross-check disagreements between vasprun.xml and OUTCAR", async () => {
    const dir = tmp();
    cpSync(realPath("vasp/dpdata_h2o_md10"), dir, { recursive: true });
    const outcar = path.join(dir, "OUTCAR");
    // Shift one ionic step's TOTEN by 1 eV in the OUTCAR only.
    writeFileSync(outcar, readFileSync(outcar, "latin1").replace("free  energy   TOTEN  =       -28.38622624 eV", "free  energy   TOTEN  =       -27.38622624 eV"), "latin1");
    const res = await runCli("convert", dir, "-o", path.join(dir, "o.extxyz"));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/vasprun\.xml\/OUTCAR disagree: step 0: free energy -28\.38622624 vs -27\.38622624 eV in OUTCAR/);
  });

  it("answers usage errors with exit code 2 and the usage line", async () => {
    const noOut = await runCli("convert", realPath("vasp/dpdata_h2o_md10"));
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toMatch(/-o OUT\.extxyz is required\nusage: relabel convert/);
    const badEnergy = await runCli("convert", "x", "-o", "y", "--energy", "total");
    expect(badEnergy.code).toBe(2);
    expect(badEnergy.stderr).toMatch(/--energy must be one of free, sigma0/);
    const unknown = await runCli("convert", "--frobnicate");
    expect(unknown.code).toBe(2);
  });

  it("creates the output's parent folders", async () => {
    const dir = tmp();
    const res = await runCli("convert", realPath("vasp/dpdata_h2o_md10"), "-o", path.join(dir, "missing-parent", "x", "o.extxyz"));
    expect(res.code).toBe(0);
    expect(existsSync(path.join(dir, "missing-parent", "x", "o.extxyz"))).toBe(true);
  });
});

const framesOf = (file: string): Frame[] => parseExtxyz(readFileSync(file), file).map((f) => f.frame);
const escaped = (p: string) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("relabel convert: output", () => {
  it("leaves an existing output as it was when no input gives a frame, and says so", async () => {
    const dir = tmp();
    const out = path.join(dir, "keep.extxyz");
    expect((await runCli("convert", realPath("vasp/dpdata_h2o_md10"), "-o", out)).code).toBe(0);
    const before = readFileSync(out);
    const typo = realPath("vasp/dpdata_h2o_md1O");
    const res = await runCli("convert", typo, "-o", out);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`error: ${typo}: no such file or directory\n`);
    expect(res.stdout).toBe(`no frame converted from 1 input: ${out} left as it was\n`);
    expect(readFileSync(out)).toEqual(before);
    // Nor is an empty file left where there was none, nor the temporary file.
    const fresh = path.join(dir, "fresh.extxyz");
    expect((await runCli("convert", typo, "-o", fresh)).stdout).toBe(`no frame converted from 1 input: ${fresh} not written\n`);
    expect(readdirSync(dir)).toEqual(["keep.extxyz"]);
  });

  it("writes extxyz to stdout with -o -, the summary on stderr", async () => {
    const dir = tmp();
    const res = await runCli("convert", realPath("vasp/dpdata_Ti-O-Ti_static_v630"), "-o", "-");
    expect(res.code).toBe(0);
    const frames = parseExtxyz(res.stdout, "stdout").map((f) => f.frame);
    expect(frames).toHaveLength(1);
    expect(frames[0].info.get("source")).toEqual({ kind: "string", value: "dpdata_Ti-O-Ti_static_v630" });
    expect(res.stderr).toBe("wrote 1 frame from 1 of 1 input to stdout: 1 VASP step (REF_energy = free energy)\n");
    expect(existsSync(path.join(dir, "-"))).toBe(false);
    expect(existsSync("-")).toBe(false);
  });
});

describe("relabel convert: inputs that give no frame", () => {
  it("exits 1 and names each input without a DFT step, with why, in one line", async () => {
    const crashed = realPath("vasp/custodian_large_cell_crashed_at_start");
    const unfinished = realPath("vasp/aiidavasp_Si_static_unfinished/OUTCAR");
    const dir = tmp();
    const res = await runCli("convert", crashed, unfinished, realPath("vasp/dpdata_Ti-O-Ti_static_v630"), "-o", path.join(dir, "o.extxyz"));
    expect(res.code).toBe(1);
    expect(res.stderr.split("\n").filter(Boolean)).toEqual([
      `error: ${crashed} (vasprun.xml): no complete DFT step: the run stopped before its first ionic step finished (cut at line 442, after </parameters>, before any <calculation>)`,
      expect.stringMatching(new RegExp(`^error: ${escaped(unfinished)}: no complete DFT step: the run stopped before its first ionic step finished \\(cut at line \\d+: .*inside DFT ionic step 1`)),
    ]);
    expect(res.stdout).toMatch(/^wrote 1 frame from 1 of 3 inputs to /);
    expect(framesOf(path.join(dir, "o.extxyz"))).toHaveLength(1);
  });

  it("exits 1 for an empty extxyz file", async () => {
    const dir = tmp();
    const empty = path.join(dir, "empty.xyz");
    writeFileSync(empty, "");
    const res = await runCli("convert", empty, "-o", path.join(dir, "o.extxyz"));
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`error: ${empty}: no frame: the file holds none\n`);
  });
});

describe("relabel convert: extxyz inputs", () => {
  it("moves ASE's calculator labels to the REF_* keys VASP steps have, and says which options do not apply", async () => {
    const dir = tmp();
    const out = path.join(dir, "mix.extxyz");
    const al = realPath("extxyz/metatrain_flashmd_Al.xyz");
    const res = await runCli("convert", realPath("vasp/dpdata_h2o_md10"), al, "-o", out, "--frames", "final");
    expect(res.code).toBe(0);
    expect(res.stderr).toBe(`note: ${al}: --frames final applies to VASP runs: all 10 frames of this file kept\n`);
    expect(res.stdout).toBe(
      `wrote 11 frames from 2 of 2 inputs to ${out}: 1 VASP step (REF_energy = free energy), 10 extxyz frames (ASE's energy, forces and stress as REF_*; REF_energy = free_energy where a frame has both)\n`,
    );
    const [vasp, ...frames] = framesOf(out);
    const ref = aseReference()["extxyz/metatrain_flashmd_Al.xyz"].frames!;
    frames.forEach((f, i) => {
      // The same keys, kinds and units as a VASP step (stress: 6 Voigt values, eV/A^3, ASE's sign).
      for (const key of ["REF_energy", "REF_free_energy", "REF_energy_sigma0", "REF_stress"]) expect(f.info.get(key)?.kind).toBe(vasp.info.get(key)?.kind);
      expect(infoNumber(f, "REF_energy")).toBe(ref[i].free_energy);
      expect(infoNumber(f, "REF_energy_sigma0")).toBe(ref[i].energy);
      expect((f.info.get("REF_stress") as { data: number[] }).data).toEqual(ref[i].stress_voigt_eV_per_A3);
      expect(Array.from((f.arrays.get("REF_forces")!.data as Float64Array).subarray(0, 3))).toEqual(ref[i].force_first_atom);
      for (const key of ["energy", "free_energy", "stress"]) expect(f.info.has(key)).toBe(false);
      expect(f.arrays.has("forces")).toBe(false);
    });
  });

  it("keeps REF_* labels a file already has, and counts frames without an energy or forces", async () => {
    const dir = tmp();
    const wfl = realPath("extxyz/wfl_B_DFT_data.xyz");
    const carbon = realPath("extxyz/metatrain_carbon_allotropes.xyz");
    const out = path.join(dir, "o.extxyz");
    const res = await runCli("convert", wfl, carbon, "-o", out, "--energy", "sigma0");
    expect(res.code).toBe(0);
    expect(res.stderr.split("\n").filter(Boolean)).toEqual([
      `note: ${wfl}: --energy sigma0 applies to frames with both energy and free_energy: ${framesOf(wfl).length} of ${framesOf(wfl).length} carry one energy, written as REF_energy as it is`,
      `note: ${carbon}: no energy in 30, no forces in 30 of 30 frames (looked for REF_energy, energy, free_energy; REF_forces, forces): written without those labels`,
    ]);
    const written = framesOf(out);
    framesOf(wfl).forEach((f, i) => expect(written[i].info).toEqual(f.info));
  });

  it("reads a folder of extxyz files (every frame), but not the output it is writing", async () => {
    const dir = tmp();
    const folder = path.join(dir, "pool");
    mkdirSync(folder);
    cpSync(realPath("extxyz/matscipy_committee_test_data.xyz"), path.join(folder, "a.xyz"));
    cpSync(realPath("extxyz/macejax_simple_slab.xyz"), path.join(folder, "b.extxyz"));
    const out = path.join(folder, "all.extxyz");
    expect((await runCli("convert", folder, "-o", out)).stdout).toMatch(/^wrote 4 frames from 2 of 2 inputs/);
    const again = await runCli("convert", folder, "-o", out);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe(`note: ${out}: not read: it is the output being written\n`);
    expect(framesOf(out)).toHaveLength(4);
    const inspected = await runCli("inspect", folder);
    expect(inspected.stdout.trim().split("\n").at(-1)).toBe("8 frames from 3 inputs");
  });

  it("leaves out a frame whose position is nan, naming file, line and atom, and writes the rest", async () => {
    const dir = tmp();
    const bad = path.join(dir, "nanpos.xyz");
    // As `sed '3s/-0.20355672/nan/'` makes it: atom 1's x of frame 0.
    writeFileSync(bad, readFileSync(realPath("extxyz/metatrain_flashmd_Al.xyz"), "utf8").replace("-0.20355672", "nan"));
    const out = path.join(dir, "o.extxyz");
    const res = await runCli("convert", bad, "-o", out);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`skipped: ${bad}:3: frame 0: atom 0 (Al, 0-based): position x is nan; expected a finite number; frame left out\n`);
    expect(framesOf(out)).toHaveLength(9);
    const inspected = await runCli("inspect", bad);
    expect(inspected.code).toBe(1);
    expect(inspected.stderr).toBe(res.stderr);
  });
});

describe("relabel convert: run ids", () => {
  it("gives runs of one name in different folders different sources", async () => {
    const dir = tmp();
    cpSync(realPath("vasp/dpdata_Ti-O-Ti_static_v630"), path.join(dir, "p1", "run"), { recursive: true });
    cpSync(realPath("vasp/dpdata_Ti-O-Ti_static_v630"), path.join(dir, "p2", "run"), { recursive: true });
    const sources = async (...inputs: string[]) => {
      const out = path.join(dir, `o${Math.random()}.extxyz`);
      expect((await runCli("convert", ...inputs, "-o", out)).code).toBe(0);
      return framesOf(out).map((f) => (f.info.get("source") as { value: string }).value);
    };
    expect(await sources(path.join(dir, "p1", "run"), path.join(dir, "p2", "run"))).toEqual(["p1/run", "p2/run"]);
    expect(await sources(path.join(dir, "p1"), path.join(dir, "p2"))).toEqual(["p1/run", "p2/run"]);
    expect(await sources(path.join(dir, "p1", "run", "vasprun.xml"), path.join(dir, "p2", "run", "OUTCAR"))).toEqual(["p1/run", "p2/run"]);
    // One run named twice stays one id.
    expect(await sources(path.join(dir, "p1", "run"), path.join(dir, "p1", "run"))).toEqual(["run", "run"]);
  });
});

