/**
 * The engine steps as the workflow runs them: label runs read from real VASP folders, the selection laid out
 * under its repository paths (no scratch paths leak into the artifacts), and the recorded-run pool of the demo.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { defaultRelabelConfig } from "../../src/core/app/config.js";
import { candidateId } from "../../src/core/select/candidate-id.js";
import { groupedBySpecies, speciesInOrder, withAtomsInOrder } from "../../src/core/structure.js";
import { parseExtxyz, writeExtxyzFrame } from "../../src/core/formats/extxyz.js";
import { parseIncar } from "../../src/core/vasp/incar.js";
import { parsePoscar } from "../../src/core/vasp/poscar.js";
import { Ledger } from "../../src/ledger/ledger.js";
import type { DryRunResult } from "../../src/core/app/dry-run.js";
import { displayPaths, dryRunRebuild, inspectLabelRuns, rankSelection, type SelectionOutcome, type SelectionRequest } from "../../src/workflow/engine.js";
import { recordedRuns, writeInitialStructurePool } from "../../src/workflow/recorded-runs.js";
import { SAMPLE_VASP } from "../helpers/app-harness.js";
import { aseTrajectories } from "../helpers/ase-trajectories.js";
import { lammpsDumps } from "../helpers/lammps-dumps.js";
import { pushWithGitLfs } from "../helpers/git-remote.js";
import { initBare } from "../helpers/git-repo.js";
import { realPath } from "../helpers/real-data.js";

const roots: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(path.join(tmpdir(), "relabel-engine-"));
  roots.push(dir);
  return dir;
};
afterAll(() => roots.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A ledger on a new bare repository under `root`, holding `pool` (repository path → content) when given. */
async function newLedger(root: string, pool?: Record<string, Buffer | string>): Promise<Ledger> {
  const ledger = await Ledger.open({ remote: initBare(path.join(root, "data.git")), workdir: path.join(root, "clone"), author: { name: "t", email: "t@example.invalid" } });
  if (pool) await ledger.commit({ message: "pool", files: Object.entries(pool).map(([file, content]) => ({ path: file, content })) });
  return ledger;
}

/** A selection of `select` from `pool` with the default config, for round 1; `over` replaces any field. */
function selectionRequest(pool: string[], select: number, over: Partial<SelectionRequest> = {}): SelectionRequest {
  const config = defaultRelabelConfig();
  return {
    ref: "main", pool, select, weights: { div: 1, dis: 1 }, selection: config.selection,
    committeeRepoFiles: [], committeeLocalFiles: [], templates: config.vasp_templates,
    software: { name: "relabel-loop", version: "test" }, roundFor: async () => 1, ...over,
  };
}

describe("inspectLabelRuns", () => {
  it("reads each bundled run: DFT steps and SCF convergence as PROVENANCE.md describes them", async () => {
    const runs = await inspectLabelRuns(SAMPLE_VASP);
    const byFolder = new Map(runs.map((r) => [r.folder, r]));
    // examples/sample-data/PROVENANCE.md: 10 MD steps of water; one static step; two of three steps stop at
    // NELM; 4 of 14 force blocks are DFT; killed inside step 3 (two complete steps).
    expect(byFolder.get("dpdata_h2o_md10/")).toMatchObject({ steps: 10, converged: true, error: null });
    expect(byFolder.get("dpdata_Ti-O-Ti_static_v630/")).toMatchObject({ steps: 1, converged: true, error: null });
    expect(byFolder.get("dpdata_ch4_md_scf_unconverged/")).toMatchObject({ steps: 3, converged: false, error: null });
    expect(byFolder.get("dpdata_ch4_mlff_md_v630/")).toMatchObject({ steps: 4, error: null });
    expect(byFolder.get("custodian_Si_relax_killed_v642/")).toMatchObject({ steps: 2, error: null });
    expect(runs.every((r) => r.initialId !== null && /^[0-9a-f]{20}$/.test(r.initialId))).toBe(true);
  });

  it("reports a folder without a readable DFT step instead of skipping it", async () => {
    const dir = tmp();
    const run = path.join(dir, "broken");
    mkdirSync(run);
    writeFileSync(path.join(run, "OUTCAR"), " vasp.6.4.2 18Apr23 (build Jun 06 2023 10:00:00) complex\n");
    const [result] = await inspectLabelRuns(dir);
    expect(result.folder).toBe("broken/");
    expect(result.initialId).toBeNull();
    expect(result.steps).toBe(0);
    expect(result.error).not.toBeNull();
  });
});

