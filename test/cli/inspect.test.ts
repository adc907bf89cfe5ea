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
    expect(total).toBe("1 frame from 1 input");
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
    expect(lines.at(-1)).toBe("10 frames from 1 input");
    expect(lines[9]).toContain(`${path.basename(dir)}  #9  2 atoms  Si2`);
    expect(res.stderr).toContain(`(vasprun.xml.relax1.gz): 2 calculations of one job, read in order: vasprun.xml.relax1.gz, vasprun.xml.relax2.gz`);
  });

  it("exits 1 for a run that gave no frame, saying why in the line convert prints", async () => {
    const crashed = realPath("vasp/custodian_large_cell_crashed_at_start");
    const res = await runCli("inspect", crashed);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("0 frames from 1 input; some inputs had problems or gave no frame (see stderr)\n");
    expect(res.stderr).toBe((await runCli("convert", crashed, "-o", path.join(mkdtempSync(path.join(tmpdir(), "relabel-inspect-")), "o.extxyz"))).stderr);
    expect(res.stderr).toMatch(/^error: .*\(vasprun\.xml\): no complete DFT step: the run stopped before its first ionic step finished \(cut at line 442/);
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

  it("names the count line of a frame whose atom count is wrong, and where its atoms really end", async () => {
    // The real 32-atom aluminium frames with the first count changed to 33 (too many) and to 31 (too few).
    const dir = mkdtempSync(path.join(tmpdir(), "relabel-inspect-count-"));
    const lines = readFileSync(realPath("extxyz/metatrain_flashmd_Al.xyz"), "utf8").split("\n");
    const withCount = (name: string, count: number) => {
      const file = path.join(dir, name);
      writeFileSync(file, [String(count), ...lines.slice(1)].join("\n"));
      return file;
    };
    const tooMany = withCount("too-many.xyz", 33);
    const more = await runCli("inspect", tooMany);
    expect(more.code).toBe(1);
    expect(more.stderr).toBe(`error: ${tooMany}:1: the atom count says 33, but line 35 ("32") looks like the next frame's atom count: this frame has 32 atom line(s) (3-34)\n`);
    const tooFew = withCount("too-few.xyz", 31);
    const fewer = await runCli("inspect", tooFew);
    expect(fewer.code).toBe(1);
    expect(fewer.stderr).toMatch(
      new RegExp(`^error: ${tooFew}:1: the atom count says 31, but the frame runs on: line 34, after its 31 atom line\\(s\\) \\(3-33\\), is one more atom line \\("Al {7}6\\.06428433 .*"\\) where the next frame's atom count should be\n$`),
    );
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

  it("prints a command's --help for 'relabel help COMMAND', every command", async () => {
    for (const cmd of ["convert", "inspect", "rank", "dataset", "stage", "bench", "submit", "jobs", "collect", "cancel", "demo"]) {
      const res = await runCli("help", cmd);
      expect(res.code).toBe(0);
      expect(res.stdout).toBe((await runCli(cmd, "--help")).stdout);
      expect(res.stdout).toMatch(new RegExp(`^usage: relabel ${cmd}`));
    }
    const unknown = await runCli("help", "frobnicate");
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
