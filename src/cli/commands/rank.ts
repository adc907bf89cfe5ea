import path from "node:path";
import { isElement } from "../../core/elements.js";
import { counted } from "../../core/counted.js";
import { UsageError } from "../../core/errors.js";
import { parseTrustExclusion, parseTrustWindow } from "../../core/select/disagreement.js";
import type { SelectionRule } from "../../core/select/fps.js";
import { DEFAULT_FEATURES_KEY } from "../../core/select/frame-features.js";
import { parseLdauSpec, parseMagmomSpec, type SpeciesIncarValues } from "../../core/vasp/incar.js";
import { parsePotcarSymbols } from "../../core/vasp/potcar.js";
import { yieldToOtherThreads } from "../../exec/thread-priority.js";
import { startRank, type RankOptions } from "../../io/rank-start.js";
import { EXTXYZ_FILE } from "../../io/run-files.js";
import { SOFTWARE } from "../../version.js";
import { helpText, oneOf, parseCommand, positiveNumber, type CommandSpec } from "../args.js";
import { Progress } from "../progress.js";

export const rankSpec = {
  name: "rank",
  summary: "Rank a candidate pool for the next DFT round: diversity (farthest-point sampling) plus optional committee disagreement.",
  usage:
    "relabel rank --pool PATH... --select N [--labeled PATH...] [--committee FILE...|--committee-keys PREFIX] [--disagreement energy|force] [--force-trust LO:HI [--trust-exclude LEVELS]] [--weights div=1,dis=1 | --rule uwfps:ALPHA,BETA] [--descriptor baseline|element-pairs | --features FILE... [--features-key KEY] [--features-per-element] [--labeled-features FILE]] [--scaling none|standard] [--bins 80] [--rmax 6] [--type-map EL,EL...] [--threads N] -o OUT [--poscars [--vasp-inputs DIR [--magmom EL=M,...] [--ldau EL=L:U[:J],...]] [--potcar-spec EL=NAME,...|plain] [--vacuum 10]]",
  help: `This is the baseline heuristic, named for what it is: greedy farthest-point sampling in a structure-descriptor
space, plus committee disagreement when a committee is given. It is not calibrated uncertainty and not Bayesian
optimisation. --disagreement force is DP-GEN's model deviation (max over atoms of the force std).

pool and labelled set:
      --pool PATH...          extxyz files (every frame), XDATCAR, ASE .traj and LAMMPS text dumps (every step),
                              folders of POSCAR/CONTCAR/*.vasp/*.extxyz/*.xyz/XDATCAR/*.traj/*.lammpstrj, VASP runs
                              (their complete DFT steps); a source that cannot be read (a cut file, a position or
                              cell of nan or inf) is left out with a warning (ranking.json: skipped_sources) and
                              rank exits 1, writing the ranking of the rest
      --type-map EL,EL...     the element of each LAMMPS atom type, type 1 first (DP-GEN's type_map), for dumps
                              without an element column; lengths in the dump are taken as Angstrom
      --select N              how many structures to pick (at most the pool size)
      --labeled PATH...       the structures already labelled: extxyz, a dataset folder (its train/valid/test.extxyz)
                              or anything --pool takes (VASP runs, say): never picked, and they count as covered
committee (at least 2 members):
      --committee FILE...     one mace_eval_configs output per member (MACE_energy, MACE_forces), matched by structure:
                              each must predict every candidate; other structures in it are noted and not used
      --committee-keys P      predictions inside the pool: info P<member>_energy, arrays P<member>_forces
      --disagreement KIND     energy (std of energy per atom across members; default) or force (DP-GEN deviation)
      --force-trust LO:HI     candidates below LO are "accurate", at or above HI "suspect" (flagged in ranking.csv)
      --trust-exclude LEVELS  which of them are never selected: accurate,suspect (default), accurate, suspect or none
score:
      --weights div=W,dis=W   score = div*diversity + dis*disagreement (disagreement min-max normalised; default 1,1;
                              without a committee only diversity counts)
      --rule uwfps:A,B        uncertainty-weighted FPS instead: score = disagreement^A * diversity^B (disagreement
                              divided by its largest, so only a candidate the committee agrees on exactly scores 0)
descriptor:
      --descriptor KIND       baseline (composition, volume/atom, pair-distance histogram with all periodic images;
                              default) or element-pairs (the histogram per species pair)
      --features FILE...      your own features instead: an N x D matrix (JSON rows or .npy) in candidate order,
                              or extxyz files with features per structure, such as mace_eval_configs
                              --return_descriptors outputs for the pool and the labelled set (matched by
                              structure; per-atom values are averaged over each structure's atoms)
      --labeled-features F    with a matrix --features and --labeled: the labelled structures' features, a row each
                              in the order --labeled reads them (a labelled candidate takes its pool row; not
                              needed when all of them are candidates)
      --features-key KEY      the info or per-atom key of those extxyz features (default MACE_descriptors)
      --features-per-element  instead of one mean, a block per element: its mean descriptor times its atom
                              fraction (zeros for an element a structure lacks); from per-atom descriptors or
                              mace_eval_configs --descriptor_aggregation_method per_element_mean
      --scaling MODE          standard (default; population std, constant columns only centred) or none
      --bins N, --rmax R      histogram bins (80) and cutoff in Angstrom (6)
run:
      --threads N             threads for reading large extxyz pools and for the selection (default: up to 2);
                              the results do not depend on it
output:
  -o, --output DIR            new directory for ranking.json, ranking.csv, selected.extxyz (never overwritten); in
                              selected.extxyz the pool's energy, forces, stress, ... (what ASE reads as calculator
                              results) are renamed pool_energy, pool_forces, ...: they are not labels
      --poscars               also OUT/poscars/<rank>-<candidate_id>/POSCAR per pick, ready for VASP (one block
                              per species: atoms that alternate are grouped, each species' in their order)
      --vasp-inputs DIR       copy DIR's files (INCAR, KPOINTS, job script) beside each POSCAR (implies --poscars);
                              a POTCAR of the pool's elements is split: each pick gets its species' blocks, and its
                              POSCAR lists them in the POTCAR's order; warns of a KPOINTS mesh that misfits picks
                              (boxed molecules, spacings over 1.5x apart) and of an ENCUT missing or below ENMAX
      --magmom EL=M,...       write each pick's MAGMOM into DIR's INCAR from moments per element, in its POSCAR's
                              order (Fe=5,O=0.6; *=M for every other element, else VASP's default 1), with
                              ISPIN = 2 unless INCAR sets ISPIN; a pick with its own initial_magmoms (ASE's
                              per-atom moments) gets those; "pool" alone takes only those
      --ldau EL=L:U[:J],...   write each pick's LDAUL/LDAUU/LDAUJ from DFT+U per element (Fe=2:5.3; J 0 by
                              default; other elements none), with LDAU = .TRUE. and LMAXMIX 4 (d) or 6 (f)
                              unless INCAR sets them
      --potcar-spec NAMES     write POTCAR.spec beside each POSCAR: the potentials in its species order, one per
                              line (Fe=Fe_pv,Ti=Ti_sv; others, or all with "plain", by their symbol), for a cluster
                              that holds the POTCARs (implies --poscars; not with a POTCAR in --vasp-inputs)
      --vacuum A              a pick without a cell (a molecule) goes in a cubic box with A Angstrom of vacuum
                              between periodic copies, positions unchanged (default 10)
  -h, --help                  show this help

Candidates carry a stable candidate_id: a hash of species, positions (rounded to 1e-6 A), cell and pbc.
Ties go to the lowest candidate index. Same inputs give byte-identical outputs.

Frames, atoms and candidates are counted from 0 in messages, as ASE counts them.

environment: RELABEL_KERNELS=auto|native|wasm chooses the selection's distance kernels (default auto: native
where built and the CPU has AVX-512 VNNI, else WebAssembly) and whether plain extxyz pools are read by native code
(where built; wasm: JavaScript alone); all give the same bytes.

exit codes: 0 success; 1 bad input: nothing written, or a pool source left out (the ranking of the rest is
written); 2 usage error (an existing non-empty -o included)`,
  options: {
    pool: { type: "string", multiple: true },
    select: { type: "string" },
    labeled: { type: "string", multiple: true },
    committee: { type: "string", multiple: true },
    "committee-keys": { type: "string" },
    disagreement: { type: "string" },
    "force-trust": { type: "string" },
    "trust-exclude": { type: "string" },
    weights: { type: "string" },
    rule: { type: "string" },
    descriptor: { type: "string" },
    features: { type: "string", multiple: true },
    "labeled-features": { type: "string" },
    "features-key": { type: "string" },
    "features-per-element": { type: "boolean" },
    scaling: { type: "string" },
    bins: { type: "string" },
    rmax: { type: "string" },
    "type-map": { type: "string" },
    threads: { type: "string" },
    output: { type: "string", short: "o" },
    poscars: { type: "boolean" },
    "vasp-inputs": { type: "string" },
    vacuum: { type: "string" },
    "potcar-spec": { type: "string" },
    magmom: { type: "string" },
    ldau: { type: "string" },
  },
  positive: { select: "integer", bins: "integer", rmax: "number", threads: "integer", vacuum: "number" },
} satisfies CommandSpec;