/** A data repository holding the bundled runs' initial structures as pools/runs.extxyz (also at `pool`). */
async function ledgerWithPool(): Promise<{ root: string; pool: string; ledger: Ledger }> {
  const root = tmp();
  const pool = path.join(root, "pool.extxyz");
  await writeInitialStructurePool(await recordedRuns(SAMPLE_VASP), pool);
  const ledger = await newLedger(root, { "pools/runs.extxyz": readFileSync(pool) });
  return { root, pool, ledger };
}

describe("rankSelection", () => {
  it("lays the selection out under rounds/NNNN/selection with repository paths only, one POSCAR per pick", async () => {
    const { root, pool, ledger } = await ledgerWithPool();
    const scratch = path.join(root, "scratch");
    const outcome = await rankSelection(ledger, scratch, selectionRequest(["pools/runs.extxyz"], 3, { roundFor: async () => 7 }));
    const paths = outcome.files.map((f) => f.path).sort();
    expect(paths.filter((p) => !p.includes("/poscars/"))).toEqual(["rounds/0007/selection/ranking.csv", "rounds/0007/selection/ranking.json", "rounds/0007/selection/selected.extxyz"]);
    for (const f of outcome.files) expect(String(f.content)).not.toContain(scratch);
    expect(outcome.pool).toEqual([{ path: "pools/runs.extxyz", sha256: outcome.ranking.sources[0].sha256 }]);
    expect(outcome.ranking.sources[0].sha256).toBe(createHash("sha256").update(readFileSync(pool)).digest("hex"));
    // Each pick's POSCAR holds the picked structure, its atoms grouped by species (one block per species): the
    // selected frame's candidate_id once they are grouped alike.
    const selected = parseExtxyz(String(outcome.files.find((f) => f.path.endsWith("selected.extxyz"))!.content));
    expect(selected).toHaveLength(3);
    let regrouped = 0;
    for (const [i, pick] of outcome.ranking.selected.entries()) {
      const file = outcome.files.find((f) => f.path === `rounds/0007/selection/poscars/${String(pick.rank).padStart(3, "0")}-${pick.candidate_id}/POSCAR`)!;
      const poscar = parsePoscar(String(file.content), { file: file.path });
      const frame = selected[i].frame;
      const grouped = groupedBySpecies(frame);
      if (grouped !== frame) regrouped++;
      expect(poscar.frame.symbols).toEqual(grouped.symbols);
      expect(String(file.content).split("\n")[5].trim().split(/\s+/)).toEqual(speciesInOrder(frame.symbols));
      expect(candidateId({ ...poscar.frame, pbc: [true, true, true] })).toBe(candidateId({ ...grouped, pbc: [true, true, true] }));
      if (grouped === frame) expect(candidateId({ ...poscar.frame, pbc: [true, true, true] })).toBe(pick.candidate_id);
    }
    // Ti-O-Ti's atoms alternate: its POSCAR had them grouped.
    expect(regrouped).toBeGreaterThan(0);
    // The scratch space is gone afterwards.
    expect(readdirSync(scratch)).toEqual([]);
  });
});

