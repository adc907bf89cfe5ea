/** Streams a vasprun.xml (plain or gzip) from disk through the pure incremental parser. */
import { InputError } from "../core/errors.js";
import type { VaspStep, VaspSummary } from "../core/vasp/types.js";
import { VasprunReader } from "../core/vasp/vasprun.js";
import { fileError, isTruncatedCompression, openInput } from "./open.js";

const EXPECTED = "a vasprun.xml file";

/**
 * Yields the DFT ionic steps of a vasprun.xml (or vasprun.xml.gz, detected by its magic bytes) as they
 * are read, and returns the summary. Throws InputError when the file cannot be read or is not vasprun.xml.
 */
export async function* readVasprun(path: string): AsyncGenerator<VaspStep, VaspSummary, void> {
  const { stream, compressed } = await openInput(path, EXPECTED);
  const reader = new VasprunReader(path);
  try {
    for await (const chunk of stream) {
      for (const step of reader.push(chunk as Buffer)) yield step;
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    // A compressed stream cut short is a truncated file: keep what was read and let the summary say where it stops.
    if (!(compressed && isTruncatedCompression(err))) throw fileError(path, err, EXPECTED);
  } finally {
    stream.destroy();
  }
  return reader.end();
}
