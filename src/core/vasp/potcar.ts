/**
 * POTCAR: one pseudopotential block per species, in the order of the POSCAR's species line, each ending with an
 * "End of Dataset" line. A POTCAR that holds every element of a pool is split here into the one each pick needs.
 * Only the block boundaries and each block's TITEL line are read; the blocks are copied byte for byte.
 */
import { isElement } from "../elements.js";
import { InputError } from "../errors.js";

export interface PotcarBlock {
  element: string;
  /** The block as written, through its "End of Dataset" line and line ending. */
  text: string;
}

const END_OF_DATASET = /^[ \t]*End of Dataset[ \t]*\r?$/;
/** `TITEL  = PAW_PBE Fe_pv 02Aug2007`: the element leads the second word (Fe_pv, H.75, Zr_sv_GW). */
const TITEL = /^[ \t]*TITEL[ \t]*=[ \t]*\S+[ \t]+([A-Z][a-z]?)/;

/** The blocks of a POTCAR in file order; `file` names it in errors. */
export function splitPotcar(text: string, file: string): PotcarBlock[] {
  const blocks: PotcarBlock[] = [];
  const lines = text.split("\n");
  let element: string | null = null;
  let offset = 0;
  let blockStart = 0;
  let blockLine = 1;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const titel = TITEL.exec(line);
    if (titel && element === null) {
      if (!isElement(titel[1])) throw new InputError(file, i + 1, `TITEL names no element ("${line.trim()}")`);
      element = titel[1];
    }
    const next = offset + line.length + 1;
    if (END_OF_DATASET.test(line)) {
      if (element === null) throw new InputError(file, blockLine, "a block without a TITEL line, expected one per element");
      if (blocks.some((b) => b.element === element)) throw new InputError(file, blockLine, `a second block for ${element}: expected one block per element`);
      blocks.push({ element, text: text.slice(blockStart, Math.min(next, text.length)) });
      element = null;
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