describe("rankSelection with vasp_templates", () => {
  it("writes each pick's INCAR with MAGMOM and DFT+U per element and its POTCAR.spec, in its POSCAR's order, and checks the INCAR before ranking", async () => {
    const { root, ledger } = await ledgerWithPool();
    await ledger.commit({ message: "templates", files: [{ path: "vasp/INCAR", content: "ENCUT = 520\n" }, { path: "vasp/KPOINTS", content: "Gamma\n0\nGamma\n1 1 1\n" }] });
    const templates = {
      ...defaultRelabelConfig().vasp_templates, incar: "vasp/INCAR", kpoints: "vasp/KPOINTS",
      magmom: { Ti: 2, "*": 0.6 }, ldau: { Ti: { l: 2, u: 3.5, j: 0 } }, potcar_symbols: { Ti: "Ti_sv" },
    };
    const outcome = await rankSelection(ledger, path.join(root, "scratch"), selectionRequest(["pools/runs.extxyz"], 4, { templates }));
    const fileAt = (p: string) => String(outcome.files.find((f) => f.path === p)!.content);
    let withTi = 0;
    for (const pick of outcome.ranking.selected) {
      const folder = `rounds/0001/selection/poscars/${String(pick.rank).padStart(3, "0")}-${pick.candidate_id}`;
      const poscar = parsePoscar(fileAt(`${folder}/POSCAR`), { file: folder }).frame;
      const incar = parseIncar(fileAt(`${folder}/INCAR`));
      const species = speciesInOrder(poscar.symbols);
      expect(incar).toMatchObject({ ENCUT: 520, ISPIN: 2, LDAU: true });
      expect(incar.MAGMOM).toEqual(poscar.symbols.map((s) => (s === "Ti" ? 2 : 0.6)));
      expect([incar.LDAUL, incar.LDAUU].flat()).toEqual([...species.map((s) => (s === "Ti" ? 2 : -1)), ...species.map((s) => (s === "Ti" ? 3.5 : 0))]);
      expect(fileAt(`${folder}/KPOINTS`)).toBe("Gamma\n0\nGamma\n1 1 1\n");
      expect(fileAt(`${folder}/POTCAR.spec`)).toBe(species.map((s) => (s === "Ti" ? "Ti_sv\n" : `${s}\n`)).join(""));
      if (species.includes("Ti")) withTi++;
    }
    expect(withTi).toBe(1);
    // A Gamma-only KPOINTS for bulk cells and a large MD box alike: the spread of spacings is pointed out.
    expect(outcome.kpointsAdvice).toEqual([expect.stringMatching(/^vasp\/KPOINTS gives every pick a 1x1x1 mesh, so the k-point spacing runs from /)]);

    // An INCAR that sets MAGMOM itself stops the selection before a round number is taken.
    await ledger.commit({ message: "INCAR with MAGMOM", files: [{ path: "vasp/INCAR", content: "ISPIN = 2\nMAGMOM = 3*2 2*0.6\n" }] });
    let roundTaken = false;
    const request = selectionRequest(["pools/runs.extxyz"], 4, { templates, roundFor: async () => ((roundTaken = true), 2) });
    await expect(rankSelection(ledger, path.join(root, "scratch"), request)).rejects.toThrow("vasp/INCAR:2: sets MAGMOM, which vasp_templates.magmom writes for each pick; leave it out here");
    // So does one whose own MAGMOM does not fit a pick, once the picks are known.
    const copied = selectionRequest(["pools/runs.extxyz"], 4, { templates: { ...templates, magmom: null, ldau: null, potcar_symbols: null }, roundFor: request.roundFor });
    await expect(rankSelection(ledger, path.join(root, "scratch"), copied)).rejects.toThrow(/^vasp\/INCAR:2: MAGMOM has 5 values, but rank 1 \(\w+\) has \d+ atoms/);
    expect(roundTaken).toBe(false);
  });
});

describe("rankSelection from an ASE trajectory in the data repository", () => {
  it("reads the binary file as committed (every frame, its sha256, a POSCAR per pick); a ranking.csv too large for GitHub goes gzipped", async () => {
    const root = tmp();
    const trajectory = readFileSync(path.join(aseTrajectories().dir, "md.traj"));
    const ledger = await newLedger(root, { "pools/md.traj": trajectory });
    const request = selectionRequest(["pools/md.traj"], 2);
    const outcome = await rankSelection(ledger, path.join(root, "scratch"), request);
    expect(outcome.ranking.sources).toEqual([expect.objectContaining({ path: "pools/md.traj", frames: 60, sha256: createHash("sha256").update(trajectory).digest("hex") })]);
    expect(outcome.files.filter((f) => f.path.endsWith("/POSCAR"))).toHaveLength(2);
    expect(outcome.rankingCsv).toBe("rounds/0001/selection/ranking.csv");

    // The same ranking with a ranking.csv over the large-file size (GitHub refuses files over 100 MiB): gzipped.
    const large = await rankSelection(ledger, path.join(root, "scratch-large"), { ...request, largeFileBytes: 1000 });
    expect(large.rankingCsv).toBe("rounds/0001/selection/ranking.csv.gz");
    const csv = (o: typeof large, name: string) => o.files.find((f) => f.path === name)!.content as Buffer | string;
    expect(large.files.some((f) => f.path === "rounds/0001/selection/ranking.csv")).toBe(false);
    expect(gunzipSync(csv(large, large.rankingCsv)).toString()).toBe(String(csv(outcome, outcome.rankingCsv)));
  });
});

