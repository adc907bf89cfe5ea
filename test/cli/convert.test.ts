import { mkdtempSync, readFileSync, writeFileSync, cpSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseExtxyz } from "../../src/core/formats/extxyz.js";
import { infoNumber } from "../../src/core/structure.js";
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
