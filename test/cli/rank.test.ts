import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { describe, expect, it, vi } from "vitest";
import { parseExtxyz, writeExtxyzFrame } from "../../src/core/formats/extxyz.js";
import { candidateId } from "../../src/core/select/candidate-id.js";
import { normaliseSettings } from "../../src/core/dataset/settings.js";
import { parseIncar } from "../../src/core/vasp/incar.js";
import { parsePoscar, writePoscar } from "../../src/core/vasp/poscar.js";
import { ExtxyzSummaryScanner } from "../../src/core/formats/extxyz-summary.js";
import { ExtxyzScanner, PARALLEL_SCAN_MIN_BYTES } from "../../src/io/extxyz-scan.js";
import { groupedBySpecies, type Frame } from "../../src/core/structure.js";
import type { VaspStep } from "../../src/core/vasp/types.js";
import { readRun } from "../../src/io/rundir.js";
import type { SelectionResult } from "../../src/core/select/fps.js";
import type { WorkerSelection } from "../../src/exec/fps-threads.js";
import { aseTrajectories } from "../helpers/ase-trajectories.js";
import { lammpsDumps } from "../helpers/lammps-dumps.js";
import { numpyArray } from "../helpers/numpy-arrays.js";
import { realPath } from "../helpers/real-data.js";
import { xdatcarText } from "../helpers/xdatcar.js";
import { runCli } from "../helpers/run-cli.js";
import { potcarBlock } from "../fixtures/potcar/layout.js";

// The selection workers, watched: which runs started before the pool was read, and what they picked.
const earlyRuns = vi.hoisted((): WorkerSelection[] => []);
vi.mock("../../src/exec/fps-threads.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../../src/exec/fps-threads.js")>();
  const startSelectionWorker: typeof actual.startSelectionWorker = () => {
    const worker = actual.startSelectionWorker();
    return worker && { ...worker, run: (...args) => earlyRuns[earlyRuns.push(worker.run(...args)) - 1] };
  };
  return { ...actual, startSelectionWorker };
});

const POOL = realPath("extxyz/imagdau_xtb_md.xyz");
const tmp = () => mkdtempSync(path.join(tmpdir(), "relabel-rank-"));
const framesOf = (file: string): Frame[] => parseExtxyz(readFileSync(file), file).map((f) => f.frame);