describe("rankSelection from a LAMMPS dump in the data repository", () => {
  it("reads the dump's atom types through selection.type_map, recorded in ranking.json", async () => {
    const root = tmp();
    const dump = readFileSync(path.join(lammpsDumps().dir, "unscaled.lammpstrj"));
    const ledger = await newLedger(root, { "pools/md.lammpstrj": dump });
    const outcome = await rankSelection(ledger, path.join(root, "scratch"), selectionRequest(["pools/md.lammpstrj"], 2, { selection: { ...defaultRelabelConfig().selection, type_map: ["Hf", "O"] } }));
    expect(outcome.ranking.sources).toEqual([expect.objectContaining({ path: "pools/md.lammpstrj", frames: 3 })]);
    expect(outcome.ranking.parameters.type_map).toEqual(["Hf", "O"]);
    expect(outcome.files.filter((f) => f.path.endsWith("/POSCAR"))).toHaveLength(2);
  });
});

describe("rankSelection from a pool kept in Git LFS", () => {
  it("ranks the content git-lfs pushed, not its pointer; a pointer without its object stops with the file named", async () => {
    const { root, pool } = await ledgerWithPool();
    const content = readFileSync(pool);
    const bare = initBare(path.join(root, "lfs-data.git"));
    await pushWithGitLfs(pathToFileURL(bare).href, { "pools/big.extxyz": content });
    const ledger = await Ledger.open({ remote: bare, workdir: path.join(root, "lfs-clone"), author: { name: "t", email: "t@example.invalid" } });
    const request = selectionRequest(["pools/big.extxyz"], 3);
    const outcome = await rankSelection(ledger, path.join(root, "scratch-lfs"), request);
    // The sha256 of the content is the LFS object id; the picks are those of the same file stored in git itself.
    expect(outcome.pool).toEqual([{ path: "pools/big.extxyz", sha256: createHash("sha256").update(content).digest("hex") }]);
    const plain = await rankSelection((await ledgerWithPool()).ledger, path.join(root, "scratch-plain"), { ...request, pool: ["pools/runs.extxyz"] });
    expect(outcome.ranking.selected.map((s) => s.candidate_id)).toEqual(plain.ranking.selected.map((s) => s.candidate_id));

    rmSync(path.join(bare, "lfs"), { recursive: true });
    await ledger.commit({ message: "another pool, its object never pushed", files: [{ path: "pools/other.extxyz", content: `version https://git-lfs.github.com/spec/v1\noid sha256:${"ab".repeat(32)}\nsize 1234\n` }] });
    await expect(rankSelection(ledger, path.join(root, "scratch-missing"), { ...request, pool: ["pools/big.extxyz", "pools/other.extxyz"] })).rejects.toThrow(
      /^pools\/other\.extxyz is stored in Git LFS \(sha256 abababababab…, 1234 bytes\) and its content could not be had: the remote's lfs\/objects\/ab\/ab\/a+b+\S* is missing/,
    );
  });
});

