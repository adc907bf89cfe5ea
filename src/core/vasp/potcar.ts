/**
 * POTCAR: one pseudopotential block per species, in the order of the POSCAR's species line, each ending with an
 * "End of Dataset" line. A POTCAR that holds every element of a pool is split here into the one each pick needs.
 * Only the block boundaries and each block's TITEL line are read; the blocks are copied byte for byte.
 */
import { rankList } from "../counted.js";
import { elementProblem, isElement } from "../elements.js";
import { InputError } from "../errors.js";

export interface PotcarBlock {
  element: string;
  /** The block as written, through its "End of Dataset" line and line ending. */
  text: string;
  /** Its TITEL's potential name (Fe_pv), for messages. */
  potential: string;
  /** Its ENMAX in eV, the default plane-wave cutoff; null when the block has none. */
  enmax: number | null;
}

const END_OF_DATASET = /^[ \t]*End of Dataset[ \t]*\r?$/;
/** `TITEL  = PAW_PBE Fe_pv 02Aug2007`: the element leads the second word (Fe_pv, H.75, Zr_sv_GW). */
const TITEL = /^[ \t]*TITEL[ \t]*=[ \t]*\S+[ \t]+(([A-Z][a-z]?)\S*)/;
/** `   ENMAX  =  400.000; ENMIN  =  300.000 eV` */
const ENMAX = /^[ \t]*ENMAX[ \t]*=[ \t]*([0-9.]+)/;

/** The blocks of a POTCAR in file order; `file` names it in errors. */
export function splitPotcar(text: string, file: string): PotcarBlock[] {
  const blocks: PotcarBlock[] = [];
  const lines = text.split("\n");
  let element: string | null = null;
  let potential = "";
  let enmax: number | null = null;
  let offset = 0;
  let blockStart = 0;
  let blockLine = 1;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const titel = TITEL.exec(line);
    if (titel && element === null) {
      if (!isElement(titel[2])) throw new InputError(file, i + 1, `TITEL names no element ("${line.trim()}")`);
      element = titel[2];
      potential = titel[1];
    }
    const cutoff: RegExpExecArray | null = enmax === null ? ENMAX.exec(line) : null;
    if (cutoff && Number.isFinite(Number(cutoff[1]))) enmax = Number(cutoff[1]);
    const next = offset + line.length + 1;
    if (END_OF_DATASET.test(line)) {
      if (element === null) throw new InputError(file, blockLine, "a block without a TITEL line, expected one per element");
      if (blocks.some((b) => b.element === element)) throw new InputError(file, blockLine, `a second block for ${element}: expected one block per element`);
      blocks.push({ element, potential, enmax, text: text.slice(blockStart, Math.min(next, text.length)) });
      element = null;
      enmax = null;
      blockStart = next;
      blockLine = i + 2;
    }
    offset = next;
  }
  if (text.slice(blockStart).trim() !== "") {
    throw new InputError(file, blockLine, 'the last block has no "End of Dataset" line (a cut POTCAR?)');
  }
  if (blocks.length === 0) throw new InputError(file, 1, "no pseudopotential block, expected a POTCAR");
  return blocks;
}

/** The POTCAR for a structure whose species line is `species`: their blocks in that order. */
export function potcarFor(blocks: readonly PotcarBlock[], species: readonly string[], file: string): string {
  const byElement = new Map(blocks.map((b) => [b.element, b.text]));
  const missing = species.filter((s) => !byElement.has(s));
  if (missing.length > 0) {
    throw new InputError(file, undefined, `has no block for ${missing.join(", ")}, expected one for every element of the picks (it has ${blocks.map((b) => b.element).join(", ")})`);
  }
  return species.map((s) => byElement.get(s)!).join("");
}

/**
 * POTCAR.spec, as pymatgen writes it where the licensed POTCAR cannot go: one potential name per line, in the order
 * of the POSCAR's species line, for the cluster to assemble the POTCAR from. `symbols` names an element's potential
 * (Fe_pv); an element not named takes its own symbol.
 */
