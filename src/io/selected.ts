/**
 * selected.extxyz, the third artifact of a ranking: the picked frames, read again from the pool and checked
 * against the ids ranked, written in greedy order with their candidate_id, source, frame and selection_rank.
 */

import { writeFile } from "node:fs/promises";
import { InputError } from "../core/errors.js";
import { ExtxyzEncoder } from "../core/formats/extxyz.js";
import { candidateId } from "../core/select/candidate-id.js";
import { selectedPoscar, selectionInfo, withPoolResultsRenamed, type CandidateMeta } from "../core/select/ranking.js";
import { speciesInOrder, type Frame } from "../core/structure.js";
import { incarForPick, initialMomentsInOrder, type SpeciesIncarValues } from "../core/vasp/incar.js";
import type { PickCell } from "../core/vasp/kpoints.js";
import { potcarFor, potcarSpec, type PotcarBlock } from "../core/vasp/potcar.js";
import { ExtxyzFileWriter, readExtxyz, readExtxyzFrameRanges, type ExtxyzFrameRange } from "./extxyz.js";

/** A pick as selected.extxyz records it: its rank, its candidate row and what was ranked there. */
export interface SelectedPick {
  rank: number;
  row: number;
  meta: CandidateMeta;
}

/** Throws unless frame `index` of `path` is still the structure ranked as `id`. */
export function checkRanked(path: string, index: number, frame: Frame, id: string): void {
  if (candidateId(frame) !== id) {
    throw new InputError(path, `frame ${index}`, "is not the structure ranked a moment ago: the file changed while ranking");
  }
}

/** A pick as selected.extxyz holds it: the pool's results renamed (withPoolResultsRenamed), the selection's keys added. */
function withSelectionInfo(frame: Frame, meta: CandidateMeta, rank: number): Frame {
  const renamed = withPoolResultsRenamed(frame);
  const info = new Map(renamed.info);
  for (const [k, v] of selectionInfo(meta, rank)) info.set(k, v);
  return { ...renamed, info };
}

/** Writes `file` from the picks' frames (by row), in the order of `picks`. */
export async function writeSelectedFrames(file: string, picks: readonly SelectedPick[], frames: ReadonlyMap<number, Frame>): Promise<void> {
  const writer = await ExtxyzFileWriter.open(file);
  for (const pick of picks) {
    await writer.write(withSelectionInfo(frames.get(pick.row)!, pick.meta, pick.rank));
  }
  await writer.close();
}

/** Where a candidate row's frame is: a plain extxyz file and the frame's byte range there (undefined when unknown). */
export type FrameLocator = (row: number) => { path: string; range: ExtxyzFrameRange } | undefined;

/** Beyond this many bytes of frames held for selected.extxyz, SelectedFramesInAdvance gives up (and frees them). */
const IN_ADVANCE_MAX_BYTES = 64 << 20;

/**
 * selected.extxyz built while the selection still runs: as picks become known, their frames are read at their byte
 * ranges, checked against the ids ranked and encoded in greedy order, so that once the selection ends only the
 * writing is left (rank's main thread waits for its selection meanwhile). It gives up, leaving selected.extxyz to
 * the usual path, when a pick's range is unknown, the frames grow large or a read fails; a frame that is not the
 * structure ranked is the InputError that finish() throws.
 */
export class SelectedFramesInAdvance {
  private readonly encoder = new ExtxyzEncoder(1 << 16);
  /** Rows added so far, in greedy order; the first `encoded` of them are in the encoder. */
  private readonly rows: number[] = [];
  private encoded = 0;
  private work: Promise<void> = Promise.resolve();
  private failure: unknown;
  private gaveUp = false;

  constructor(
    private readonly locate: FrameLocator,
    private readonly meta: readonly CandidateMeta[],
  ) {}

  /** The next picks' rows, in greedy order. */
  add(rows: readonly number[]): void {
    if (this.gaveUp || rows.length === 0) return;
    this.rows.push(...rows);
    const end = this.rows.length;
    this.work = this.work.then(() => this.encodeUpTo(end));
  }

  /**
   * Writes `file` when the rows added so far begin `picks` (ranks 1, 2, ...), reading the rest now, and resolves true;
   * resolves false, writing nothing, when it gave up or the picks are others.
   */
  async finish(picks: readonly SelectedPick[], file: string): Promise<boolean> {
    const same = picks.every((pick, r) => pick.rank === r + 1) && this.rows.every((row, r) => picks[r]?.row === row);
    if (!same) return false;
    this.add(picks.slice(this.rows.length).map((pick) => pick.row));
    await this.work;
    if (this.failure instanceof InputError) throw this.failure;
    if (this.gaveUp || this.encoded !== picks.length) return false;
    await writeFile(file, this.encoder.view());
    return true;
  }