/** Repeated flags and several values after one flag (`--pool a b c`) both work. */
function gather(first: string[] | undefined, positionals: string[], flag: string, argv: string[]): string[] {
  const values = [...(first ?? [])];
  // parseArgs leaves values after the first as positionals; keep those that directly follow this flag.
  let collecting = false;
  for (const token of argv) {
    if (token.startsWith("-")) {
      collecting = token === `--${flag}`;
      continue;
    }
    if (collecting && positionals.includes(token) && !values.includes(token)) values.push(token);
  }
  return values;
}

/** The values given to --flag in argv, as typed (`--flag A B`, `--flag=A`), repeats included. */
function flagValues(argv: string[], flag: string): string[] {
  const values: string[] = [];
  let collecting = false;
  for (const token of argv) {
    if (token.startsWith(`--${flag}=`)) values.push(token.slice(flag.length + 3));
    if (token.startsWith("-")) collecting = token === `--${flag}`;
    else if (collecting) values.push(token);
  }
  return values;
}

/** "A twice" or "A and B" (the same file) for the first file listed twice; undefined when none is. */
function repeatedFile(files: string[]): string | undefined {
  const seen = new Map<string, string>();
  for (const file of files) {
    const earlier = seen.get(path.resolve(file));
    if (earlier !== undefined) return earlier === file ? `${file} twice` : `${earlier} and ${file}, the same file`;
    seen.set(path.resolve(file), file);
  }
  return undefined;
}