describe("rankSelection with a committee and a trust window", () => {
  it("leaves out the trust levels the config's trust_exclude names, and says so in ranking.json", async () => {
    const { root, pool, ledger } = await ledgerWithPool();
    const frames = parseExtxyz(readFileSync(pool)).map((f) => f.frame);
    // Member b's energy per atom is 2i meV above member a's on frame i: a disagreement (population std) of i meV/atom.
    const member = (perAtom: (i: number) => number): string =>
      frames.map((f, i) => writeExtxyzFrame({ ...f, info: new Map([["MACE_energy", { kind: "float", value: -10 + f.natoms * perAtom(i) }]]) })).join("");
    await ledger.commit({
      message: "committee",
      files: [
        { path: "committee/a.extxyz", content: member(() => 0) },
        { path: "committee/b.extxyz", content: member((i) => 2e-3 * i) },
      ],
    });
    const config = defaultRelabelConfig();
    // Frame 0 is below the window (accurate), frames 1-3 inside, frames from 4 on at or above it (suspect).
    const rank = (trust_exclude: ("accurate" | "suspect")[]) =>
      rankSelection(
        ledger,
        path.join(root, `scratch-${trust_exclude.join("-")}`),
        selectionRequest(["pools/runs.extxyz"], 3, {
          selection: { ...config.selection, force_trust: "0.0005:0.0035", trust_exclude },
          committeeRepoFiles: ["committee/a.extxyz", "committee/b.extxyz"],
        }),
      );
    expect(frames.length).toBeGreaterThan(4);
    const both = (await rank(["suspect", "accurate"])).ranking;
    expect(both.selectable).toBe(3);
    expect(both.parameters).toMatchObject({ force_trust: { lo: 0.0005, hi: 0.0035 }, trust_exclude: ["accurate", "suspect"] });
    expect(both.selected.map((s) => s.frame).sort()).toEqual([1, 2, 3]);
    const none = (await rank([])).ranking;
    expect(none.selectable).toBe(frames.length);
    expect(none.parameters.trust_exclude).toEqual([]);
    expect(none.rule).toContain("both kept, flagged only");
  });
});

describe("rankSelection with selection.features", () => {
  it("ranks in the features of the pool's and datasets/current's structures, files named by their repository paths", async () => {
    const { root, pool, ledger } = await ledgerWithPool();
    const frames = parseExtxyz(readFileSync(pool)).map((f) => f.frame);
    // One feature per structure: its index; datasets/current holds frame 0, so the farthest pick is the last frame.
    const features = (rows: number[]): string =>
      rows.map((i) => writeExtxyzFrame({ ...frames[i], info: new Map([["MACE_descriptors", { kind: "float", value: i }]]) })).join("");
    const last = frames.length - 1;
    await ledger.commit({
      message: "features and a labelled set",
      files: [
        { path: "features/pool.xyz", content: features([...frames.keys()].reverse()) },
        { path: "datasets/current/train.extxyz", content: writeExtxyzFrame(frames[0]) },
      ],
    });
    const config = defaultRelabelConfig();
    const request = (files: string[], per_element = false) => selectionRequest(["pools/runs.extxyz"], 2, { selection: { ...config.selection, features: { files, key: "MACE_descriptors", per_element } } });
    const outcome = await rankSelection(ledger, path.join(root, "scratch"), request(["features/pool.xyz"]));
    expect(outcome.ranking.parameters).toMatchObject({ descriptor: "features", features_key: "MACE_descriptors" });
    expect(outcome.ranking.parameters.features_files).toEqual([{ path: "features/pool.xyz", sha256: createHash("sha256").update(features([...frames.keys()].reverse())).digest("hex") }]);
    expect(outcome.ranking.rule).toContain("greedy farthest-point sampling in the space of MACE_descriptors (one mean vector per structure); seeded by 1 labelled structures");
    expect(outcome.ranking.selected.map((s) => s.frame)).toEqual([last, Math.floor(last / 2)]);
    // A scalar per structure has no per-element blocks: refused, named by its repository path.
    await expect(rankSelection(ledger, path.join(root, "scratch"), request(["features/pool.xyz"], true))).rejects.toThrow(
      /^features\/pool\.xyz: frame 0: MACE_descriptors is one vector per structure; per-element features need/,
    );
    // previous-round without a previous-round committee's descriptors (the first round): the descriptor, named so.
    const first = await rankSelection(ledger, path.join(root, "scratch"), selectionRequest(["pools/runs.extxyz"], 2, { selection: { ...config.selection, features: "previous-round" } }));
    expect(first.ranking.parameters).toMatchObject({ descriptor: "baseline", features_file: null });
    expect(first.ranking.rule).toContain("in the baseline descriptor space");
    await expect(rankSelection(ledger, path.join(root, "scratch"), request(["features/none.xyz"]))).rejects.toThrow(
      ".github/relabel.yml: selection.features: features/none.xyz is not a file in the data repository (main)",
    );
    // A structure without features is named by its repository path, not the App's scratch directory.
    await ledger.commit({ message: "fewer features", files: [{ path: "features/part.xyz", content: features([0, 1]) }] });
    await expect(rankSelection(ledger, path.join(root, "scratch"), request(["features/part.xyz"]))).rejects.toThrow(
      /^pools\/runs\.extxyz: frame 2: candidate [0-9a-f]{20} has no MACE_descriptors in features\/part\.xyz: /,
    );
  });
});