  private async encodeUpTo(end: number): Promise<void> {
    if (this.gaveUp) return;
    try {
      const batch = this.rows.slice(this.encoded, end);
      const frames = new Map<number, Frame>();
      const byPath = new Map<string, { ranges: ExtxyzFrameRange[]; rows: number[] }>();
      for (const row of [...batch].sort((a, b) => a - b)) {
        const at = this.locate(row);
        if (!at) return this.giveUp(undefined);
        let source = byPath.get(at.path);
        if (!source) byPath.set(at.path, (source = { ranges: [], rows: [] }));
        source.ranges.push(at.range);
        source.rows.push(row);
      }
      for (const [file, { ranges, rows }] of byPath) {
        let k = 0;
        for await (const { index, frame } of readExtxyzFrameRanges(file, ranges)) {
          checkRanked(file, index, frame, this.meta[rows[k]].id);
          frames.set(rows[k++], frame);
        }
      }
      for (const row of batch) this.encoder.frame(withSelectionInfo(frames.get(row)!, this.meta[row], ++this.encoded));
      if (this.encoder.length > IN_ADVANCE_MAX_BYTES) this.giveUp(undefined);
    } catch (error) {
      this.giveUp(error);
    }
  }

  private giveUp(failure: unknown): void {
    this.gaveUp = true;
    this.failure = failure;
    this.encoder.take();
  }
}

/** The INCAR written beside every pick: the template (named `file` in errors) and the values given per element. */
export interface PickIncar {
  text: string;
  file: string;
  values: SpeciesIncarValues;
}

/** A pick's VASP inputs: its POSCAR text, and its POTCAR and INCAR when they are made for it. */
export interface PickPoscar extends PickCell {
  candidate_id: string;
  /** The POSCAR's species line. */
  species: string[];
  text: string;
  potcar?: string;
  /** POTCAR.spec: the potential names in the POSCAR's order. */
  potcarSpec?: string;
  incar?: string;
}

/**
 * The POSCAR of each pick, read back from selected.extxyz (`file`, named `shownAs` in errors) in greedy order:
 * `picks` are ranking.json's selected entries. A pick without a cell is boxed (selectedPoscar). With a POTCAR
 * of the pool's elements, each pick gets its blocks; with potential names, its POTCAR.spec; with an INCAR, its
 * per-element values (incarForPick).
 */
export async function* pickPoscars(
  file: string, picks: readonly { rank: number; candidate_id: string; formula: string }[],
  opts: {
    vacuum: number; shownAs: string; round?: number;
    potcar?: { blocks: readonly PotcarBlock[]; file: string }; potcarSymbols?: ReadonlyMap<string, string>; incar?: PickIncar;
  },
): AsyncGenerator<PickPoscar, void, void> {
  let r = 0;
  const potcarOrder = opts.potcar?.blocks.map((b) => b.element);
  for await (const frame of readExtxyz(file)) {
    const pick = picks[r];
    // The POSCAR's species line: in the POTCAR's order when there is one, else in the order of the first atoms.
    const species = speciesInOrder(potcarOrder ? [...potcarOrder, ...frame.symbols] : frame.symbols).filter((s) => frame.symbols.includes(s));
    const potcar = opts.potcar && potcarFor(opts.potcar.blocks, species, opts.potcar.file);
    const counts = species.map((s) => frame.symbols.reduce((n, t) => n + (t === s ? 1 : 0), 0));
    const moments = opts.incar?.values.magmom && initialMomentsInOrder(frame, species, opts.shownAs, `frame ${r}`);
    const incar = opts.incar && incarForPick(opts.incar.text, opts.incar.file, { species, counts, name: `rank ${pick.rank} (${pick.formula})`, moments }, opts.incar.values);
    const { text, boxed } = selectedPoscar(frame, pick, { vacuum: opts.vacuum, source: `${opts.shownAs} frame ${r}`, round: opts.round, speciesOrder: species });
    yield {
      rank: pick.rank, candidate_id: pick.candidate_id, text, boxed, cell: frame.cell, pbc: frame.pbc, species,
      ...(potcar === undefined ? {} : { potcar }),
      ...(opts.potcarSymbols === undefined ? {} : { potcarSpec: potcarSpec(species, opts.potcarSymbols) }),
      ...(incar === undefined ? {} : { incar }),
    };
    r++;
  }
}