async function parseWeights(text: string): Promise<SelectionRule> {
  // The app's config module (and zod with it) loads only when needed: it is most of the command's start-up time.
  const { parseWeightsText } = await import("../../core/app/config.js");
  const weights = parseWeightsText(text);
  if (typeof weights === "string") throw new UsageError(`--weights: ${weights}`);
  return { kind: "weighted", wDiv: weights.div, wDis: weights.dis };
}

function parseTypeMap(text: string): string[] {
  const symbols = text.split(",").map((s) => s.trim());
  const bad = symbols.find((s) => !isElement(s));
  if (bad !== undefined) throw new UsageError(`--type-map must list element symbols, type 1 first, such as Hf,O (got ${JSON.stringify(bad)} in "${text}")`);
  return symbols;
}

/** A parsed option value, or its problem as a usage error naming the flag. */
function orUsage<T>(flag: string, parsed: T | string): T {
  if (typeof parsed === "string") throw new UsageError(`--${flag}: ${parsed}`);
  return parsed;
}

/** MAGMOM and DFT+U per element, for each pick's INCAR. */
function perElementIncar(magmom: string | undefined, ldau: string | undefined): SpeciesIncarValues {
  return {
    ...(magmom === undefined ? {} : { magmom: orUsage("magmom", parseMagmomSpec(magmom)) }),
    ...(ldau === undefined ? {} : { ldau: orUsage("ldau", parseLdauSpec(ldau)) }),
    names: { magmom: "--magmom", ldau: "--ldau" },
  };
}