/** A new ledger holding `file` at `repoPath` as the pool, and round 1's selection of its one structure. */
async function pickTheOnlyStructure(repoPath: string, content: Buffer | string): Promise<{ root: string; ledger: Ledger; selection: SelectionOutcome; id: string }> {
  const root = tmp();
  const ledger = await newLedger(root, { [repoPath]: content });
  const selection = await rankSelection(ledger, path.join(root, "scratch-rank"), selectionRequest([repoPath.replace(/\/POSCAR$/, "")], 1));
  return { root, ledger, selection, id: selection.ranking.selected[0].candidate_id };
}

/** The FeS relaxation's files (no vasprun.xml) as the run folder `folder` of round 1's labels. */
const FES_RUN = "vasp/custodian_potim_FeS_relax_killed";
const fesLabels = (folder: string) =>
  ["INCAR", "KPOINTS", "OSZICAR", "OUTCAR", "POSCAR"].map((name) => ({ path: `rounds/0001/labels/${folder}/${name}`, content: readFileSync(path.join(realPath(FES_RUN), name)) }));

/** Commits round 1's selection and `labels`, then dry-runs the rebuild with the default config. */
async function dryRunWithLabels(ledger: Ledger, root: string, selection: SelectionOutcome, labels: { path: string; content: Buffer }[]): Promise<DryRunResult> {
  await ledger.commit({ message: "selection and labels", files: [...selection.files, ...labels] });
  return dryRunRebuild(ledger, path.join(root, "scratch-dry"), {
    round: 1,
    ranking: selection.ranking,
    inputs: { rounds: [1], labelsRef: () => "main", previousRef: null, dataset: defaultRelabelConfig().dataset },
  });
}

