/** Streams an OUTCAR (plain or gzip) from disk through the pure parser in src/core/vasp/outcar.ts. */

import { OutcarParser } from "../core/vasp/outcar.js";
import type { VaspStep, VaspSummary } from "../core/vasp/types.js";
import { fileError, openInput } from "./open.js";

/**
 * Yields the DFT ionic steps of an OUTCAR as they are read and returns the summary.
 * Gzip is recognised by its magic bytes. `species` (per atom, or per POTCAR type) is used only
 * when the OUTCAR itself does not tell the species of every atom.
 */
export async function* readOutcar(path: string, opts: { species?: string[] } = {}): AsyncGenerator<VaspStep, VaspSummary, void> {
  const parser = new OutcarParser({ file: path, species: opts.species });
  const { stream } = await openInput(path, "an OUTCAR file");
  // OUTCAR is ASCII; latin1 maps every byte to one character, so chunk borders never split a character.
  stream.setEncoding("latin1");
  try {
    for await (const chunk of stream) {
      for (const step of parser.push(chunk as string)) yield step;
    }
  } catch (err) {
    throw fileError(path, err, "an OUTCAR file");
  } finally {
    stream.destroy();
  }
  const { steps, summary } = parser.end();
  for (const step of steps) yield step;
  return summary;
}