/**
 * A matrix file alone (.npy, JSON) with the labelled structures' matrix when there are any, or extxyz files of
 * features per structure, read under `key` (per element or not).
 */
function featureOptions(
  files: string[], key: string | undefined, perElement: boolean | undefined, labeledFeatures: string | undefined, labeled: string[],
): Pick<RankOptions, "features" | "featuresFrom" | "labeledFeatures"> {
  const byStructure = files.filter((f) => EXTXYZ_FILE.test(f));
  if (labeledFeatures !== undefined && (byStructure.length || !files.length || !labeled.length)) {
    throw new UsageError(byStructure.length
      ? "--labeled-features is for a matrix --features: extxyz features are matched by structure, so add the labelled set's features file to --features instead"
      : "--labeled-features gives the features of the --labeled structures beside a matrix --features FILE: give both");
  }
  if (byStructure.length === 0) {
    if (key !== undefined || perElement) throw new UsageError(`--${key !== undefined ? "features-key" : "features-per-element"} is about extxyz features: give --features FILE.extxyz...`);
    if (files.length > 1) throw new UsageError(`--features takes one matrix (.npy or JSON rows), or extxyz files of features per structure (got ${files.join(", ")})`);
    return files.length ? { features: files[0], ...(labeledFeatures !== undefined ? { labeledFeatures } : {}) } : {};
  }
  if (byStructure.length < files.length) {
    throw new UsageError(`--features takes one matrix (.npy or JSON rows) or extxyz files of features per structure, not both (got ${files.join(", ")})`);
  }
  return { featuresFrom: { files, key: key ?? DEFAULT_FEATURES_KEY, ...(perElement ? { perElement } : {}) } };
}

function parseRule(text: string): SelectionRule {
  const m = /^uwfps:([^,]+),([^,]+)$/.exec(text);
  const alpha = m ? Number(m[1]) : NaN;
  const beta = m ? Number(m[2]) : NaN;
  if (!(alpha >= 0 && beta >= 0)) throw new UsageError(`--rule must look like uwfps:ALPHA,BETA with non-negative numbers (got "${text}")`);
  return { kind: "uwfps", alpha, beta };
}

/** "; left out: 3 labelled, 1 duplicate", or nothing when every candidate was selectable. */
function leftOutText(counts: { labelled: number; duplicates: number; accurate: number; suspect: number }): string {
  const parts = [
    counts.labelled && `${counts.labelled} labelled`,
    counts.duplicates && `${counts.duplicates} ${counts.duplicates === 1 ? "duplicate" : "duplicates"}`,
    counts.accurate && `${counts.accurate} accurate`,
    counts.suspect && `${counts.suspect} suspect`,
  ].filter(Boolean);
  return parts.length ? `; left out: ${parts.join(", ")}` : "";
}