/** A committee member's mace_eval_configs-style output: the pool's frames, reordered, with MACE_energy. */
function memberFile(dir: string, name: string, energy: (i: number, f: Frame) => number): string {
  const frames = framesOf(POOL);
  const text = frames
    .map((f, i) => ({ f, i }))
    .reverse()
    .map(({ f, i }) => writeExtxyzFrame({ ...f, info: new Map([["MACE_energy", { kind: "float", value: energy(i, f) }]]) }))
    .join("");
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe("relabel rank", () => {
  it("writes ranking.json, ranking.csv and selected.extxyz, byte-identical on a rerun", async () => {
    const dir = tmp();
    const a = await runCli("rank", "--pool", POOL, "--select", "6", "-o", path.join(dir, "a"));
    const b = await runCli("rank", "--pool", POOL, "--select", "6", "-o", path.join(dir, "b"));
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    for (const f of ["ranking.json", "ranking.csv", "selected.extxyz"]) {
      expect(readFileSync(path.join(dir, "a", f))).toEqual(readFileSync(path.join(dir, "b", f)));
    }
    const ranking = JSON.parse(readFileSync(path.join(dir, "a", "ranking.json"), "utf8"));
    expect(ranking.rule).toMatch(/^diversity-first \(no committee\)/);
    expect(ranking.heuristic).toMatch(/not calibrated uncertainty/);
    // No committee, no disagreement: null, not a measured 0 (ranking.csv leaves it empty).
    expect(ranking.selected[0]).toMatchObject({ disagreement: null, disagreement_raw: null });
    expect(ranking.sources[0].sha256).toBe(createHash("sha256").update(readFileSync(POOL)).digest("hex"));
    expect(ranking.selected.map((s: { rank: number }) => s.rank)).toEqual([1, 2, 3, 4, 5, 6]);
    const selected = framesOf(path.join(dir, "a", "selected.extxyz"));
    expect(selected.map((f) => (f.info.get("selection_rank") as { value: number }).value)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(selected.map((f) => (f.info.get("candidate_id") as { value: string }).value)).toEqual(ranking.selected.map((s: { candidate_id: string }) => s.candidate_id));
    const csv = readFileSync(path.join(dir, "a", "ranking.csv"), "utf8").trim().split("\n");
    expect(csv).toHaveLength(1 + 201);
    expect(csv.filter((l) => l.split(",")[6] !== "").length).toBe(1 + 6);
    // No committee, no disagreement column in the summary.
    expect(a.stdout).toMatch(/ diversity=\d+\.\d{3}\n/);
    expect(a.stdout).not.toMatch(/disagreement=/);
  });

  it("writes the picked frames of every kind of source, reading back only sources that hold picks", async () => {
    const dir = tmp();
    const pool = framesOf(POOL);
    // Two more extxyz files (one lands before the big pool, one after it) and a folder of POSCARs.
    const extra = path.join(dir, "pool");
    mkdirSync(path.join(extra, "poscars"), { recursive: true });
    writeFileSync(path.join(extra, "a-first.extxyz"), pool.slice(0, 3).map((f) => writeExtxyzFrame({ ...f, positions: f.positions.map((x) => x + 7) })).join(""));
    writeFileSync(path.join(extra, "z-last.extxyz"), "");
    // The last two gzipped, as CONTCARs often are.
    const poscarNames = ["POSCAR_0", "POSCAR_1.gz", "s2.vasp.gz"];
    poscarNames.forEach((name, i) => {
      const f = pool[50 + i];
      const box = { cell: Float64Array.of(15, 0, 0, 0, 15, 0, 0, 0, 15), pbc: [true, true, true] as [boolean, boolean, boolean] };
      const text = writePoscar({ ...f, ...box, positions: f.positions.map((x) => x - 5) });
      writeFileSync(path.join(extra, "poscars", name), name.endsWith(".gz") ? gzipSync(text) : text);
    });
    const out = path.join(dir, "out");
    const result = await runCli("rank", "--pool", extra, POOL, "--select", "40", "-o", out);
    expect(result.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(out, "ranking.json"), "utf8"));
    const selected = framesOf(path.join(out, "selected.extxyz"));
    const sourceFrames = new Map<string, Frame[]>();
    const framesIn = (source: string): Frame[] => {
      if (!sourceFrames.has(source)) {
        const text = source.endsWith(".gz") ? gunzipSync(readFileSync(source)).toString() : readFileSync(source, "utf8");
        sourceFrames.set(source, source.includes("/poscars/") ? [parsePoscar(text, { file: source }).frame] : framesOf(source));
      }
      return sourceFrames.get(source)!;
    };
    const kinds = new Set<string>();
    ranking.selected.forEach((pick: { source: string; frame: number }, r: number) => {
      kinds.add(path.basename(path.dirname(pick.source)) + (pick.source.includes("/poscars/") ? "/POSCAR" : ""));
      expect(Array.from(selected[r].positions)).toEqual(Array.from(framesIn(pick.source)[pick.frame].positions));
    });
    expect(kinds.size).toBeGreaterThan(1);
    expect(ranking.sources.filter((s: { path: string }) => s.path.includes("/poscars/")).map((s: { path: string; frames: number }) => [path.basename(s.path), s.frames])).toEqual(
      poscarNames.map((name) => [name, 1]),
    );
  });

  it("ranks VASP run directories and says which of their steps are not candidates, on stderr and in ranking.json", async () => {
    const dir = tmp();
    const runs = ["aiidavasp_Si_static_unfinished", "custodian_Si_relax_killed_v642", "dpdata_ch4_mlff_md_v630", "dpdata_h2o_md10"].map((r) => realPath(`vasp/${r}`));
    const res = await runCli("rank", "--pool", ...runs, "--select", "3", "-o", path.join(dir, "out"));
    expect(res.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    const [unfinished, killed, mlff, complete] = ranking.sources;
    expect(unfinished).toMatchObject({ frames: 0, notes: [expect.stringMatching(/cut at line \d+, inside <calculation> 1.*kept 0 complete steps$/)] });
    expect(killed).toMatchObject({ frames: 2, notes: [expect.stringMatching(/ends inside DFT ionic step 3 \(dropped\); kept 2 complete steps$/)] });
    expect(mlff).toMatchObject({ frames: 4, notes: ["10 machine-learned force-field steps left out (not DFT)"] });
    expect(complete).not.toHaveProperty("notes");
    expect(complete.frames).toBe(10);
    expect(ranking.pool_size).toBe(16);
    const notes = res.stderr.split("\n").filter((line) => line.startsWith("note: "));
    expect(notes).toEqual([
      `note: ${runs[0]}: ${unfinished.notes[0]}`,
      `note: ${runs[1]}: ${killed.notes[0]}`,
      `note: ${runs[2]}: ${mlff.notes[0]}`,
    ]);
  });

  it("follows links in pool folders: run directories and files linked in, a link back up read once", async () => {
    const dir = tmp();
    const pool = path.join(dir, "pool");
    mkdirSync(pool);
    symlinkSync(realPath("vasp/dpdata_h2o_md10"), path.join(pool, "water-run"));
    symlinkSync(POOL, path.join(pool, "md.xyz"));
    symlinkSync(pool, path.join(pool, "again"));
    const res = await runCli("rank", "--pool", pool, "--select", "3", "-o", path.join(dir, "out"));
    expect(res.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    expect(ranking.sources.map((s: { path: string; frames: number }) => [path.basename(s.path), s.frames])).toEqual([["md.xyz", 201], ["water-run", 10]]);
  });

  it("names the files of a pool folder it does not read, and reads POSCARs named with a prefix", async () => {
    const dir = tmp();
    const pool = path.join(dir, "pool");
    mkdirSync(pool);
    cpSync(realPath("vasp/aiidavasp_Si_relax_isif3_spin_v620/POSCAR"), path.join(pool, "relaxed.POSCAR"));
    cpSync(realPath("vasp/custodian_lobster_NaCl_static/POSCAR"), path.join(pool, "POSCAR_001"));
    writeFileSync(path.join(pool, "NaCl.cif"), "data_NaCl\n");
    writeFileSync(path.join(pool, "notes.txt"), "round 3\n");
    writeFileSync(path.join(pool, ".hidden"), "");
    symlinkSync(path.join(dir, "gone.xyz"), path.join(pool, "gone.xyz"));
    const res = await runCli("rank", "--pool", pool, "--select", "1", "-o", path.join(dir, "out"));
    expect(res.code).toBe(0);
    expect(res.stderr).toBe(
      `note: --pool: 3 file(s) in its folders are not structures rank reads, and were not read: ${path.join(pool, "NaCl.cif")}, ${path.join(pool, "gone.xyz")} (a link to nothing), ${path.join(pool, "notes.txt")} (other formats: python3 -m ase convert FILE OUT.extxyz)\n`,
    );
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    expect(ranking.sources.map((s: { path: string }) => path.basename(s.path))).toEqual(["POSCAR_001", "relaxed.POSCAR"]);
    expect(ranking.unread_files).toEqual([path.join(pool, "NaCl.cif"), `${path.join(pool, "gone.xyz")} (a link to nothing)`, path.join(pool, "notes.txt")]);
  });

  it("writes a POSCAR folder per pick with --vasp-inputs' files, boxing molecules, and checks the inputs before ranking", async () => {
    const dir = tmp();
    const inputs = path.join(dir, "vasp");
    mkdirSync(inputs);
    writeFileSync(path.join(inputs, "INCAR"), "ENCUT = 520\n");
    writeFileSync(path.join(inputs, "KPOINTS"), "Gamma\n0\nGamma\n1 1 1\n");
    const water = realPath("vasp/dpdata_h2o_md10");
    const res = await runCli("rank", "--pool", POOL, water, "--select", "3", "--vasp-inputs", inputs, "--vacuum", "12", "-o", path.join(dir, "out"));
    expect(res.code).toBe(0);
    // The Gamma point suits boxed molecules and a single periodic pick: no KPOINTS warning.
    expect(res.stderr).toBe("");
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    const selected = framesOf(path.join(dir, "out", "selected.extxyz"));
    const folders = readdirSync(path.join(dir, "out", "poscars")).sort();
    expect(folders).toEqual(ranking.selected.map((p: { rank: number; candidate_id: string }) => `00${p.rank}-${p.candidate_id}`));
    const boxedRanks: number[] = [];
    folders.forEach((folder, r) => {
      expect(readdirSync(path.join(dir, "out", "poscars", folder)).sort()).toEqual(["INCAR", "KPOINTS", "POSCAR"]);
      const poscar = parsePoscar(readFileSync(path.join(dir, "out", "poscars", folder, "POSCAR"), "utf8"), { file: folder }).frame;
      // %.16f in the POSCAR: the same positions to 1e-15 A, the atoms grouped by species.
      const expected = groupedBySpecies(selected[r]);
      poscar.positions.forEach((x, i) => expect(Math.abs(x - expected.positions[i])).toBeLessThan(1e-12));
      expect(poscar.symbols).toEqual(expected.symbols);
      if (selected[r].cell.every((x) => x === 0)) {
        boxedRanks.push(r + 1);
        expect(poscar.cell[0]).toBeGreaterThan(12);
      } else expect(Array.from(poscar.cell)).toEqual(Array.from(selected[r].cell));
    });
    // The pool mixes the cell-less MD frames and the periodic water run: both kinds are picked.
    expect(boxedRanks.length).toBeGreaterThan(0);
    expect(boxedRanks.length).toBeLessThan(3);
    expect(res.stdout).toContain(`no cell, so in a cubic box with 12 A of vacuum: the POSCARs of rank ${boxedRanks.join(", ")}\n`);
    expect(res.stdout).toContain(`wrote ${path.join(dir, "out")}/ranking.json, ${path.join(dir, "out")}/ranking.csv, ${path.join(dir, "out")}/selected.extxyz, ${path.join(dir, "out")}/poscars/\n`);

    writeFileSync(path.join(inputs, "POSCAR"), "");
    const refused = await runCli("rank", "--pool", POOL, "--select", "3", "--vasp-inputs", inputs, "-o", path.join(dir, "again"));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`error: ${path.join(inputs, "POSCAR")}: each pick gets its own POSCAR; leave it out of the VASP inputs folder\n`);
    const noPoscars = await runCli("rank", "--pool", POOL, "--select", "3", "--vacuum", "12", "-o", path.join(dir, "again"));
    expect(noPoscars.code).toBe(2);
    expect(noPoscars.stderr).toMatch(/--vacuum sets the box of POSCARs: give --poscars/);
  });

  it("groups each pick's atoms in the order of --vasp-inputs' POTCAR and writes the POTCAR of its species beside it", async () => {
    const dir = tmp();
    const inputs = path.join(dir, "vasp");
    mkdirSync(inputs);
    writeFileSync(path.join(inputs, "INCAR"), "ENCUT = 520\n");
    // O before Ti and Fe: the reverse of the pool's first atoms (Ti-O-Ti lists Ti O Ti, FeO lists Fe O).
    writeFileSync(path.join(inputs, "POTCAR"), potcarBlock("O") + potcarBlock("Ti", "Ti_sv") + potcarBlock("Fe", "Fe_pv"));
    const pool = [realPath("vasp/dpdata_Ti-O-Ti_static_v630"), realPath("vasp/custodian_postprocess_FeO_relax_isif3")];
    const res = await runCli("rank", "--pool", ...pool, "--select", "3", "--vasp-inputs", inputs, "-o", path.join(dir, "out"));
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const selected = framesOf(path.join(dir, "out", "selected.extxyz"));
    const folders = readdirSync(path.join(dir, "out", "poscars")).sort();
    folders.forEach((folder, r) => {
      const text = readFileSync(path.join(dir, "out", "poscars", folder, "POSCAR"), "utf8");
      const species = selected[r].symbols.includes("Ti") ? ["O", "Ti"] : ["O", "Fe"];
      expect(text.split("\n")[5].trim().split(/\s+/)).toEqual(species);
      const poscar = parsePoscar(text, { file: folder }).frame;
      const expected = groupedBySpecies(selected[r], species);
      poscar.positions.forEach((x, i) => expect(Math.abs(x - expected.positions[i])).toBeLessThan(1e-12));
      expect(readFileSync(path.join(dir, "out", "poscars", folder, "POTCAR"), "utf8")).toBe(species.map((s) => potcarBlock(s, { O: "O", Ti: "Ti_sv", Fe: "Fe_pv" }[s])).join(""));
      expect(readFileSync(path.join(dir, "out", "poscars", folder, "INCAR"), "utf8")).toBe("ENCUT = 520\n");
    });
    expect(selected.some((f) => f.symbols.includes("Ti"))).toBe(true);

    // Without ENCUT, picks whose POTCARs differ in their largest ENMAX would run at different cutoffs.
    writeFileSync(path.join(inputs, "INCAR"), "ISMEAR = 0\n");
    // (ENMAX of VASP's PBE O_s, Ti_sv and Fe_pv.)
    writeFileSync(path.join(inputs, "POTCAR"), potcarBlock("O", "O_s", "PAW_PBE", 282.853) + potcarBlock("Ti", "Ti_sv", "PAW_PBE", 274.61) + potcarBlock("Fe", "Fe_pv", "PAW_PBE", 293.238));
    const noEncut = await runCli("rank", "--pool", ...pool, "--select", "3", "--vasp-inputs", inputs, "-o", path.join(dir, "no-encut"));
    expect(noEncut.code).toBe(0);
    const ranksWith = (element: string) => selected.flatMap((f, r) => (f.symbols.includes(element) ? [r + 1] : [])).join(", ");
    expect(noEncut.stderr).toBe(
      `warning: ${path.join(inputs, "INCAR")} sets no ENCUT, so each run takes the largest ENMAX of its own POTCAR: 293.238 eV (rank ${ranksWith("Fe")}), 282.853 eV (rank ${ranksWith("Ti")}); ` +
        `dataset build refuses runs of mixed ENCUT: set one, such as 390 (1.3 x the largest ENMAX of ${path.join(inputs, "POTCAR")})\n`,
    );

    // POTCAR.spec is for runs without a POTCAR: not both.
    const both = await runCli("rank", "--pool", ...pool, "--select", "3", "--vasp-inputs", inputs, "--potcar-spec", "plain", "-o", path.join(dir, "both"));
    expect([both.code, both.stderr]).toEqual([2, `relabel rank: ${path.join(inputs, "POTCAR")} is split into each pick's POTCAR: POTCAR.spec (--potcar-spec) is for runs without one\n`]);
    // Without one, POTCAR.spec names each pick's potentials in its POSCAR's order.
    const spec = await runCli("rank", "--pool", ...pool, "--select", "3", "--potcar-spec", "Ti=Ti_sv,Fe=Fe_pv", "-o", path.join(dir, "spec"));
    expect(spec.stdout).toContain("each pick's POTCAR.spec: its potentials in the order of its POSCAR's species line\n");
    for (const folder of readdirSync(path.join(dir, "spec", "poscars"))) {
      const species = readFileSync(path.join(dir, "spec", "poscars", folder, "POSCAR"), "utf8").split("\n")[5].trim().split(/\s+/);
      expect(readFileSync(path.join(dir, "spec", "poscars", folder, "POTCAR.spec"), "utf8")).toBe(species.map((s) => `${{ Ti: "Ti_sv", Fe: "Fe_pv" }[s] ?? s}\n`).join(""));
    }
    const badSpec = await runCli("rank", "--pool", ...pool, "--select", "3", "--potcar-spec", "Ti=Fe_pv", "-o", path.join(dir, "bad"));
    expect([badSpec.code, badSpec.stderr]).toEqual([2, 'relabel rank: --potcar-spec: "Fe_pv" is no potential of Ti: expected Ti or a variant such as Ti_pv\n']);

    // A POTCAR without an element of a pick: nothing is written, and the POTCAR and the element are named.
    writeFileSync(path.join(inputs, "POTCAR"), potcarBlock("O") + potcarBlock("Ti"));
    const missing = await runCli("rank", "--pool", ...pool, "--select", "3", "--vasp-inputs", inputs, "-o", path.join(dir, "again"));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`error: ${path.join(inputs, "POTCAR")}: has no block for Fe, expected one for every element of the picks (it has O, Ti)\n`);
    expect(existsSync(path.join(dir, "again"))).toBe(false);
    // A cut POTCAR stops before the ranking.
    writeFileSync(path.join(inputs, "POTCAR"), potcarBlock("O").slice(0, 50));
    const cut = await runCli("rank", "--pool", ...pool, "--select", "3", "--vasp-inputs", inputs, "-o", path.join(dir, "again"));
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/POTCAR:1: the last block has no "End of Dataset" line/);
  });

  it("writes each pick's MAGMOM and DFT+U from --magmom and --ldau into the INCAR of --vasp-inputs, and refuses an INCAR whose own lists do not fit", async () => {
    const dir = tmp();
    const inputs = path.join(dir, "vasp");
    mkdirSync(inputs);
    const feORun = realPath("vasp/custodian_postprocess_FeO_relax_isif3");
    const pool = [realPath("vasp/dpdata_Ti-O-Ti_static_v630"), feORun];
    const rank = (out: string, ...flags: string[]) => runCli("rank", "--pool", ...pool, "--select", "3", "--vasp-inputs", inputs, ...flags, "-o", path.join(dir, out));
    // The FeO run's own INCAR (DFT+U on Fe, MAGMOM for its 4 atoms) fits the FeO picks only.
    const realIncar = readFileSync(path.join(feORun, "INCAR"), "utf8");
    writeFileSync(path.join(inputs, "INCAR"), realIncar);
    const misfit = await rank("misfit");
    expect(misfit.stderr).toBe(`error: ${path.join(inputs, "INCAR")}:18: MAGMOM has 4 values, but rank 1 (O2Ti6) has 8 atoms: give the moments per element with --magmom and leave MAGMOM out\n`);
    expect(existsSync(path.join(dir, "misfit"))).toBe(false);
    const conflict = await rank("conflict", "--ldau", "Fe=2:4");
    expect(conflict.stderr).toBe(`error: ${path.join(inputs, "INCAR")}:10: sets LDAUJ, which --ldau writes for each pick; leave it out here\n`);

    // Without its per-species lines, the same INCAR gets them for each pick.
    const template = realIncar.split("\n").filter((line) => !/^(LDAU|LMAXMIX|MAGMOM)/.test(line)).join("\n");
    writeFileSync(path.join(inputs, "INCAR"), template);
    const res = await rank("out", "--magmom", "Fe=5,*=0.6", "--ldau", "Fe=2:4");
    expect(res.stderr).toBe("");
    expect(res.stdout).toContain("each pick's INCAR: MAGMOM and LDAUL/LDAUU/LDAUJ in the order of its POSCAR's species line\n");
    const runSettings = normaliseSettings({}, parseIncar(realIncar), ["Fe", "Fe", "O", "O"]).settings;
    for (const folder of readdirSync(path.join(dir, "out", "poscars"))) {
      const incar = readFileSync(path.join(dir, "out", "poscars", folder, "INCAR"), "utf8");
      const symbols = parsePoscar(readFileSync(path.join(dir, "out", "poscars", folder, "POSCAR"), "utf8"), { file: folder }).frame.symbols;
      expect(incar.startsWith(template)).toBe(true);
      const parsed = parseIncar(incar);
      expect(parsed.MAGMOM).toEqual(symbols.map((s) => (s === "Fe" ? 5 : 0.6)));
      // A run of a FeO pick compares equal to the real run in the dataset's DFT settings (DFT+U per element).
      if (symbols.includes("Fe")) expect(normaliseSettings({}, parsed, symbols).settings).toEqual(runSettings);
      else expect(incar).not.toContain("LMAXMIX");
    }

    const noFlag = await runCli("rank", "--pool", ...pool, "--select", "3", "--magmom", "Fe=5", "-o", path.join(dir, "again"));
    expect([noFlag.code, noFlag.stderr]).toEqual([2, "relabel rank: --magmom completes each pick's INCAR: give --vasp-inputs DIR with the INCAR too\n"]);
    const badSpec = await rank("again", "--ldau", "Fe=4");
    expect([badSpec.code, badSpec.stderr]).toEqual([2, 'relabel rank: --ldau: expected ELEMENT=L:U or ELEMENT=L:U:J such as Fe=2:5.3 (got "Fe=4")\n']);
    rmSync(path.join(inputs, "INCAR"));
    writeFileSync(path.join(inputs, "KPOINTS"), "Gamma\n0\nGamma\n2 2 2\n");
    const noIncar = await rank("again", "--magmom", "Fe=5");
    expect([noIncar.code, noIncar.stderr]).toEqual([1, `error: ${inputs}: holds no INCAR, expected one for --magmom to complete for each pick\n`]);
  });

  it("warns when --vasp-inputs' KPOINTS mesh gives boxed molecules more than the Gamma point, or picks very unlike spacings", async () => {
    const dir = tmp();
    const inputs = path.join(dir, "vasp");
    mkdirSync(inputs);
    writeFileSync(path.join(inputs, "KPOINTS"), "Automatic mesh\n0\nMonkhorst-Pack\n4 4 4\n0 0 0\n");
    // Molecules without a cell (boxed), rutile-like Ti-O-Ti and CO in its VASP box (a 4x4x4 mesh over a large box).
    const pool = [POOL, realPath("vasp/dpdata_Ti-O-Ti_static_v630"), realPath("vasp/custodian_auto_nbands_CO_v621")];
    const res = await runCli("rank", "--pool", ...pool, "--select", "4", "--vasp-inputs", inputs, "-o", path.join(dir, "out"));
    expect(res.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    const rankOf = (source: string) => ranking.selected.find((p: { source: string }) => p.source.includes(source)).rank;
    const boxed = ranking.selected.filter((p: { source: string }) => p.source.endsWith(".xyz")).map((p: { rank: number }) => p.rank);
    const kpoints = path.join(inputs, "KPOINTS");
    expect(res.stderr).toContain(`warning: ${kpoints} gives a 4x4x4 k-point mesh to the picks in a vacuum box (rank ${boxed.join(", ")}): a molecule needs the Gamma point only (1 1 1)\n`);
    expect(res.stderr).toMatch(new RegExp(`warning: ${kpoints} gives every pick a 4x4x4 mesh, so the k-point spacing runs from 0\\.\\d\\d/A \\(rank ${rankOf("CO_v621")}\\) to \\d\\.\\d\\d/A \\(rank ${rankOf("Ti-O-Ti")}\\): for labels converged alike, set KSPACING in INCAR`));
  });

  it("takes a pick's own initial_magmoms, as ASE writes them, for its MAGMOM in POSCAR order", async () => {
    const dir = tmp();
    const inputs = path.join(dir, "vasp");
    mkdirSync(inputs);
    writeFileSync(path.join(inputs, "INCAR"), "ENCUT = 520\n");
    // Antiferromagnetic rocksalt FeO frames from ASE, Fe and O alternating (O first), and a ferromagnetic NiO frame
    // without moments.
    const script = [
      "import sys, numpy as np",
      "from ase.build import bulk",
      "from ase.io import write",
      "rng = np.random.default_rng(3)",
      "frames = []",
      "for i in range(3):",
      "    a = bulk('OFe', 'rocksalt', a=4.33, cubic=True)",
      "    a.rattle(0.05, seed=i)",
      "    a.set_initial_magnetic_moments([0.0 if s == 'O' else (4.0 if a.positions[k][2] < 1 else -4.0) for k, s in enumerate(a.get_chemical_symbols())])",
      "    frames.append(a)",
      "frames.append(bulk('NiO', 'rocksalt', a=4.17, cubic=True))",
      "write(sys.argv[1], frames)",
    ].join("\n");
    const pool = path.join(dir, "pool.extxyz");
    execFileSync("/usr/bin/python3", ["-c", script, pool]);
    const res = await runCli("rank", "--pool", pool, "--select", "3", "--vasp-inputs", inputs, "--magmom", "pool,Ni=2", "-o", path.join(dir, "out"));
    expect(res.stderr).toBe("");
    const selected = framesOf(path.join(dir, "out", "selected.extxyz"));
    let own = 0;
    for (const [r, folder] of readdirSync(path.join(dir, "out", "poscars")).sort().entries()) {
      const poscar = parsePoscar(readFileSync(path.join(dir, "out", "poscars", folder, "POSCAR"), "utf8"), { file: folder }).frame;
      const incar = readFileSync(path.join(dir, "out", "poscars", folder, "INCAR"), "utf8");
      const magmom = parseIncar(incar).MAGMOM as number[];
      const column = selected[r].arrays.get("initial_magmoms");
      if (!column) {
        expect(magmom).toEqual(poscar.symbols.map((s) => (s === "Ni" ? 2 : 1)));
        continue;
      }
      own++;
      expect(incar).toContain("MAGMOM from the structure's initial_magmoms");
      expect(poscar.symbols.slice(0, 4)).toEqual(["O", "O", "O", "O"]);
      // Each POSCAR atom gets the moment ASE gave the atom at its position.
      for (let k = 0; k < poscar.natoms; k++) {
        const at = [0, 1, 2].map((x) => poscar.positions[3 * k + x]);
        const source = [...Array(selected[r].natoms).keys()].find((i) => at.every((x, d) => Math.abs(x - selected[r].positions[3 * i + d]) < 1e-9))!;
        expect(magmom[k]).toBe(column.data[source]);
      }
      expect(new Set(magmom)).toEqual(new Set([0, 4, -4]));
    }
    // Both kinds were picked: FeO frames with their own moments and NiO without.
    expect([own, selected.length - own].every((n) => n > 0)).toBe(true);
  });

  it("ranks every step of an XDATCAR, keeps the steps before a cut, and points an ML force-field run to its XDATCAR", async () => {
    const dir = tmp();
    const steps: VaspStep[] = [];
    for await (const step of readRun(realPath("vasp/custodian_npt_common_LiPS_md_npt"))) steps.push(step);
    const pool = path.join(dir, "pool");
    mkdirSync(path.join(pool, "npt"), { recursive: true });
    const text = xdatcarText(steps, true);
    writeFileSync(path.join(pool, "npt", "XDATCAR"), text);
    // The same trajectory cut 40 positions into its third step, gzipped.
    writeFileSync(path.join(pool, "XDATCAR_cut.gz"), gzipSync(text.split("\n").slice(0, 2 * 92 + 8 + 40).join("\n") + "\n"));
    const res = await runCli("rank", "--pool", pool, "--select", "4", "-o", path.join(dir, "out"));
    expect(res.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    expect(ranking.sources.map((s: { path: string; frames: number }) => [path.relative(pool, s.path), s.frames])).toEqual([["XDATCAR_cut.gz", 2], [path.join("npt", "XDATCAR"), 10]]);
    expect(ranking.sources[0].notes).toEqual([`trajectory cut short: line ${2 * 92 + 8 + 40}: the file ends inside step 3 (40 of 84 positions; dropped)`]);
    // The cut file's two steps are the full one's first two: duplicates.
    expect(ranking.selectable).toBe(10);
    const selected = framesOf(path.join(dir, "out", "selected.extxyz"));
    // Both files hold step k as their frame k (the cut one comes first, so it holds the first copies of steps 1 and 2).
    ranking.selected.forEach((pick: { source: string; frame: number }, r: number) => {
      selected[r].positions.forEach((x, i) => expect(Math.abs(x - steps[pick.frame].positions[i])).toBeLessThan(5e-6));
    });

    // An on-the-fly ML force-field run: its ML steps are not in the pool, but its XDATCAR would give them.
    const run = path.join(dir, "mlff-run");
    mkdirSync(run);
    symlinkSync(path.join(realPath("vasp/dpdata_ch4_mlff_md_v630"), "OUTCAR"), path.join(run, "OUTCAR"));
    const mlSteps: VaspStep[] = [];
    for await (const step of readRun(run)) mlSteps.push(step);
    writeFileSync(path.join(run, "XDATCAR"), xdatcarText(mlSteps, false));
    const ml = await runCli("rank", "--pool", run, "--select", "1", "-o", path.join(dir, "ml"));
    expect(ml.code).toBe(0);
    expect(ml.stderr).toContain(`note: ${run}: 10 machine-learned force-field steps left out (not DFT)\n`);
    expect(ml.stderr).toContain(`note: ${run}: every MD step's structure is in ${path.join(run, "XDATCAR")}: give that file to --pool to rank them all\n`);
  });

  it("ranks ASE trajectories: every frame, found in folders, with the ids of the same frames in extxyz, and the frames before a cut", async () => {
    const dir = tmp();
    const ase = aseTrajectories();
    const pool = path.join(dir, "pool");
    mkdirSync(path.join(pool, "md"), { recursive: true });
    cpSync(path.join(ase.dir, "grid.traj"), path.join(pool, "grid.traj"));
    const md = readFileSync(path.join(ase.dir, "md.traj"));
    writeFileSync(path.join(pool, "md", "run.traj"), md);
    // The same run, cut inside its last frame and without a .traj name: known by its first bytes.
    writeFileSync(path.join(dir, "cut-copy"), md.subarray(0, ase.offsets["md.traj"][59] + 30));
    const res = await runCli("rank", "--pool", pool, path.join(dir, "cut-copy"), "--select", "5", "-o", path.join(dir, "out"));
    expect(res.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    expect(ranking.sources.map((s: { path: string; frames: number }) => [path.relative(dir, s.path), s.frames])).toEqual([
      [path.join("pool", "grid.traj"), 12],
      [path.join("pool", "md", "run.traj"), 60],
      ["cut-copy", 59],
    ]);
    expect(ranking.sources[2].notes).toEqual([
      expect.stringMatching(new RegExp(`^trajectory cut short: frame 59: its data \\(\\d+ bytes from byte ${ase.offsets["md.traj"][59] + 8}\\) runs past the end of the file; 1 of 60 frames dropped$`)),
    ]);
    expect(res.stderr).toContain(`note: ${path.join(dir, "cut-copy")}: trajectory cut short: frame 59:`);
    expect(ranking.selectable).toBe(72);
    const selected = framesOf(path.join(dir, "out", "selected.extxyz"));
    ranking.selected.forEach((pick: { source: string; frame: number }, r: number) => {
      const frame = ase.frames[pick.source.endsWith("grid.traj") ? "grid.traj" : "md.traj"][pick.frame];
      expect(Array.from(selected[r].positions)).toEqual(frame.positions.flat());
    });

    // ASE's extxyz of the grid frames holds their positions exactly: the same candidates, ids and picks.
    const fromTraj = await runCli("rank", "--pool", path.join(pool, "grid.traj"), "--select", "4", "-o", path.join(dir, "traj"));
    const fromExtxyz = await runCli("rank", "--pool", path.join(ase.dir, "grid.extxyz"), "--select", "4", "-o", path.join(dir, "extxyz"));
    expect([fromTraj.code, fromExtxyz.code]).toEqual([0, 0]);
    const rows = (out: string) => readFileSync(path.join(dir, out, "ranking.csv"), "utf8").split("\n").map((line) => line.split(",").filter((_, k) => k !== 2));
    expect(rows("traj")).toEqual(rows("extxyz"));
  });

  it("ranks LAMMPS dumps: found in folders by name and by their first bytes, gzipped, species from --type-map or the element column", async () => {
    const dir = tmp();
    const dumps = lammpsDumps();
    const pool = path.join(dir, "pool");
    mkdirSync(path.join(pool, "traj"), { recursive: true });
    cpSync(path.join(dumps.dir, "unscaled.lammpstrj"), path.join(pool, "traj", "0.lammpstrj"));
    writeFileSync(path.join(pool, "traj", "1.lammpstrj.gz"), gzipSync(readFileSync(path.join(dumps.dir, "atom.lammpstrj"))));
    // Another name: known by its first line.
    cpSync(path.join(dumps.dir, "element.lammpstrj"), path.join(dir, "dump.element"));
    const res = await runCli("rank", "--pool", pool, path.join(dir, "dump.element"), "--type-map", "Hf,O", "--select", "4", "--descriptor", "element-pairs", "-o", path.join(dir, "out"));
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    expect(ranking.sources.map((s: { path: string; frames: number }) => [path.relative(dir, s.path), s.frames])).toEqual([
      [path.join("pool", "traj", "0.lammpstrj"), 3],
      [path.join("pool", "traj", "1.lammpstrj.gz"), 3],
      ["dump.element", 3],
    ]);
    expect(ranking.parameters.type_map).toEqual(["Hf", "O"]);
    // The three dumps hold the same trajectory: the picks' species are ASE's reading of the dump.
    const selected = framesOf(path.join(dir, "out", "selected.extxyz"));
    for (const frame of selected) expect(frame.symbols).toEqual(dumps.ase["element.lammpstrj"][0].symbols);
    expect(selected[0].info.get("timestep")).toBeDefined();

    // Without the type map, the dumps of types are left out with the reason; the one with elements is ranked.
    const untyped = await runCli("rank", "--pool", pool, path.join(dir, "dump.element"), "--select", "2", "-o", path.join(dir, "untyped"));
    // The ranking of the rest is written; the exit code says a source was left out.
    expect(untyped.code).toBe(1);
    expect(untyped.stderr).toContain(`warning: pool source left out, it cannot be read: ${path.join(pool, "traj", "0.lammpstrj")}:9: atom types but no element column: the element of each type is needed, type 1 first (relabel rank --type-map Hf,O; type_map: [Hf, O] in the App's selection config or a stage's eval config)\n`);
    const untypedRanking = JSON.parse(readFileSync(path.join(dir, "untyped", "ranking.json"), "utf8"));
    expect(untypedRanking.sources.map((s: { path: string }) => path.relative(dir, s.path))).toEqual(["dump.element"]);
    expect(untypedRanking.parameters.type_map).toBeUndefined();

    const bad = await runCli("rank", "--pool", pool, "--type-map", "Hf,Oxygen", "--select", "2", "-o", path.join(dir, "bad"));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('relabel rank: --type-map must list element symbols, type 1 first, such as Hf,O (got "Oxygen" in "Hf,Oxygen")\n');
  });

  it("names a file of another format where an extxyz was expected, with the conversion, and leaves it out of a pool", async () => {
    const dir = tmp();
    const ase = aseTrajectories();
    const traj = path.join(ase.dir, "md.traj");
    const committee = await runCli("rank", "--pool", POOL, "--committee", traj, POOL, "--select", "2", "-o", path.join(dir, "a"));
    expect(committee.code).toBe(1);
    expect(committee.stderr).toBe(`error: ${traj}: an ASE trajectory, expected an extxyz file; convert it with: python3 -m ase convert ${traj} md.extxyz\n`);
    const cif = path.join(dir, "Si.cif");
    writeFileSync(cif, "# written by hand\ndata_Si\n_cell_length_a 5.43\n");
    const pool = await runCli("rank", "--pool", POOL, cif, "--select", "2", "-o", path.join(dir, "b"));
    expect(pool.code).toBe(1);
    expect(pool.stderr).toContain(`warning: pool source left out, it cannot be read: ${cif}: a CIF file, expected an extxyz file; convert it with: python3 -m ase convert ${cif} Si.extxyz\n`);
    // A data repository's pool in Git LFS, cloned without it: each file is a small pointer, whatever its name.
    const lfs = path.join(dir, "lfs");
    mkdirSync(path.join(lfs, "s1"), { recursive: true });
    const pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 48608028\n";
    for (const name of ["md.traj", "md.extxyz", path.join("s1", "POSCAR")]) writeFileSync(path.join(lfs, name), pointer);
    const pointers = await runCli("rank", "--pool", POOL, lfs, "--select", "2", "-o", path.join(dir, "lfs-out"));
    expect(pointers.code).toBe(1);
    const skipped = JSON.parse(readFileSync(path.join(dir, "lfs-out", "ranking.json"), "utf8")).skipped_sources;
    expect(skipped.map((s: { problem: string }) => s.problem.replace(lfs + path.sep, ""))).toEqual(
      ["md.extxyz", "md.traj", path.join("s1", "POSCAR")].map((name, i) => `${name}: a Git LFS pointer, not the file's content (git lfs pull fetches it into a clone), expected ${["an extxyz file", "an ASE trajectory", "a POSCAR"][i]}`),
    );
    const converted = await runCli("convert", traj, "-o", path.join(dir, "c.extxyz"));
    expect(converted.code).toBe(1);
    expect(converted.stderr).toBe(
      `error: ${traj}: an ASE trajectory, expected extxyz, vasprun.xml, OUTCAR or a run directory; convert it with: python3 -m ase convert ${traj} md.extxyz (relabel rank --pool reads it as candidates)\n`,
    );
  });

  it("refuses to write into an existing non-empty directory", async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, "keep.txt"), "round 1");
    const res = await runCli("rank", "--pool", POOL, "--select", "2", "-o", dir);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/exists and is not empty/);
    expect(readFileSync(path.join(dir, "keep.txt"), "utf8")).toBe("round 1");
  });

  it("with weights div=0 picks the largest committee energy disagreement first, matching members by structure", async () => {
    const dir = tmp();
    // Member B differs from member A by i meV on candidate i: the disagreement grows with the index.
    const m1 = memberFile(dir, "m1.xyz", () => -10);
    const m2 = memberFile(dir, "m2.xyz", (i) => -10 + i * 1e-3);
    const res = await runCli("rank", "--pool", POOL, "--select", "3", "--committee", m1, m2, "--weights", "div=0,dis=1", "-o", path.join(dir, "out"));
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    expect(ranking.selected.map((s: { frame: number }) => s.frame)).toEqual([200, 199, 198]);
    expect(ranking.committee.size).toBe(2);
    expect(ranking.rule).toMatch(/committee energy disagreement \(std of energy per atom\) only/);
    // Population std of (-10, -10 + 0.2) over 12 atoms: 0.1 eV / 12 per atom.
    expect(ranking.selected[0].disagreement_raw).toBeCloseTo(0.1 / 12, 12);
    expect(ranking.selected[0].disagreement).toBe(1);
    expect(res.stdout).toMatch(/#200 +diversity=\d+\.\d{3} +disagreement=1\.000\n/);
  });

  it("leaves the trust window's accurate and suspect candidates out, or only those --trust-exclude names", async () => {
    const dir = tmp();
    // Disagreement of candidate i: i meV between the members, halved (population std) over 12 atoms = i / 24000 eV/atom,
    // so candidates 0-23 are below the window (accurate) and 180-200 at or above it (suspect).
    const m1 = memberFile(dir, "m1.xyz", () => -10);
    const m2 = memberFile(dir, "m2.xyz", (i) => -10 + i * 1e-3);
    const rank = async (out: string, ...extra: string[]) => {
      const args = ["--pool", POOL, "--select", "3", "--committee", m1, m2, "--weights", "div=0,dis=1", "--force-trust", "0.001:0.0075"];
      const res = await runCli("rank", ...args, ...extra, "-o", path.join(dir, out));
      expect(res.stderr).toBe("");
      expect(res.code).toBe(0);
      const ranking = JSON.parse(readFileSync(path.join(dir, out, "ranking.json"), "utf8"));
      const csv = readFileSync(path.join(dir, out, "ranking.csv"), "utf8").trim().split("\n");
      const summary = res.stdout.split("\n")[0];
      return { ranking, summary, frames: ranking.selected.map((s: { frame: number }) => s.frame), flagsOf: (i: number) => csv[i + 1].split(",").at(-1) };
    };
    const both = await rank("both");
    expect(both.summary).toBe("ranked 201 candidates (156 selectable; left out: 24 accurate, 21 suspect), picked 3");
    expect(both.frames).toEqual([179, 178, 177]);
    expect(both.ranking.selectable).toBe(201 - 24 - 21);
    expect(both.ranking.parameters.trust_exclude).toEqual(["accurate", "suspect"]);
    expect(both.ranking.rule).toContain("trust window 0.001:0.0075 (below: accurate, at or above: suspect; both excluded)");
    expect([both.flagsOf(0), both.flagsOf(23), both.flagsOf(24), both.flagsOf(179), both.flagsOf(180)]).toEqual(["accurate", "accurate", "", "", "suspect"]);
    // Suspect candidates kept: their disagreement clamps to 1, the window's largest (179) normalises to 1 as well,
    // and ties go to the lowest index.
    const suspectKept = await rank("suspect-kept", "--trust-exclude", "accurate");
    expect(suspectKept.frames).toEqual([179, 180, 181]);
    expect(suspectKept.ranking.selectable).toBe(201 - 24);
    expect(suspectKept.ranking.rule).toContain("; accurate excluded, suspect kept)");
    expect(suspectKept.flagsOf(180)).toBe("suspect");
    expect(suspectKept.summary).toBe("ranked 201 candidates (177 selectable; left out: 24 accurate), picked 3");
    const none = await rank("none", "--trust-exclude", "none");
    expect(none.ranking.selectable).toBe(201);
    expect(none.summary).toBe("ranked 201 candidates (201 selectable), picked 3");
    expect(none.ranking.parameters.trust_exclude).toEqual([]);
  });

  it("matches committee predictions printed with fewer digits than the pool (ASE prints 8 decimals) by geometry", async () => {
    const dir = tmp();
    const pool = path.join(dir, "pool.extxyz");
    const converted = await runCli("convert", realPath("vasp/custodian_npt_common_LiPS_md_npt"), realPath("vasp/dpdata_h2o_md10"), "-o", pool);
    expect(converted.code).toBe(0);
    const frames = framesOf(pool);
    // mace_eval_configs writes through ASE: positions with 8 decimals. Member b's energy per atom is 2i meV above
    // member a's on frame i, a disagreement (population std) of i meV/atom; `shift` moves frame 1's first atom.
    const member = (name: string, perAtom: (i: number) => number, shift = 0): string => {
      const text = frames.map((f, i) => {
        const positions = f.positions.map((x) => Number(x.toFixed(8)));
        if (i === 1) positions[0] += shift;
        return writeExtxyzFrame({ ...f, positions, info: new Map([["MACE_energy", { kind: "float", value: -10 + f.natoms * perAtom(i) }]]), arrays: new Map() });
      });
      writeFileSync(path.join(dir, name), text.join(""));
      return path.join(dir, name);
    };
    const a = member("a.xyz", () => 0);
    const b = member("b.xyz", (i) => 2e-3 * i);
    const printedIds = framesOf(b).map((f) => candidateId(f));
    const differing = printedIds.filter((id, i) => id !== candidateId(frames[i])).length;
    expect(differing).toBeGreaterThan(0);
    const res = await runCli("rank", "--pool", pool, "--select", "2", "--committee", a, b, "-o", path.join(dir, "out"));
    // Said once for both members' files.
    expect(res.stderr).toBe(`note: --committee: ${2 * differing} structure(s) in the files were found by geometry within 1e-5 A, their ids differing (as when the files print fewer digits than the pool)\n`);
    expect(res.code).toBe(0);
    const rows = readFileSync(path.join(dir, "out", "ranking.csv"), "utf8").trim().split("\n").slice(1);
    expect(rows).toHaveLength(frames.length);
    rows.forEach((row, i) => expect(Number(row.split(",")[9])).toBeCloseTo(1e-3 * i, 12));
    // A structure 1e-3 A away is another structure: not a prediction for pool frame 1, which then has none.
    const moved = member("moved.xyz", (i) => 2e-3 * i, 1e-3);
    const far = await runCli("rank", "--pool", pool, "--select", "2", "--committee", a, moved, "-o", path.join(dir, "far"));
    expect(far.code).toBe(1);
    expect(far.stderr).toBe(`error: ${moved}: has no prediction for candidate ${candidateId(frames[1])} (${pool} frame 1): every member must predict every pool candidate\n`);
  });

  it("refuses --trust-exclude without a trust window, and levels it does not know", async () => {
    const dir = tmp();
    const alone = await runCli("rank", "--pool", POOL, "--select", "2", "--trust-exclude", "suspect", "-o", path.join(dir, "a"));
    expect(alone.code).toBe(2);
    expect(alone.stderr).toBe("relabel rank: --trust-exclude needs a trust window (--force-trust LO:HI)\n");
    const bad = await runCli("rank", "--pool", POOL, "--select", "2", "--force-trust", "0:1", "--trust-exclude", "failed", "-o", path.join(dir, "b"));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('relabel rank: trust levels to exclude "failed" are not accurate, suspect, both (accurate,suspect) or none\n');
  });

  it("rejects a committee of one, a committee file for other structures, and a selection larger than the pool", async () => {
    const dir = tmp();
    const one = await runCli("rank", "--pool", POOL, "--select", "2", "--committee", POOL, "-o", path.join(dir, "x"));
    expect(one.code).toBe(2);
    expect(one.stderr).toMatch(/at least 2 models/);
    const other = realPath("extxyz/matscipy_committee_test_data.xyz");
    const m1 = memberFile(dir, "m1.xyz", () => -1);
    const mismatch = await runCli("rank", "--pool", POOL, "--select", "2", "--committee", m1, other, "-o", path.join(dir, "y"));
    expect(mismatch.code).toBe(1);
    // Not an eval output at all: said before its structures are looked for (moved.xyz above is not in the pool).
    expect(mismatch.stderr).toBe(`error: ${other}: frame 0: has no MACE_energy (expected mace_eval_configs output)\n`);
    const big = await runCli("rank", "--pool", POOL, "--select", "500", "-o", path.join(dir, "z"));
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/--select 500 is larger than the pool \(201 candidates\)/);
  });

  it("takes extxyz files of features per structure, several after one flag, and refuses mixing them with a matrix", async () => {
    const dir = tmp();
    // The pool's frames in reverse with a per-atom feature column, as mace_eval_configs --return_descriptors writes.
    const frames = framesOf(POOL);
    const withFeatures = (f: Frame, i: number): Frame => ({
      ...f,
      info: new Map(),
      arrays: new Map([["MACE_descriptors", { dtype: "R", ncols: 2, data: Float64Array.from({ length: 2 * f.natoms }, (_, k) => Math.sin(i + k)) }]]),
    });
    const write = (name: string, rows: number[]): string => {
      writeFileSync(path.join(dir, name), rows.map((i) => writeExtxyzFrame(withFeatures(frames[i], i))).join(""));
      return path.join(dir, name);
    };
    const a = write("a.xyz", [...Array(100).keys()].reverse());
    const b = write("b.xyz", [...Array(101).keys()].map((i) => i + 100));
    const ok = await runCli("rank", "--pool", POOL, "--select", "3", "--features", a, b, "-o", path.join(dir, "out"));
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("rule: diversity-first (no committee): greedy farthest-point sampling in the space of MACE_descriptors (one mean vector per structure)\n");
    const npy = numpyArray([[1], [2]], path.join(dir, "f.npy"));
    const usage = async (args: string[], message: string): Promise<void> => {
      const res = await runCli("rank", "--pool", POOL, "--select", "2", ...args, "-o", path.join(dir, "x"));
      expect([res.code, res.stderr]).toEqual([2, `relabel rank: ${message}\n`]);
    };
    await usage(["--features", a, npy], `--features takes one matrix (.npy or JSON rows) or extxyz files of features per structure, not both (got ${a}, ${npy})`);
    await usage(["--features", npy, npy + ".json"], `--features takes one matrix (.npy or JSON rows), or extxyz files of features per structure (got ${npy}, ${npy}.json)`);
    await usage(["--features", npy, "--features-key", "SOAP"], "--features-key is about extxyz features: give --features FILE.extxyz...");
    await usage(["--features", npy, "--features-per-element"], "--features-per-element is about extxyz features: give --features FILE.extxyz...");
    await usage(["--features", a, "--descriptor", "element-pairs"], "give --descriptor or --features, not both: --features replaces the descriptor");
    // A labelled structure outside the pool (those in it take their pool rows).
    const outside = path.join(dir, "outside.xyz");
    writeFileSync(outside, writeExtxyzFrame({ ...frames[0], positions: frames[0].positions.map((x, k) => (k === 0 ? x + 0.1 : x)) }));
    await usage(["--features", npy, "--labeled", outside], `--labeled needs features for the labelled structures too, which ${npy} (one row per candidate) cannot give: add their matrix with --labeled-features FILE, or pass extxyz files of features by structure instead (mace_eval_configs --return_descriptors on the pool and the labelled set)`);
    const forLabelled = "--labeled-features gives the features of the --labeled structures beside a matrix --features FILE: give both";
    await usage(["--features", npy, "--labeled-features", npy], forLabelled);
    await usage(["--labeled", a, "--labeled-features", npy], forLabelled);
    await usage(["--features", a, "--labeled", a, "--labeled-features", npy], "--labeled-features is for a matrix --features: extxyz features are matched by structure, so add the labelled set's features file to --features instead");
  });

  it("seeds a matrix of features with the labelled structures' matrix (--labeled-features), as features by structure do", async () => {
    const dir = tmp();
    const frames = framesOf(POOL);
    const featuresOf = (i: number): number[] => [0, 1, 2].map((c) => Math.fround(Math.sin(3 * i + c) + 0.1 * c * i));
    // Labelled: two pool structures (their rows in the matrix are junk: they take their pool rows) and two that
    // are not in the pool (one atom moved by 0.1 A), with rows of their own.
    const moved = (i: number): Frame => ({ ...frames[i], positions: frames[i].positions.map((x, k) => (k === 0 ? x + 0.1 : x)) });
    const labelled = [
      { frame: frames[10], row: [100, 100, 100], features: featuresOf(10) },
      { frame: moved(20), row: featuresOf(20).map((x) => Math.fround(x + 0.01)), features: featuresOf(20).map((x) => Math.fround(x + 0.01)) },
      { frame: frames[50], row: [-100, 100, -100], features: featuresOf(50) },
      { frame: moved(80), row: featuresOf(80).map((x) => Math.fround(x - 0.02)), features: featuresOf(80).map((x) => Math.fround(x - 0.02)) },
    ];
    const labelledFile = path.join(dir, "labelled.xyz");
    writeFileSync(labelledFile, labelled.map((l) => writeExtxyzFrame(l.frame)).join(""));
    const withVector = (f: Frame, values: number[]): string =>
      writeExtxyzFrame({ ...f, info: new Map([["MACE_descriptors", { kind: "array", dtype: "float", shape: [3], data: values }]]) });
    const poolByStructure = path.join(dir, "pool-features.xyz");
    writeFileSync(poolByStructure, frames.map((f, i) => withVector(f, featuresOf(i))).join(""));
    const labelledByStructure = path.join(dir, "labelled-features.xyz");
    writeFileSync(labelledByStructure, labelled.map((l) => withVector(l.frame, l.features)).join(""));
    const poolMatrix = numpyArray(frames.map((_, i) => featuresOf(i)), path.join(dir, "pool.npy"));
    const labelledMatrix = numpyArray(labelled.map((l) => l.row), path.join(dir, "labelled.npy"));

    const rank = (name: string, ...args: string[]) => runCli("rank", "--pool", POOL, "--select", "6", "--labeled", labelledFile, ...args, "-o", path.join(dir, name));
    const byStructure = await rank("by-structure", "--features", poolByStructure, labelledByStructure);
    const byMatrix = await rank("by-matrix", "--features", poolMatrix, "--labeled-features", labelledMatrix);
    expect([byMatrix.code, byMatrix.stderr]).toEqual([0, ""]);
    expect(byStructure.code).toBe(0);
    for (const file of ["ranking.csv", "selected.extxyz"]) {
      expect(readFileSync(path.join(dir, "by-matrix", file), "utf8")).toBe(readFileSync(path.join(dir, "by-structure", file), "utf8"));
    }
    const ranking = JSON.parse(readFileSync(path.join(dir, "by-matrix", "ranking.json"), "utf8"));
    expect(ranking.parameters).toMatchObject({ descriptor: "features", features_file: poolMatrix, labeled_features_file: labelledMatrix });
    expect(ranking.parameters.labeled_features_file_sha256).toBe(createHash("sha256").update(readFileSync(labelledMatrix)).digest("hex"));
    expect(ranking.labeled_size).toBe(4);
    expect(byMatrix.stdout).toMatch(/^ranked 201 candidates \(199 selectable; left out: 2 labelled\), picked 6\n/);

    // Each problem with the labelled matrix in one line, naming the file.
    const fails = async (rows: number[][], message: string): Promise<void> => {
      const file = numpyArray(rows, path.join(dir, "bad.npy"));
      const res = await rank(`bad-${rows.length}-${rows[0]?.length}`, "--features", poolMatrix, "--labeled-features", file);
      expect([res.code, res.stderr]).toEqual([1, `error: ${file}: ${message}\n`]);
    };
    await fails(labelled.slice(1).map((l) => l.row), "has 3 feature rows, expected 4 (one per labelled structure, in the order --labeled reads them)");
    await fails(labelled.map((l) => [...l.row, 0]), `has 4 features per row, but ${poolMatrix} has 3: both must come from the same descriptor`);
    const id = candidateId(labelled[1].frame);
    await fails(labelled.map((l, j) => (j === 1 ? [0, NaN, 0] : l.row)), `row 1: column 1 of labelled structure 1 (${id}) is NaN, expected a finite number within float32 range`);

    // Labelled structures that are all in the pool need no matrix of their own: they take their pool rows.
    const inPool = path.join(dir, "in-pool.xyz");
    writeFileSync(inPool, [frames[10], frames[50]].map((f) => writeExtxyzFrame(f)).join(""));
    const rankInPool = (name: string, ...args: string[]) => runCli("rank", "--pool", POOL, "--select", "6", "--labeled", inPool, "--features", poolMatrix, ...args, "-o", path.join(dir, name));
    const own = await rankInPool("in-pool-own", "--labeled-features", numpyArray([labelled[0].row, labelled[2].row], path.join(dir, "junk.npy")));
    const none = await rankInPool("in-pool");
    expect([none.code, none.stderr]).toEqual([0, ""]);
    expect(own.code).toBe(0);
    for (const file of ["ranking.csv", "selected.extxyz"]) {
      expect(readFileSync(path.join(dir, "in-pool", file), "utf8")).toBe(readFileSync(path.join(dir, "in-pool-own", file), "utf8"));
    }
    const outside = await rank("outside", "--features", poolMatrix);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/--labeled needs features for the labelled structures too/);
  });

  it("never selects structures already in the labelled set", async () => {
    const dir = tmp();
    const first = await runCli("rank", "--pool", POOL, "--select", "4", "-o", path.join(dir, "r1"));
    expect(first.code).toBe(0);
    const labelled = path.join(dir, "r1", "selected.extxyz");
    const second = await runCli("rank", "--pool", POOL, "--select", "4", "--labeled", labelled, "-o", path.join(dir, "r2"));
    expect(second.code).toBe(0);
    const ids1 = JSON.parse(readFileSync(path.join(dir, "r1", "ranking.json"), "utf8")).selected.map((s: { candidate_id: string }) => s.candidate_id);
    const r2 = JSON.parse(readFileSync(path.join(dir, "r2", "ranking.json"), "utf8"));
    expect(r2.labeled_size).toBe(4);
    expect(second.stdout).toMatch(/^ranked 201 candidates \(197 selectable; left out: 4 labelled\), picked 4\n/);
    // The same structures read twice: the rule says how many of them differ, as labeled_size counts them.
    const copy = path.join(dir, "copy.extxyz");
    cpSync(labelled, copy);
    const twice = await runCli("rank", "--pool", POOL, "--select", "4", "--labeled", labelled, copy, "-o", path.join(dir, "r3"));
    expect(twice.code).toBe(0);
    const r3 = JSON.parse(readFileSync(path.join(dir, "r3", "ranking.json"), "utf8"));
    expect(r3.labeled_size).toBe(4);
    expect(r3.rule).toContain("; seeded by 8 labelled structures (4 distinct), which count as covered");
    expect(twice.stdout.split("\n")[1]).toBe(`rule: ${r3.rule}`);
    for (const s of r2.selected) expect(ids1).not.toContain(s.candidate_id);
    expect(readFileSync(path.join(dir, "r2", "ranking.csv"), "utf8").match(/,labelled\n/g)).toHaveLength(4);
  });

  it("takes a dataset folder (its split files) or VASP runs as the labelled set, and refuses a folder without structures", async () => {
    const dir = tmp();
    const runs = path.join(dir, "runs");
    mkdirSync(runs);
    for (const run of ["dpdata_h2o_md10", "custodian_npt_common_LiPS_md_npt", "flare_methanol_md2"]) symlinkSync(realPath(`vasp/${run}`), path.join(runs, run));
    const build = await runCli("dataset", "build", "--runs", runs, "--allow-mixed-settings", "--allow-empty-split", "-o", path.join(dir, "dataset"));
    expect(build.code).toBe(0);
    const res = await runCli("rank", "--pool", runs, "--select", "2", "--labeled", path.join(dir, "dataset"), "-o", path.join(dir, "out"));
    expect(res.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    const splits = readdirSync(path.join(dir, "dataset")).filter((f) => f.endsWith(".extxyz"));
    expect(ranking.labeled.map((l: { path: string }) => path.basename(l.path)).sort()).toEqual(splits.sort());
    expect(res.stdout).toMatch(/^ranked 22 candidates \(0 selectable; left out: 22 labelled\), picked 0 of 2 requested/);
    expect(res.stderr).toBe("warning: picked 0 of the 2 requested: only 0 of the 22 candidates can be picked (left out: 22 labelled)\n");
    expect([ranking.selection_size, ranking.requested]).toEqual([0, 2]);
    // Its largest split kept gzipped, as the App keeps a split over 50 MiB in the data repository.
    const largest = splits.sort((a, b) => statSync(path.join(dir, "dataset", b)).size - statSync(path.join(dir, "dataset", a)).size)[0];
    writeFileSync(path.join(dir, "dataset", `${largest}.gz`), gzipSync(readFileSync(path.join(dir, "dataset", largest))));
    rmSync(path.join(dir, "dataset", largest));
    const gzipped = await runCli("rank", "--pool", runs, "--select", "2", "--labeled", path.join(dir, "dataset"), "-o", path.join(dir, "out-gz"));
    expect(gzipped.stdout).toMatch(/^ranked 22 candidates \(0 selectable; left out: 22 labelled\)/);
    // The runs themselves, before any dataset was built from them: the same structures are labelled.
    const fromRuns = await runCli("rank", "--pool", runs, "--select", "2", "--labeled", runs, "-o", path.join(dir, "runs-labelled"));
    expect(fromRuns.code).toBe(0);
    expect(fromRuns.stdout).toMatch(/^ranked 22 candidates \(0 selectable; left out: 22 labelled\), picked 0 of 2 requested/);
    const labelled = JSON.parse(readFileSync(path.join(dir, "runs-labelled", "ranking.json"), "utf8")).labeled;
    expect(labelled.map((l: { path: string; frames: number }) => [path.basename(l.path), l.frames])).toEqual([
      ["custodian_npt_common_LiPS_md_npt", 10],
      ["dpdata_h2o_md10", 10],
      ["flare_methanol_md2", 2],
    ]);
    expect(labelled[1].sha256).toBe(createHash("sha256").update(readFileSync(realPath("vasp/dpdata_h2o_md10/vasprun.xml"))).digest("hex"));
    const empty = path.join(dir, "empty");
    mkdirSync(empty);
    const refused = await runCli("rank", "--pool", runs, "--select", "2", "--labeled", empty, "-o", path.join(dir, "again"));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`error: ${empty}: no structures (POSCAR, CONTCAR, *.vasp, *.extxyz, *.xyz, XDATCAR, *.traj, *.lammpstrj or VASP runs) found in this folder\n`);
  });

  it("knows a labelled structure read back from VASP's output as the pool's POSCAR it came from, though its id differs", async () => {
    const dir = tmp();
    // The pool: real POSCARs. The labelled set: the FeS relaxation run from its POSCAR, read from OUTCAR (5 decimals).
    const pool = path.join(dir, "pool");
    mkdirSync(pool);
    const runs = ["custodian_potim_FeS_relax_killed", "custodian_postprocess_FeO_relax_isif3", "custodian_lobster_NaCl_static", "aiidavasp_Si_relax_ionic_unconverged"];
    for (const run of runs) writeFileSync(path.join(pool, `${run}.vasp`), readFileSync(path.join(realPath(`vasp/${run}`), "POSCAR")));
    const labelled = path.join(dir, "labelled.extxyz");
    expect((await runCli("convert", realPath(`vasp/${runs[0]}`), "-o", labelled)).code).toBe(0);
    const poscarId = candidateId({ ...parsePoscar(readFileSync(path.join(pool, `${runs[0]}.vasp`), "utf8"), { file: "POSCAR" }).frame, pbc: [true, true, true] });
    expect(framesOf(labelled).map((f) => candidateId(f))).not.toContain(poscarId);
    const res = await runCli("rank", "--pool", pool, "--select", "3", "--labeled", labelled, "-o", path.join(dir, "out"));
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    expect(ranking.selectable).toBe(3);
    expect(ranking.selected.map((s: { candidate_id: string }) => s.candidate_id)).not.toContain(poscarId);
    const row = readFileSync(path.join(dir, "out", "ranking.csv"), "utf8").split("\n").find((line) => line.includes(poscarId));
    expect(row).toMatch(/,labelled$/);
  });

  it("knows a labelled structure from VASP as the pool frame it came from when the pool's frame has atoms outside the cell", async () => {
    const dir = tmp();
    // The pool: the FeS POSCAR's structure as an unwrapped MD frame (two atoms a lattice vector or more outside the
    // cell) beside three other real POSCARs. The labelled set: its run, from the POSCAR inside the cell (OUTCAR).
    const runs = ["custodian_potim_FeS_relax_killed", "custodian_postprocess_FeO_relax_isif3", "custodian_lobster_NaCl_static", "aiidavasp_Si_relax_ionic_unconverged"];
    const pool = path.join(dir, "pool");
    mkdirSync(pool);
    const { frame } = parsePoscar(readFileSync(path.join(realPath(`vasp/${runs[0]}`), "POSCAR"), "utf8"), { file: "POSCAR" });
    const positions = frame.positions.slice();
    for (const [atom, n] of [[3, [0, 1, 0]], [30, [2, 0, -1]]] as const) {
      for (let k = 0; k < 3; k++) positions[3 * atom + k] += n[0] * frame.cell[k] + n[1] * frame.cell[3 + k] + n[2] * frame.cell[6 + k];
    }
    const unwrapped = { ...frame, positions, pbc: [true, true, true] as [boolean, boolean, boolean] };
    writeFileSync(path.join(pool, "md.extxyz"), writeExtxyzFrame(unwrapped));
    for (const run of runs.slice(1)) writeFileSync(path.join(pool, `${run}.vasp`), readFileSync(path.join(realPath(`vasp/${run}`), "POSCAR")));
    const labelled = path.join(dir, "labelled.extxyz");
    expect((await runCli("convert", realPath(`vasp/${runs[0]}`), "-o", labelled)).code).toBe(0);
    const res = await runCli("rank", "--pool", pool, "--select", "3", "--labeled", labelled, "-o", path.join(dir, "out"));
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    expect(ranking.selectable).toBe(3);
    const row = readFileSync(path.join(dir, "out", "ranking.csv"), "utf8").split("\n").find((line) => line.includes(candidateId(unwrapped)));
    expect(row).toMatch(/,labelled$/);
  });

  it("lets a labelled molecule that ran in VASP's box cover its pool copy's neighbours as that copy (no cell, no volume)", async () => {
    const dir = tmp();
    const molecule = async (run: string): Promise<Frame> => {
      for await (const step of readRun(realPath(`vasp/${run}`))) {
        return { natoms: step.symbols.length, symbols: step.symbols, positions: step.positions, cell: new Float64Array(9), pbc: [false, false, false], info: new Map(), arrays: new Map() };
      }
      throw new Error(`${run} has no step`);
    };
    // The pool: methanol (the labelled run's first step, without its box), a copy with one atom moved by 0.05 A, and
    // three other molecules. The labelled set: the methanol run itself, in its 10.6 x 10.0 x 20 A box.
    const methanol = await molecule("flare_methanol_md2");
    const nudged = { ...methanol, positions: methanol.positions.map((x, i) => (i === 3 ? x + 0.05 : x)) };
    const others = await Promise.all(["dpdata_ch4_md_scf_unconverged", "dpdata_h2o_md10", "custodian_auto_nbands_CO_v621"].map(molecule));
    const pool = path.join(dir, "molecules.extxyz");
    writeFileSync(pool, [methanol, nudged, ...others].map((f) => writeExtxyzFrame(f)).join(""));
    const res = await runCli("rank", "--pool", pool, "--select", "3", "--labeled", realPath("vasp/flare_methanol_md2"), "-o", path.join(dir, "out"));
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const rows = readFileSync(path.join(dir, "out", "ranking.csv"), "utf8").trim().split("\n").slice(1).map((line) => line.split(","));
    expect(rows[0].at(-1)).toBe("labelled");
    // The nudged copy is the one left: it is next to the labelled methanol.
    expect(rows.filter((r) => r[6] !== "").map((r) => Number(r[0]))).toEqual([2, 3, 4]);
  });

  it("names the candidate whose user-supplied feature is not finite", async () => {
    const dir = tmp();
    const rows = Array.from({ length: 201 }, (_, i) => [i, i === 7 ? Number.NaN : 1]);
    const file = path.join(dir, "features.json");
    writeFileSync(file, JSON.stringify(rows).replace("null", "1e999"));
    const res = await runCli("rank", "--pool", POOL, "--select", "2", "--features", file, "-o", path.join(dir, "o"));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/row 7: column 1 of candidate 7 \(\w+\) is Infinity, expected a finite number/);
  });

  it("reads plain extxyz pools with the native frame reader where it is built, to the artifacts of JavaScript alone", async () => {
    const dir = tmp();
    const pool = path.join(dir, "pool.xyz");
    writeFileSync(pool, Buffer.concat(readdirSync(realPath("extxyz")).sort().map((f) => readFileSync(path.join(realPath("extxyz"), f)))));
    const nativeFrames = vi.spyOn(ExtxyzSummaryScanner.prototype as unknown as { nativeFrames: () => number }, "nativeFrames");
    const native = await runCli("rank", "--pool", pool, "--select", "12", "-o", path.join(dir, "native"));
    const called = nativeFrames.mock.calls.length;
    // Only a labelled set needs the projections the native reader does not compute: then JavaScript reads every frame.
    const labelled = await runCli("rank", "--pool", pool, "--select", "12", "--labeled", path.join(realPath("extxyz"), readdirSync(realPath("extxyz")).sort()[0]), "-o", path.join(dir, "labelled"));
    expect(nativeFrames.mock.calls.length).toBe(called);
    nativeFrames.mockRestore();
    vi.stubEnv("RELABEL_KERNELS", "wasm");
    const js = await runCli("rank", "--pool", pool, "--select", "12", "-o", path.join(dir, "js"));
    vi.unstubAllEnvs();
    expect([native.code, labelled.code, js.code]).toEqual([0, 0, 0]);
    if (process.platform === "linux" && process.arch === "x64") expect(called).toBeGreaterThan(0);
    for (const f of ["ranking.json", "ranking.csv", "selected.extxyz"]) {
      expect(readFileSync(path.join(dir, "native", f)).equals(readFileSync(path.join(dir, "js", f))), f).toBe(true);
    }
  });

  it("reads a large extxyz pool on worker threads, with the same artifacts as one thread", async () => {
    const dir = tmp();
    const files = readdirSync(realPath("extxyz")).sort().map((f) => readFileSync(path.join(realPath("extxyz"), f)));
    const pool = path.join(dir, "large.xyz");
    writeFileSync(pool, Buffer.concat([...files, ...files, ...files, ...files, ...files]));
    expect(statSync(pool).size).toBeGreaterThanOrEqual(PARALLEL_SCAN_MIN_BYTES);
    // Threaded, the pool is read once: ids and descriptors together (rows in their frames' species).
    const fused = vi.spyOn(ExtxyzScanner.prototype, "scanAndDescribe");
    const threaded = await runCli("rank", "--pool", pool, "--select", "25", "-o", path.join(dir, "threaded"));
    expect(fused).toHaveBeenCalledTimes(1);
    fused.mockRestore();
    const single = await runCli("rank", "--pool", pool, "--select", "25", "--threads", "1", "-o", path.join(dir, "single"));
    expect(threaded.code).toBe(0);
    expect(single.code).toBe(0);
    for (const f of ["ranking.json", "ranking.csv", "selected.extxyz"]) {
      expect(readFileSync(path.join(dir, "threaded", f)).equals(readFileSync(path.join(dir, "single", f)))).toBe(true);
    }
    const csv = readFileSync(path.join(dir, "single", "ranking.csv"), "utf8").trim().split("\n");
    // Each structure appears (at least) five times: only its first copy may be picked.
    const duplicates = csv.filter((line) => /duplicate-of-\d+$/.test(line));
    expect(duplicates.length).toBeGreaterThanOrEqual(((csv.length - 1) * 4) / 5);
    expect(duplicates.filter((line) => line.split(",")[6] !== "")).toEqual([]);
  });

  it("leaves out a pool source it cannot read, says so, and ranks the others as if it were absent", async () => {
    const dir = tmp();
    const pool = path.join(dir, "pool");
    mkdirSync(path.join(pool, "c"), { recursive: true });
    // A large file (read on worker threads) whose last frame is cut, before the good one: its candidates are taken back.
    const files = readdirSync(realPath("extxyz")).sort().map((f) => readFileSync(path.join(realPath("extxyz"), f)));
    const cut = Buffer.concat([...files, ...files, ...files, ...files, ...files, Buffer.from("3\nProperties=species:S:1:pos:R:3\nXe 0 0 0\n")]);
    expect(cut.length).toBeGreaterThanOrEqual(PARALLEL_SCAN_MIN_BYTES);
    writeFileSync(path.join(pool, "a-cut.xyz"), cut);
    writeFileSync(path.join(pool, "b.xyz"), readFileSync(POOL));
    writeFileSync(path.join(pool, "c", "POSCAR"), "Si without species\n1.0\n5.43 0 0\n0 5.43 0\n0 0 5.43\n2\nDirect\n0 0 0\n0.25 0.25 0.25\n");
    const alone = await runCli("rank", "--pool", POOL, "--select", "6", "-o", path.join(dir, "alone"));
    expect(alone.code).toBe(0);
    const idsOf = (out: string) => JSON.parse(readFileSync(path.join(dir, out, "ranking.json"), "utf8")).selected.map((p: { candidate_id: string }) => p.candidate_id);
    for (const threads of ["2", "1"]) {
      const res = await runCli("rank", "--pool", pool, "--select", "6", "--threads", threads, "-o", path.join(dir, `t${threads}`));
      // Written, and said to be of part of the pool: in the exit code and the summary's last line.
      expect(res.code).toBe(1);
      expect(res.stdout.trimEnd().split("\n").at(-1)).toBe("2 pool sources could not be read and were left out (warnings above; ranking.json: skipped_sources): exit code 1");
      const ranking = JSON.parse(readFileSync(path.join(dir, `t${threads}`, "ranking.json"), "utf8"));
      expect(ranking.skipped_sources.map((s: { path: string }) => path.relative(pool, s.path))).toEqual(["a-cut.xyz", path.join("c", "POSCAR")]);
      expect(ranking.skipped_sources[0].problem).toMatch(/a-cut\.xyz:\d+: frame has 1 atom line\(s\), expected 3: the file ends at line \d+$/);
      expect(ranking.sources.map((s: { path: string }) => path.basename(s.path))).toEqual(["b.xyz"]);
      expect(ranking.pool_size).toBe(201);
      expect(idsOf(`t${threads}`)).toEqual(idsOf("alone"));
      expect(res.stderr.split("\n").filter((line) => line.startsWith("warning: pool source left out, it cannot be read: "))).toHaveLength(2);
      expect(res.stdout).toMatch(/^ranked 201 candidates from all pool sources but 2 \(201 selectable\), picked 6\n/);
    }
    // With --features the rows follow every source's candidates: an unreadable source stops the ranking.
    const features = path.join(dir, "features.json");
    writeFileSync(features, JSON.stringify(Array.from({ length: 201 }, (_, i) => [i, i % 7])));
    const withFeatures = await runCli("rank", "--pool", pool, "--select", "6", "--features", features, "-o", path.join(dir, "features"));
    expect(withFeatures.code).toBe(1);
    expect(withFeatures.stderr).toMatch(/^error: .*a-cut\.xyz:\d+: frame has 1 atom line\(s\), expected 3/);
  });

  it("stops at a structure it cannot describe, naming its file and frame, whether the file is read on this thread or on workers", async () => {
    const dir = tmp();
    const bad = '1\nLattice="0 0 0 0 5 0 0 0 5" pbc="T T T" Properties=species:S:1:pos:R:3\nSi 0 0 0\n';
    const files = readdirSync(realPath("extxyz")).sort().map((f) => readFileSync(path.join(realPath("extxyz"), f)));
    const large = Buffer.concat([...files, ...files, ...files, ...files, ...files]);
    const frameCount = (bytes: Buffer) => parseExtxyz(bytes).length;
    for (const [name, body] of [["small.xyz", readFileSync(POOL)], ["large.xyz", large]] as const) {
      const file = path.join(dir, name);
      writeFileSync(file, Buffer.concat([body, Buffer.from(bad)]));
      const res = await runCli("rank", "--pool", POOL, file, "--select", "3", "-o", path.join(dir, `out-${name}`));
      expect(res.code).toBe(1);
      expect(res.stderr).toBe(`error: ${file}: frame ${frameCount(body)}: pbc is true along cell vector 1 but that vector is zero\n`);
    }
  });

  it("selects beside the pool scan from a float32 or float64 .npy, with one thread's artifacts, also when the ids overrule it", async () => {
    const dir = tmp();
    const frames = framesOf(POOL);
    // The pool with a copy of frame 3 at the end.
    const pool = path.join(dir, "pool.extxyz");
    writeFileSync(pool, [...frames, frames[3]].map((f) => writeExtxyzFrame(f)).join(""));
    const N = frames.length + 1;
    // 5000 columns, all but three zero: enough values for the selection to start early.
    const padding: number[] = Array(4997).fill(0);
    const rows = frames.map((_, i) => [Math.sin(i), Math.cos(3 * i), (i % 7) / 7, ...padding]);
    const far = [50, 50, 50, ...padding];
    for (const [name, copyRow, dtype] of [["near", rows[3], "<f4"], ["far", far, "<f4"], ["far-f8", far, "<f8"]] as const) {
      // "far": the copy is the first pick while ids are unknown, and the ids then forbid it.
      const features = numpyArray([...rows, [...copyRow]], path.join(dir, `${name}.npy`), dtype);
      earlyRuns.length = 0;
      const early = await runCli("rank", "--pool", pool, "--select", "20", "--features", features, "-o", path.join(dir, `${name}-early`));
      expect(early.code).toBe(0);
      expect(earlyRuns).toHaveLength(1);
      const speculative: SelectionResult = await earlyRuns[0].result;
      const single = await runCli("rank", "--pool", pool, "--select", "20", "--features", features, "--threads", "1", "-o", path.join(dir, `${name}-single`));
      expect(single.code).toBe(0);
      expect(earlyRuns).toHaveLength(1);
      for (const f of ["ranking.json", "ranking.csv", "selected.extxyz"]) {
        expect(readFileSync(path.join(dir, `${name}-early`, f)).equals(readFileSync(path.join(dir, `${name}-single`, f)))).toBe(true);
      }
      const picked = (JSON.parse(readFileSync(path.join(dir, `${name}-early`, "ranking.json"), "utf8")) as { selected: { frame: number }[] }).selected.map((p) => p.frame);
      expect(picked).not.toContain(N - 1);
      if (copyRow === far) expect(speculative.picks[0].index).toBe(N - 1);
      else expect(speculative.picks.map((p) => p.index)).toEqual(picked);
    }
    // What the usual path reports still comes first, and the worker is stopped.
    const short = numpyArray(rows, path.join(dir, "short.npy"));
    const res = await runCli("rank", "--pool", pool, "--select", "20", "--features", short, "-o", path.join(dir, "short"));
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`short.npy: has ${N - 1} feature rows, expected ${N} (one per candidate, in candidate order)`);
    const broken = path.join(dir, "broken.extxyz");
    writeFileSync(broken, readFileSync(pool, "utf8").replace(/\n1\d\n/, "\nx\n"));
    const bad = await runCli("rank", "--pool", broken, "--select", "20", "--features", short, "-o", path.join(dir, "bad"));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/broken\.extxyz/);
    expect(earlyRuns).toHaveLength(3);
  });

  it("leaves out a pool source whose positions or cell are not finite numbers, naming the line, on one thread or on workers", async () => {
    const dir = tmp();
    // ASE reads nan and inf in an extxyz file as numbers; no structure has them.
    const al = readFileSync(realPath("extxyz/metatrain_flashmd_Al.xyz"), "utf8").split("\n");
    const nanPosition = al.map((line, i) => (i === 2 ? line.replace("-0.20355672", "nan") : line)).join("\n");
    const infCell = al.map((line, i) => (i === 1 ? line.replace('Lattice="8.1 ', 'Lattice="inf ') : line)).join("\n");
    const files = readdirSync(realPath("extxyz")).sort().map((f) => readFileSync(path.join(realPath("extxyz"), f)));
    const large = Buffer.concat([...files, ...files, ...files, ...files, ...files]);
    const largeLines = large.toString("latin1").split("\n").length - 1;
    const position = "atom 0 (Al, 0-based): position x is nan; expected a finite number";
    const cell = "cell vector a1 has x = inf; expected finite numbers";
    const cases = [
      ["nan.xyz", Buffer.from(nanPosition), 3, position],
      ["cell.xyz", Buffer.from(infCell), 2, cell],
      ["large-nan.xyz", Buffer.concat([large, Buffer.from(nanPosition)]), largeLines + 3, position],
      ["large-cell.xyz", Buffer.concat([large, Buffer.from(infCell)]), largeLines + 2, cell],
    ] as const;
    for (const [name, bytes, line, problem] of cases) {
      const file = path.join(dir, name);
      writeFileSync(file, bytes);
      if (name.startsWith("large")) expect(bytes.length).toBeGreaterThanOrEqual(PARALLEL_SCAN_MIN_BYTES);
      for (const threads of ["2", "1"]) {
        const out = path.join(dir, `${name}-${threads}`);
        const res = await runCli("rank", "--pool", POOL, file, "--select", "3", "--threads", threads, "-o", out);
        expect(res.stderr).toBe(`warning: pool source left out, it cannot be read: ${file}:${line}: ${problem}\n`);
        expect(res.code).toBe(1);
        const ranking = JSON.parse(readFileSync(path.join(out, "ranking.json"), "utf8"));
        expect(ranking.skipped_sources).toEqual([{ path: file, problem: `${file}:${line}: ${problem}` }]);
        expect(ranking.pool_size).toBe(201);
      }
    }
  });

  it("takes committee files that predict more structures than the pool: the others are counted in a note, a candidate without a prediction is an error", async () => {
    const dir = tmp();
    // Predicted once on a whole set, ranked on part of it.
    const evalFile = realPath("mace/imagdau_mace01_eval_solvent_train.xyz");
    const all = framesOf(evalFile);
    const pool = path.join(dir, "pool.extxyz");
    writeFileSync(pool, all.slice(20, 120).map((f) => writeExtxyzFrame(f)).join(""));
    // Member b's energy per atom is 2i meV above member a's on frame i: a disagreement of i meV/atom.
    const perturbed = (frames: Frame[]): string =>
      frames.map((f, i) => {
        const energy = f.info.get("MACE_energy") as { value: number };
        return writeExtxyzFrame({ ...f, info: new Map([...f.info, ["MACE_energy", { kind: "float", value: energy.value + 2e-3 * i * f.natoms }]]) });
      }).join("");
    const b = path.join(dir, "b.xyz");
    writeFileSync(b, perturbed(all));
    const res = await runCli("rank", "--pool", pool, "--committee", evalFile, b, "--select", "3", "-o", path.join(dir, "out"));
    expect(res.stderr).toBe(
      [evalFile, b].map((file) => `note: --committee: ${all.length - 100} structure(s) in ${file} are not pool candidates, and were not used\n`).join(""),
    );
    expect(res.code).toBe(0);
    const rows = readFileSync(path.join(dir, "out", "ranking.csv"), "utf8").trim().split("\n").slice(1);
    expect(rows).toHaveLength(100);
    rows.forEach((row, k) => expect(Number(row.split(",")[9])).toBeCloseTo(1e-3 * (20 + k), 9));
    // Every pool candidate still needs each member's prediction.
    const partial = path.join(dir, "partial.xyz");
    writeFileSync(partial, all.filter((_, i) => i !== 57).map((f) => writeExtxyzFrame(f)).join(""));
    const missing = await runCli("rank", "--pool", pool, "--committee", evalFile, partial, "--select", "3", "-o", path.join(dir, "missing"));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`error: ${partial}: has no prediction for candidate ${candidateId(all[57])} (${pool} frame 37): every member must predict every pool candidate\n`);
  });

  it("refuses a member file that predicts a structure twice differently, a non-finite energy and a member given twice", async () => {
    const dir = tmp();
    const m1 = memberFile(dir, "m1.xyz", () => -10);
    const m2 = memberFile(dir, "m2.xyz", (i) => -10 + i * 1e-3);
    const frames = framesOf(m2);
    const again = (name: string, energy: number): string => {
      const file = path.join(dir, name);
      writeFileSync(file, readFileSync(m2, "utf8") + writeExtxyzFrame({ ...frames[3], info: new Map([["MACE_energy", { kind: "float", value: energy }]]) }));
      return file;
    };
    // The pool's frame 197 (file frame 3, written in reverse) predicted again at +100 eV: an error naming both frames.
    const twice = again("twice.xyz", -10 + 197e-3 + 100);
    const res = await runCli("rank", "--pool", POOL, "--select", "2", "--committee", m1, twice, "-o", path.join(dir, "twice"));
    expect(res.code).toBe(1);
    const id = candidateId(framesOf(POOL)[197]);
    expect(res.stderr).toBe(
      `error: ${twice}: frame 201: predicts candidate ${id} (${POOL} frame 197) again, differently from frame 3 (MACE_energy ${-10 + 197e-3 + 100} against ${-10 + 197e-3}): a member file must give each structure one prediction\n`,
    );
    // The same prediction twice (within float32 noise) is one prediction.
    const same = again("same.xyz", (-10 + 197e-3) * (1 + 1e-7));
    const ok = await runCli("rank", "--pool", POOL, "--select", "2", "--committee", m1, same, "-o", path.join(dir, "same"));
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    const nan = path.join(dir, "nan.xyz");
    writeFileSync(nan, readFileSync(m2, "utf8").replace(/MACE_energy=[^ ]+/, "MACE_energy=nan"));
    const bad = await runCli("rank", "--pool", POOL, "--select", "2", "--committee", m1, nan, "-o", path.join(dir, "nan"));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(`error: ${nan}: frame 0: MACE_energy is NaN, expected a finite number\n`);
    const relative = path.relative(process.cwd(), m1);
    for (const listed of [[m1, m1, m2], [m1, relative, m2]]) {
      const repeated = await runCli("rank", "--pool", POOL, "--select", "2", "--committee", ...listed, "-o", path.join(dir, "repeated"));
      expect(repeated.code).toBe(2);
      expect(repeated.stderr).toBe(`relabel rank: --committee lists ${listed[1] === m1 ? `${m1} twice` : `${m1} and ${relative}, the same file`}: give each member's predictions once\n`);
    }
  });

  it("warns when the committee agrees everywhere, and then ranks by diversity alone, with weights or uwfps", async () => {
    const dir = tmp();
    const m1 = memberFile(dir, "m1.xyz", () => -10);
    const m2 = memberFile(dir, "m2.xyz", () => -10);
    const plain = await runCli("rank", "--pool", POOL, "--select", "5", "-o", path.join(dir, "plain"));
    expect(plain.code).toBe(0);
    const picks = (out: string): number[] => JSON.parse(readFileSync(path.join(dir, out, "ranking.json"), "utf8")).selected.map((s: { frame: number }) => s.frame);
    for (const [out, rule] of [["weights", []], ["uwfps", ["--rule", "uwfps:1,1"]]] as const) {
      const res = await runCli("rank", "--pool", POOL, "--select", "5", "--committee", m1, m2, ...rule, "-o", path.join(dir, out));
      expect(res.code).toBe(0);
      expect(res.stderr).toBe("warning: the committee's disagreement is the same for every selectable candidate (identical members?): it does not change the ranking\n");
      expect(picks(out)).toEqual(picks("plain"));
      const ranking = JSON.parse(readFileSync(path.join(dir, out, "ranking.json"), "utf8"));
      expect(ranking.rule).toContain("the disagreement is the same for every selectable candidate, so diversity alone decides");
      expect(ranking.committee.files).toEqual([m1, m2].map((file) => ({ path: file, sha256: createHash("sha256").update(readFileSync(file)).digest("hex") })));
    }
    // uwfps scales the disagreement by its largest: the least uncertain candidate keeps its diversity.
    const m3 = memberFile(dir, "m3.xyz", (i) => -10 + (i + 1) * 1e-3);
    const varied = await runCli("rank", "--pool", POOL, "--select", "1", "--committee", m1, m3, "--rule", "uwfps:1,1", "-o", path.join(dir, "varied"));
    expect(varied.code).toBe(0);
    const rows = readFileSync(path.join(dir, "varied", "ranking.csv"), "utf8").trim().split("\n").slice(1).map((row) => row.split(","));
    expect(Number(rows[0][8])).toBeCloseTo(1 / 201, 12);
    expect(Number(rows[200][8])).toBe(1);
    // The range is the selectable candidates': with the most uncertain one labelled, the next reaches 1.
    const labelled = path.join(dir, "labelled.xyz");
    writeFileSync(labelled, writeExtxyzFrame(framesOf(POOL)[200]));
    const seeded = await runCli("rank", "--pool", POOL, "--labeled", labelled, "--select", "1", "--committee", m1, m3, "-o", path.join(dir, "seeded"));
    expect(seeded.code).toBe(0);
    const seededRows = readFileSync(path.join(dir, "seeded", "ranking.csv"), "utf8").trim().split("\n").slice(1).map((row) => row.split(","));
    expect(seededRows[199][8]).toBe("1");
    expect(seededRows[200][8]).toBe("1");
    expect(seededRows[200][10]).toBe("labelled");
    expect(Number(seededRows[0][8])).toBe(0);
    const force = await runCli("rank", "--pool", POOL, "--select", "1", "--disagreement", "force", "-o", path.join(dir, "force"));
    expect(force.stderr).toBe("warning: --disagreement force has no effect without a committee (--committee or --committee-keys): the ranking is by diversity alone\n");
  });

  it("needs no committee prediction for a labelled structure in the pool, which is not a candidate", async () => {
    const dir = tmp();
    const labelled = path.join(dir, "labelled.xyz");
    writeFileSync(labelled, writeExtxyzFrame(framesOf(POOL)[200]));
    const without200 = (name: string, energy: (i: number) => number): string => {
      const file = path.join(dir, name);
      writeFileSync(file, framesOf(POOL).slice(0, 200).map((f, i) => writeExtxyzFrame({ ...f, info: new Map([["MACE_energy", { kind: "float", value: energy(i) }]]) })).join(""));
      return file;
    };
    const m1 = without200("m1.xyz", () => -10);
    const m2 = without200("m2.xyz", (i) => -10 + i * 1e-3);
    const res = await runCli("rank", "--pool", POOL, "--labeled", labelled, "--select", "2", "--committee", m1, m2, "--disagreement", "energy", "-o", path.join(dir, "out"));
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const rows = readFileSync(path.join(dir, "out", "ranking.csv"), "utf8").trim().split("\n").slice(1).map((row) => row.split(","));
    expect(rows[200].slice(8)).toEqual(["", "", "labelled"]);
    expect(rows[199][8]).toBe("1");
    // Without the labelled set, frame 200 is a candidate and needs its prediction.
    const missing = await runCli("rank", "--pool", POOL, "--select", "2", "--committee", m1, m2, "-o", path.join(dir, "missing"));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/has no prediction for candidate [0-9a-f]{20} \(.* frame 200\)/);
  });

  it("refuses -o naming a file, or a folder that cannot be made", async () => {
    const dir = tmp();
    const file = path.join(dir, "ranking");
    writeFileSync(file, "not a folder");
    const res = await runCli("rank", "--pool", POOL, "--select", "2", "-o", file);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(`relabel rank: ${file} is a file: -o names the folder the ranking goes into; choose a new one\n`);
    const under = await runCli("rank", "--pool", POOL, "--select", "2", "-o", path.join(file, "out"));
    expect([under.code, under.stderr]).toEqual([2, `relabel rank: -o ${path.join(file, "out")}: cannot write a folder there (ENOTDIR)\n`]);
  });

  it("writes the pool's calculator results into selected.extxyz under pool_ names, which ASE does not read back as labels", async () => {
    const dir = tmp();
    // An MD pool with its model's energy, free_energy, stress, forces and per-atom energies, as ASE writes them.
    const md = realPath("extxyz/metatrain_flashmd_Al.xyz");
    const res = await runCli("rank", "--pool", md, "--select", "3", "-o", path.join(dir, "out"));
    expect(res.code).toBe(0);
    const selected = path.join(dir, "out", "selected.extxyz");
    const pool = framesOf(md);
    const ranking = JSON.parse(readFileSync(path.join(dir, "out", "ranking.json"), "utf8"));
    framesOf(selected).forEach((pick, r) => {
      const from = pool[ranking.selected[r].frame];
      for (const key of ["energy", "free_energy", "stress"]) {
        expect(pick.info.has(key)).toBe(false);
        expect(pick.info.get(`pool_${key}`)).toEqual(from.info.get(key));
      }
      for (const key of ["forces", "energies"]) {
        expect(pick.arrays.has(key)).toBe(false);
        expect(pick.arrays.get(`pool_${key}`)).toEqual(from.arrays.get(key));
      }
      // Geometry only: the id is the pool's.
      expect(candidateId(pick)).toBe(ranking.selected[r].candidate_id);
    });
    const script = "import sys\nfrom ase.io import read\nprint([a.calc is None for a in read(sys.argv[1], ':')])";
    expect(execFileSync("/usr/bin/python3", ["-c", script, selected]).toString().trim()).toBe("[True, True, True]");
  });

  it("says a negative value is not positive, and that --weights' disagreement weight does nothing without a committee", async () => {
    const dir = tmp();
    const negative = await runCli("rank", "--pool", POOL, "--select", "-1", "-o", path.join(dir, "a"));
    expect([negative.code, negative.stderr]).toEqual([2, 'relabel rank: --select must be a positive integer (got "-1")\n']);
    const weights = await runCli("rank", "--pool", POOL, "--select", "2", "--weights", "div=1,dis=2", "-o", path.join(dir, "b"));
    expect(weights.code).toBe(0);
    expect(weights.stderr).toBe("warning: --weights dis=2 has no effect without a committee (--committee or --committee-keys): the ranking is by diversity alone\n");
  });

  it("suggests the option a typo meant, and folds the long usage line in errors and --help", async () => {
    const typo = await runCli("rank", "--pool", POOL, "--selct", "3", "-o", path.join(tmp(), "a"));
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/^relabel rank: unknown option --selct \(did you mean --select\?\)\nusage: relabel rank --pool PATH\.\.\. --select N /);
    const help = await runCli("rank", "--help");
    for (const text of [typo.stderr, help.stdout]) {
      const lines = text.split("\n");
      expect(lines.filter((line) => line.startsWith("    [")).length).toBeGreaterThan(2);
      expect(Math.max(...lines.map((line) => line.length))).toBeLessThanOrEqual(120);
    }
  });

  it("refuses descriptor options beside --features and more bins than any histogram needs; records the matrices' sha256", async () => {
    const dir = tmp();
    const npy = numpyArray(framesOf(POOL).map((_, i) => [Math.sin(i), Math.cos(i)]), path.join(dir, "f.npy"));
    for (const option of ["--bins", "--rmax"]) {
      const res = await runCli("rank", "--pool", POOL, "--select", "2", "--features", npy, option, "10", "-o", path.join(dir, "a"));
      expect([res.code, res.stderr]).toEqual([2, `relabel rank: ${option} shapes the descriptor, which --features replaces: give one of them\n`]);
    }
    const many = await runCli("rank", "--pool", POOL, "--select", "2", "--bins", "100000", "-o", path.join(dir, "a"));
    expect([many.code, many.stderr]).toEqual([2, "relabel rank: --bins must be at most 10000 (got 100000)\n"]);
    const ok = await runCli("rank", "--pool", POOL, "--select", "2", "--features", npy, "-o", path.join(dir, "ok"));
    expect(ok.code).toBe(0);
    const parameters = JSON.parse(readFileSync(path.join(dir, "ok", "ranking.json"), "utf8")).parameters;
    expect(parameters).toMatchObject({ features_file: npy, features_file_sha256: createHash("sha256").update(readFileSync(npy)).digest("hex"), bins: null, rmax: null });
  });

  it("refuses an empty pool, a file or a folder, as bad input (exit 1)", async () => {
    const dir = tmp();
    const empty = path.join(dir, "empty.extxyz");
    writeFileSync(empty, "");
    mkdirSync(path.join(dir, "none"));
    const res = await runCli("rank", "--pool", empty, "--select", "1", "-o", path.join(dir, "o"));
    expect([res.code, res.stderr]).toEqual([1, `error: ${empty}: no structures: the candidate pool is empty\n`]);
    const folder = await runCli("rank", "--pool", path.join(dir, "none"), "--select", "1", "-o", path.join(dir, "o"));
    expect(folder.code).toBe(1);
    expect(folder.stderr).toMatch(/^error: .*none: no structures \(POSCAR, /);
    expect(existsSync(path.join(dir, "o"))).toBe(false);
    // A run cut short before its first complete step: the pool is empty, and the run's note says why.
    const crashed = realPath("vasp/custodian_large_cell_crashed_at_start");
    const cut = await runCli("rank", "--pool", crashed, "--select", "1", "-o", path.join(dir, "o"));
    expect([cut.code, cut.stderr]).toEqual([
      1,
      `error: ${crashed}: no structures: the candidate pool is empty (run stopped early: cut at line 442, after </parameters>, before any <calculation>; kept 0 complete steps)\n`,
    ]);
  });

  it("takes a run's vasprun.xml or OUTCAR given as a file for its run directory", async () => {
    const dir = tmp();
    const run = realPath("vasp/dpdata_h2o_md10");
    const byDir = await runCli("rank", "--pool", run, "--select", "3", "-o", path.join(dir, "dir"));
    expect(byDir.code).toBe(0);
    for (const file of ["vasprun.xml", "OUTCAR"]) {
      const res = await runCli("rank", "--pool", path.join(run, file), "--select", "3", "-o", path.join(dir, file));
      expect([res.code, res.stderr]).toEqual([0, ""]);
      for (const artifact of ["ranking.csv", "selected.extxyz"]) {
        expect(readFileSync(path.join(dir, file, artifact), "utf8")).toBe(readFileSync(path.join(dir, "dir", artifact), "utf8"));
      }
    }
  });
});