describe("dryRunRebuild", () => {
  it("matches a real VASP run to its selected POSCAR although OUTCAR's 5-decimal positions give another candidate_id", async () => {
    // custodian_potim_FeS_relax_killed: a 48-atom POSCAR and the OUTCAR of its (killed) relaxation, no vasprun.xml.
    const { root, ledger, selection, id } = await pickTheOnlyStructure("pools/fes/POSCAR", readFileSync(path.join(realPath(FES_RUN), "POSCAR")));
    const result = await dryRunWithLabels(ledger, root, selection, fesLabels(`001-${id}`));
    expect(result.match.runs).toHaveLength(1);
    expect(result.match.runs[0]).toMatchObject({ folder: `001-${id}/`, status: "matched", rank: 1, candidateId: id, claimedId: id });
    expect(result.match.runs[0].initialId).not.toBe(id);
    expect(result.match.missing).toEqual([]);
  });

  it("matches a real VASP run of a structure picked with atoms outside the cell (unwrapped MD) that went to VASP wrapped", async () => {
    // The same FeS run; the pool frame has three of its atoms moved by lattice vectors, as an unwrapped MD frame has.
    const { frame } = parsePoscar(readFileSync(path.join(realPath(FES_RUN), "POSCAR"), "utf8"), { file: "POSCAR" });
    const positions = frame.positions.slice();
    for (const [atom, n] of [[0, [1, 0, 0]], [17, [0, -1, 2]], [47, [-2, 1, -1]]] as const) {
      for (let k = 0; k < 3; k++) positions[3 * atom + k] += n[0] * frame.cell[k] + n[1] * frame.cell[3 + k] + n[2] * frame.cell[6 + k];
    }
    const { root, ledger, selection, id } = await pickTheOnlyStructure("pools/md.extxyz", writeExtxyzFrame({ ...frame, positions }));
    // The user's own folder name, and the run's POSCAR as the wrapped structure that really went to VASP.
    const result = await dryRunWithLabels(ledger, root, selection, fesLabels("fes-wrapped"));
    expect(result.match.runs[0]).toMatchObject({ folder: "fes-wrapped/", status: "matched", rank: 1, candidateId: id });
    expect(result.match.missing).toEqual([]);
  });

  it("matches a run custodian left under suffixed, gzipped names (vasprun.xml.relax1.gz, ...) and builds its frames", async () => {
    const run = realPath("vasp/aiidavasp_Si_relax_isif3_spin_v620");
    const { root, ledger, selection, id } = await pickTheOnlyStructure("pools/si/POSCAR", readFileSync(path.join(run, "POSCAR")));
    const labels = readdirSync(run).map((name) => ({ path: `rounds/0001/labels/001-${id}/${name}.relax1.gz`, content: gzipSync(readFileSync(path.join(run, name))) }));
    const result = await dryRunWithLabels(ledger, root, selection, labels);
    expect(result.match.runs).toHaveLength(1);
    expect(result.match.runs[0]).toMatchObject({ folder: `001-${id}/`, status: "matched", rank: 1, candidateId: id, steps: 5 });
    // One run leaves valid and test empty (the gate says so); it is read whole all the same.
    expect(result.errors.map((e) => e.split(":")[0])).toEqual(["valid split is empty", "test split is empty"]);
    expect(result.dataset!.reading.runs_used).toBe(1);
    expect(result.dataset!.reading.steps_read).toBe(5);
  });

  it("writes a picked structure whose species alternate with one block per species, and matches its run", async () => {
    // The FeS slab (Fe16 S32, selective dynamics) with its atoms interleaved, Fe S S Fe S S ..., as an MD frame
    // from LAMMPS or ASE may list them; its POSCAR groups them back into the run's own order.
    const { frame } = parsePoscar(readFileSync(path.join(realPath(FES_RUN), "POSCAR"), "utf8"), { file: "POSCAR" });
    const interleave = Int32Array.from({ length: 48 }, (_, k) => (k % 3 === 0 ? k / 3 : 16 + 2 * Math.floor(k / 3) + (k % 3) - 1));
    const { root, ledger, selection, id } = await pickTheOnlyStructure("pools/md.extxyz", writeExtxyzFrame(withAtomsInOrder(frame, interleave)));
    const written = String(selection.files.find((f) => f.path === `rounds/0001/selection/poscars/001-${id}/POSCAR`)!.content);
    expect(written.split("\n")[0]).toMatch(/; atoms grouped by species$/);
    const poscar = parsePoscar(written, { file: "POSCAR" });
    expect(poscar.frame.symbols).toEqual(frame.symbols);
    poscar.frame.positions.forEach((x, i) => expect(Math.abs(x - frame.positions[i])).toBeLessThan(1e-12));
    expect(poscar.frame.arrays.get("selective_dynamics")).toEqual(frame.arrays.get("selective_dynamics"));
    const result = await dryRunWithLabels(ledger, root, selection, fesLabels(`001-${id}`));
    expect(result.match.runs[0]).toMatchObject({ folder: `001-${id}/`, status: "matched", rank: 1, candidateId: id, claimedId: id });
    expect(result.match.missing).toEqual([]);
  });
});

