import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { aseReference, realPath } from "../helpers/real-data.js";
import { runCli } from "../helpers/run-cli.js";

describe("relabel inspect", () => {
  it("prints one line per frame with energies, max force, stress and pbc, then a total", async () => {
    const res = await runCli("inspect", realPath("vasp/dpdata_Ti-O-Ti_static_v630"));
    expect(res.code).toBe(0);
    const ref = aseReference()["vasp/dpdata_Ti-O-Ti_static_v630/vasprun.xml"].frames![0];
    const [line, total] = res.stdout.trim().split("\n");
    expect(line).toContain("dpdata_Ti-O-Ti_static_v630  #0  8 atoms  O2Ti6");
    expect(line).toContain(`E=${ref.free_energy!.toFixed(6)}`);
    expect(line).toContain(`E0=${ref.energy!.toFixed(6)}`);
    expect(line).toContain(`max|F|=${ref.max_force_norm!.toFixed(4)}`);
    expect(line).toContain(`stress=[${ref.stress_voigt_eV_per_A3!.map((x) => x.toFixed(5)).join(" ")}]`);
    expect(line).toMatch(/pbc=TTT$/);
    expect(total).toBe("1 frames from 1 inputs");
  });

  it("flags SCF-unconverged steps and reports ML force-field steps left out", async () => {
    const res = await runCli("inspect", realPath("vasp/dpdata_ch4_md_scf_unconverged"), realPath("vasp/dpdata_ch4_mlff_md_v630"));
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split("\n");
    expect(lines.filter((l) => l.endsWith("SCF-unconverged"))).toHaveLength(2);
    expect(res.stderr).toMatch(/dpdata_ch4_mlff_md_v630 \(OUTCAR\): 10 machine-learned force-field steps left out \(not DFT\)/);
  });

  it("reads custodian's folder of a double relaxation (vasprun.xml.relax1.gz, vasprun.xml.relax2.gz) and says so", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-inspect-custodian-"));
    for (const [suffix, run] of [[".relax1", "aiidavasp_Si_relax_isif3_spin_v620"], [".relax2", "aiidavasp_Si_relax_ionic_unconverged"]]) {
      writeFileSync(path.join(dir, `vasprun.xml${suffix}.gz`), gzipSync(readFileSync(path.join(realPath(`vasp/${run}`), "vasprun.xml"))));
    }
    const res = await runCli("inspect", dir);
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split("\n");
    expect(lines.at(-1)).toBe("10 frames from 1 inputs");
    expect(lines[9]).toContain(`${path.basename(dir)}  #9  2 atoms  Si2`);
    expect(res.stderr).toContain(`(vasprun.xml.relax1.gz): 2 calculations of one job, read in order: vasprun.xml.relax1.gz, vasprun.xml.relax2.gz`);
  });

  it("writes JSON Lines with --json", async () => {
    const res = await runCli("inspect", "--json", realPath("extxyz/matscipy_committee_test_data.xyz"));
    expect(res.code).toBe(0);
    const records = res.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => r.type)).toEqual(["frame", "frame", "input"]);
    const ref = aseReference()["extxyz/matscipy_committee_test_data.xyz"].frames!;
    expect(records[0].energy).toBeCloseTo(ref[0].energy!, 9);
    expect(records[1].maxForce).toBeCloseTo(ref[1].max_force_norm!, 9);
    expect(records[2]).toMatchObject({ kind: "extxyz", frames: 2, problems: [] });
  });

  it("labels a missing path and an unrecognised file as such in --json, with the problem text mode prints", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-inspect-"));
    const missing = path.join(dir, "nonexistent.xyz");
    const junk = path.join(dir, "notes.txt");
    writeFileSync(junk, "just some notes\n");
    const json = await runCli("inspect", "--json", missing, junk);
    const text = await runCli("inspect", missing, junk);
    expect(json.code).toBe(1);
    expect(text.code).toBe(1);
    const records = json.stdout.trim().split("\n").map((l) => JSON.parse(l) as { kind: string; frames: number; problems: string[] });
    expect(records.map((r) => [r.kind, r.frames])).toEqual([["missing", 0], ["unrecognised", 0]]);
    expect(records[0].problems).toEqual([`${missing}: no such file or directory`]);
    expect(json.stderr).toBe(text.stderr);
    expect(text.stderr.split("\n")[0]).toBe(`error: ${missing}: no such file or directory`);
  });

  it("reports a truncated extxyz frame with file and line, and exits 1", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-inspect-"));
    const bad = path.join(dir, "cut.extxyz");
    writeFileSync(bad, "1\nenergy=1.0\nH 0 0 0\n3\nenergy=2.0\nH 0 0 0\nH 1 0 0\n");
    const res = await runCli("inspect", bad);
    expect(res.code).toBe(1);
    expect(res.stdout.split("\n")[0]).toContain("#0  1 atoms  H");
    expect(res.stderr.trim()).toMatch(new RegExp(`^error: ${bad.replace(/[.]/g, "\\.")}:4: `));
  });
});

describe("relabel", () => {
  it("lists its commands with --help and exits 2 without a command", async () => {
    const help = await runCli("--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/convert .*\n.*inspect/s);
    expect((await runCli()).code).toBe(2);
    const unknown = await runCli("frobnicate");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it("gives every command a --help", async () => {
    for (const cmd of ["convert", "inspect", "demo"]) {
      const res = await runCli(cmd, "--help");
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(new RegExp(`^usage: relabel ${cmd}`));
    }
  });
});