export function potcarSpec(species: readonly string[], symbols: ReadonlyMap<string, string>): string {
  return species.map((s) => `${symbols.get(s) ?? s}\n`).join("");
}

/** "Fe=Fe_pv,Ti=Ti_sv" as a map, "plain" as none (every element by its symbol), or the problem in words. */
export function parsePotcarSymbols(text: string): Map<string, string> | string {
  const out = new Map<string, string>();
  if (text.trim() === "plain") return out;
  for (const part of text.split(",")) {
    const m = /^\s*([A-Za-z]+)\s*=\s*(\S+)\s*$/.exec(part);
    if (!m) return `expected ELEMENT=POTENTIAL pairs such as Fe=Fe_pv,Ti=Ti_sv, or plain (got "${part.trim()}")`;
    const problem = elementProblem(m[1], false) ?? potcarSymbolProblem(m[1], m[2]) ?? (out.has(m[1]) ? `${m[1]} is given twice` : null);
    if (problem) return problem;
    out.set(m[1], m[2]);
  }
  return out;
}

/** Why `symbol` is no potential name of `element` (Fe_pv, Fe_sv_GW, H.75 and H1.25 are; O_s is not Fe's), or null. */
export function potcarSymbolProblem(element: string, symbol: string): string | null {
  const m = /^([A-Z][a-z]?)(?:[_.0-9][A-Za-z0-9_.]*)?$/.exec(symbol);
  if (!m || m[1] !== element) return `"${symbol}" is no potential of ${element}: expected ${element} or a variant such as ${element}_pv`;
  return null;
}

/** A pick by its rank and its POSCAR's species line. */
export interface PickSpeciesLine {
  rank: number;
  species: readonly string[];
}

/**
 * What the INCAR's ENCUT (null when it sets none) does not suit among the picks, in words. Without ENCUT each run
 * takes the largest ENMAX of its own POTCAR, so picks of other species get other cutoffs, which one dataset must not
 * mix; an ENCUT below a pick's largest ENMAX leaves VASP's basis short of what its POTCAR asks.
 */
export function encutAdvice(encut: number | null, blocks: readonly PotcarBlock[], picks: readonly PickSpeciesLine[], files: { incar: string | null; potcar: string }): string[] {
  const byElement = new Map(blocks.map((b) => [b.element, b]));
  const largest = picks.flatMap((pick) => {
    const known = pick.species.map((s) => byElement.get(s)).filter((b): b is PotcarBlock => b?.enmax != null);
    if (known.length === 0) return [];
    const top = known.reduce((a, b) => (b.enmax! > a.enmax! ? b : a));
    return [{ rank: pick.rank, enmax: top.enmax!, potential: top.potential }];
  });
  if (encut === null) {
    const cutoffs = [...new Set(largest.map((p) => p.enmax))].sort((a, b) => b - a);
    if (cutoffs.length < 2) return [];
    const groups = cutoffs.map((c) => `${c} eV (rank ${rankList(largest.filter((p) => p.enmax === c).map((p) => p.rank))})`);
    return [
      `${files.incar === null ? `${files.potcar} comes without an INCAR` : `${files.incar} sets no ENCUT`}, so each run takes the largest ENMAX of its own POTCAR: ${groups.join(", ")}; ` +
        `dataset build refuses runs of mixed ENCUT: set one, such as ${Math.ceil((1.3 * cutoffs[0]) / 10) * 10} (1.3 x the largest ENMAX of ${files.potcar})`,
    ];
  }
  const short = largest.filter((p) => p.enmax > encut);
  if (short.length === 0) return [];
  const named = short.slice(0, 5).map((p) => `rank ${p.rank} (${p.potential}, ${p.enmax} eV)`).join(", ") + (short.length > 5 ? ", ..." : "");
  return [`${files.incar ?? "INCAR"} sets ENCUT = ${encut}, below the largest ENMAX in the POTCAR of ${named}: VASP's basis falls short of what ${files.potcar} asks`];
}