describe("a molecule picked without a cell", () => {
  it("goes to VASP in a vacuum box, positions unchanged, and its run is matched in whatever box it ran", async () => {
    // flare_methanol_md2: a methanol MD run in VASP's own box. The pool holds its first structure without a cell.
    const root = tmp();
    mkdirSync(path.join(root, "runs"));
    symlinkSync(realPath("vasp/flare_methanol_md2"), path.join(root, "runs", "methanol"));
    const [recorded] = await recordedRuns(path.join(root, "runs"));
    const molecule = { ...recorded.frame, cell: new Float64Array(9), pbc: [false, false, false] as [boolean, boolean, boolean] };
    const ledger = await newLedger(root, { "pools/methanol.extxyz": writeExtxyzFrame(molecule) });
    const config = defaultRelabelConfig();
    const selection = await rankSelection(ledger, path.join(root, "scratch-rank"), selectionRequest(["pools/methanol.extxyz"], 1));
    expect(selection.boxed).toEqual([1]);
    const id = selection.ranking.selected[0].candidate_id;
    const poscarFile = selection.files.find((f) => f.path === `rounds/0001/selection/poscars/001-${id}/POSCAR`)!;
    const poscar = parsePoscar(String(poscarFile.content), { file: "POSCAR" });
    const extent = Math.max(...[0, 1, 2].map((axis) => {
      const xs = Array.from(molecule.positions).filter((_, i) => i % 3 === axis);
      return Math.max(...xs) - Math.min(...xs);
    }));
    expect(poscar.frame.cell[0]).toBeGreaterThanOrEqual(extent + config.vasp_templates.vacuum);
    expect(poscar.frame.cell[0]).toBeLessThan(extent + config.vasp_templates.vacuum + 0.01);
    expect(Array.from(poscar.frame.cell)).toEqual([poscar.frame.cell[0], 0, 0, 0, poscar.frame.cell[0], 0, 0, 0, poscar.frame.cell[0]]);
    poscar.frame.positions.forEach((x, i) => expect(Math.abs(x - molecule.positions[i])).toBeLessThan(1e-12));
    expect(String(poscarFile.content).split("\n")[0]).toMatch(/; no cell: cubic box of [\d.]+ A, at least 10 A vacuum$/);
    // The run, in the box it really ran in (not the one written), is the selected molecule.
    const labels = [{ path: `rounds/0001/labels/001-${id}/vasprun.xml`, content: readFileSync(path.join(realPath("vasp/flare_methanol_md2"), "vasprun.xml")) }];
    const result = await dryRunWithLabels(ledger, root, selection, labels);
    expect(result.match.runs[0]).toMatchObject({ folder: `001-${id}/`, status: "matched", rank: 1, candidateId: id });
    expect(result.match.missing).toEqual([]);
  });

  it("is matched when VASP ran it moved into its box by a box vector (a molecule picked at negative coordinates)", async () => {
    // The pool's methanol sits one box edge below the run's copy along x, at negative coordinates, as ASE
    // builds molecules around the origin; the run holds it inside its box.
    const root = tmp();
    mkdirSync(path.join(root, "runs"));
    symlinkSync(realPath("vasp/flare_methanol_md2"), path.join(root, "runs", "methanol"));
    const [recorded] = await recordedRuns(path.join(root, "runs"));
    const positions = recorded.frame.positions.map((x, i) => (i % 3 === 0 ? x - recorded.frame.cell[0] : x));
    expect(Math.max(...positions.filter((_, i) => i % 3 === 0))).toBeLessThan(0);
    const molecule = { ...recorded.frame, positions, cell: new Float64Array(9), pbc: [false, false, false] as [boolean, boolean, boolean] };
    const ledger = await newLedger(root, { "pools/methanol.extxyz": writeExtxyzFrame(molecule) });
    const selection = await rankSelection(ledger, path.join(root, "scratch-rank"), selectionRequest(["pools/methanol.extxyz"], 1));
    const id = selection.ranking.selected[0].candidate_id;
    const labels = [{ path: `rounds/0001/labels/001-${id}/vasprun.xml`, content: readFileSync(path.join(realPath("vasp/flare_methanol_md2"), "vasprun.xml")) }];
    const result = await dryRunWithLabels(ledger, root, selection, labels);
    expect(result.match.runs[0]).toMatchObject({ folder: `001-${id}/`, status: "matched", rank: 1, candidateId: id });
    expect(result.match.missing).toEqual([]);
  });
});

describe("displayPaths", () => {
  it("replaces every occurrence of each prefix", () => {
    expect(displayPaths("/tmp/s/a and /tmp/s/b, /x/c", [["/tmp/s/", ""], ["/x/", "host:/x/"]])).toBe("a and b, host:/x/c");
  });
});

describe("recordedRuns", () => {
  it("gives one unlabelled candidate per run whose id is the run's first DFT step", async () => {
    const runs = await recordedRuns(SAMPLE_VASP);
    expect(runs.map((r) => r.name)).toEqual(["custodian_Si_relax_killed_v642", "dpdata_Ti-O-Ti_static_v630", "dpdata_ch4_md_scf_unconverged", "dpdata_ch4_mlff_md_v630", "dpdata_h2o_md10"]);
    const labelled = await inspectLabelRuns(SAMPLE_VASP);
    for (const run of runs) {
      expect(run.frame.arrays.size).toBe(0);
      expect(labelled.find((l) => l.folder === `${run.name}/`)!.initialId).toBe(run.candidateId);
    }
  });
});