export async function runRank(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(rankSpec, argv);
  if (values.help) {
    process.stdout.write(helpText(rankSpec));
    return 0;
  }
  const pool = gather(values.pool, positionals, "pool", argv);
  const labeled = gather(values.labeled, positionals, "labeled", argv);
  const committee = gather(values.committee, positionals, "committee", argv);
  const features = gather(values.features, positionals, "features", argv);
  const stray = positionals.filter((p) => !pool.includes(p) && !labeled.includes(p) && !committee.includes(p) && !features.includes(p));
  if (stray.length) throw new UsageError(`unexpected argument "${stray[0]}"\nusage: ${rankSpec.usage}`);
  if (pool.length === 0) throw new UsageError(`--pool is required\nusage: ${rankSpec.usage}`);
  if (!values.select) throw new UsageError(`--select N is required\nusage: ${rankSpec.usage}`);
  if (!values.output) throw new UsageError(`-o OUT is required\nusage: ${rankSpec.usage}`);
  if (values.weights && values.rule) throw new UsageError("give --weights or --rule, not both");
  if (values.vacuum !== undefined && values["potcar-spec"] === undefined && !values.poscars && values["vasp-inputs"] === undefined) {
    throw new UsageError("--vacuum sets the box of POSCARs: give --poscars (or --vasp-inputs DIR) too");
  }
  if ((values.magmom !== undefined || values.ldau !== undefined) && values["vasp-inputs"] === undefined) {
    throw new UsageError(`--${values.magmom !== undefined ? "magmom" : "ldau"} completes each pick's INCAR: give --vasp-inputs DIR with the INCAR too`);
  }
  if (features.length && values.descriptor !== undefined) throw new UsageError("give --descriptor or --features, not both: --features replaces the descriptor");
  for (const option of ["bins", "rmax"] as const) {
    if (features.length && values[option] !== undefined) throw new UsageError(`--${option} shapes the descriptor, which --features replaces: give one of them`);
  }
  if (values.bins !== undefined) {
    // Loaded only then: the descriptors' module is a tenth of the command's start-up.
    const { MAX_BINS } = await import("../../core/select/descriptors.js");
    if (Number(values.bins) > MAX_BINS) throw new UsageError(`--bins must be at most ${MAX_BINS} (got ${values.bins})`);
  }
  const repeated = repeatedFile(flagValues(argv, "committee"));
  if (repeated) throw new UsageError(`--committee lists ${repeated}: give each member's predictions once`);
  if (committee.length === 1) throw new UsageError(`a committee needs at least 2 models to disagree; got 1 (${committee[0]})`);

  const hasCommittee = committee.length > 0 || values["committee-keys"] !== undefined;
  const weights = values.weights ? await parseWeights(values.weights) : undefined;
  // div=0 without a committee is refused later; with div > 0 the disagreement term alone is moot.
  if (weights && weights.kind === "weighted" && !hasCommittee && weights.wDis > 0 && weights.wDiv > 0) {
    process.stderr.write(`warning: --weights dis=${weights.wDis} has no effect without a committee (--committee or --committee-keys): the ranking is by diversity alone\n`);
  }
  if (values.disagreement !== undefined && !hasCommittee) {
    process.stderr.write(`warning: --disagreement ${values.disagreement} has no effect without a committee (--committee or --committee-keys): the ranking is by diversity alone\n`);
  }

  const progress = new Progress("rank");
  try {
    const options: RankOptions = {
      pool,
      select: positiveNumber("select", values.select, "integer")!,
      out: values.output,
      labeled,
      committee,
      committeeKeys: values["committee-keys"],
      disagreement: oneOf("disagreement", values.disagreement, ["energy", "force"] as const, "energy"),
      forceTrust: values["force-trust"] ? parseTrustWindow(values["force-trust"]) : undefined,
      trustExclude: values["trust-exclude"] !== undefined ? parseTrustExclusion(values["trust-exclude"]) : undefined,
      rule: values.rule ? parseRule(values.rule) : weights,
      descriptor: oneOf("descriptor", values.descriptor, ["baseline", "element-pairs"] as const, "baseline"),
      ...featureOptions(features, values["features-key"], values["features-per-element"], values["labeled-features"], labeled),
      scaling: oneOf("scaling", values.scaling, ["none", "standard"] as const, "standard"),
      bins: positiveNumber("bins", values.bins, "integer"),
      rmax: positiveNumber("rmax", values.rmax),
      typeMap: values["type-map"] !== undefined ? parseTypeMap(values["type-map"]) : undefined,
      threads: positiveNumber("threads", values.threads, "integer"),
      poscars: values.poscars || values["vasp-inputs"] !== undefined || values["potcar-spec"] !== undefined
        ? {
            vacuum: positiveNumber("vacuum", values.vacuum),
            inputs: values["vasp-inputs"],
            incarValues: perElementIncar(values.magmom, values.ldau),
            potcarSymbols: values["potcar-spec"] === undefined ? undefined : orUsage("potcar-spec", parsePotcarSymbols(values["potcar-spec"])),
          }
        : undefined,
      software: SOFTWARE,
      onProgress: (phase, done, total) => progress.update(total ? `${phase} ${done}/${total}` : `${phase}: ${done} structures`, total ? done / total : undefined),
      // The selection ends last: the pool read on this thread yields to it.
      onEarlySelection: yieldToOtherThreads,
    };
    // The selection starts before the pool's readers load (their modules take 15-20 ms).
    const started = await startRank(options);
    const { rankToDir } = await import("../../io/rank.js");
    const outcome = await rankToDir(options, started);
    progress.done();
    const { result, candidates } = outcome;
    const skipped = outcome.skipped.length;
    for (const note of outcome.notes) process.stderr.write(`note: ${note}\n`);
    for (const { problem } of outcome.skipped) process.stderr.write(`warning: pool source left out, it cannot be read: ${problem}\n`);
    for (const advice of outcome.poscars?.advice ?? []) process.stderr.write(`warning: ${advice}\n`);
    if (outcome.constantDisagreement) {
      process.stderr.write("warning: the committee's disagreement is the same for every selectable candidate (identical members?): it does not change the ranking\n");
    }
    const short = result.picks.length < result.requested;
    if (short) {
      const why = leftOutText(outcome.leftOut).replace(/^; /, "");
      process.stderr.write(`warning: picked ${result.picks.length} of the ${result.requested} requested: only ${result.selectable} of the ${candidates.length} candidates can be picked${why ? ` (${why})` : ""}\n`);
    }
    // Without a committee there is no disagreement to show (it would read as a measured zero).
    const top = result.picks.slice(0, 10).map((p) => {
      const c = candidates[p.index];
      const disagreement = hasCommittee ? `  disagreement=${p.disagreement.toFixed(3)}` : "";
      return `  ${String(p.rank).padStart(4)}  ${c.id}  ${c.formula.padEnd(12)} ${c.source}#${c.frame}  diversity=${p.diversity.toFixed(3)}${disagreement}`;
    });
    process.stdout.write(
      [
        `ranked ${counted(candidates.length, "candidate")}${outcome.skipped.length ? ` from ${outcome.skipped.length === 1 ? "all pool sources but one" : `all pool sources but ${outcome.skipped.length}`}` : ""} (${result.selectable} selectable${leftOutText(outcome.leftOut)}), picked ${result.picks.length}${short ? ` of ${result.requested} requested: no more selectable candidates` : ""}`,
        `rule: ${outcome.rule}`,
        ...top,
        ...(result.picks.length > 10 ? [`  ... ${result.picks.length - 10} more in ranking.csv`] : []),
        ...(outcome.poscars?.boxed.length ? [`no cell, so in a cubic box with ${outcome.poscars.vacuum} A of vacuum: the POSCARs of rank ${outcome.poscars.boxed.join(", ")}`] : []),
        ...(values.magmom !== undefined || values.ldau !== undefined ? [`each pick's INCAR: ${[values.magmom !== undefined && "MAGMOM", values.ldau !== undefined && "LDAUL/LDAUU/LDAUJ"].filter(Boolean).join(" and ")} in the order of its POSCAR's species line`] : []),
        ...(values["potcar-spec"] !== undefined ? ["each pick's POTCAR.spec: its potentials in the order of its POSCAR's species line"] : []),
        `wrote ${outcome.files.map((f) => `${outcome.dir}/${f}`).join(", ")}`,
        ...(skipped ? [`${skipped === 1 ? "1 pool source" : `${skipped} pool sources`} could not be read and ${skipped === 1 ? "was" : "were"} left out (warnings above; ranking.json: skipped_sources): exit code 1`] : []),
      ].join("\n") + "\n",
    );
    // The ranking stands for what could be read; the exit code says that something could not.
    return skipped ? 1 : 0;
  } finally {
    progress.done();
  }
}
