/** XDATCAR text for tests, laid out as VASP writes it, from steps read by relabel-loop's own VASP readers. */
import type { VaspStep } from "../../src/core/vasp/types.js";

/** Fractional coordinates of Cartesian positions in a cell (rows a1 a2 a3). */
export function fractional(cell: Float64Array, positions: Float64Array): number[][] {
  const [a, b, c] = [0, 3, 6].map((k) => Array.from(cell.slice(k, k + 3)));
  const det = a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]);
  const inv = [
    [(b[1] * c[2] - b[2] * c[1]) / det, (a[2] * c[1] - a[1] * c[2]) / det, (a[1] * b[2] - a[2] * b[1]) / det],
    [(b[2] * c[0] - b[0] * c[2]) / det, (a[0] * c[2] - a[2] * c[0]) / det, (a[2] * b[0] - a[0] * b[2]) / det],
    [(b[0] * c[1] - b[1] * c[0]) / det, (a[1] * c[0] - a[0] * c[1]) / det, (a[0] * b[1] - a[1] * b[0]) / det],
  ];
  const out: number[][] = [];
  for (let i = 0; i < positions.length; i += 3) {
    const r = [positions[i], positions[i + 1], positions[i + 2]];
    out.push([0, 1, 2].map((j) => r[0] * inv[0][j] + r[1] * inv[1][j] + r[2] * inv[2][j]));
  }
  return out;
}

/** VASP's layout: the header before the first step only, or before every step (a run whose cell changes). */
export function xdatcarText(steps: VaspStep[], variableCell: boolean): string {
  const types: string[] = [];
  const counts: number[] = [];
  for (const s of steps[0].symbols) {
    if (types[types.length - 1] === s) counts[counts.length - 1]++;
    else {
      types.push(s);
      counts.push(1);
    }
  }
  const header = (cell: Float64Array) =>
    [types.join(" "), "           1", ...[0, 3, 6].map((k) => Array.from(cell.slice(k, k + 3), (x) => x.toFixed(6).padStart(12)).join("")), types.map((t) => t.padStart(4)).join(""), counts.map((n) => String(n).padStart(4)).join("")].join("\n") + "\n";
  let text = "";
  steps.forEach((step, k) => {
    if (k === 0 || variableCell) text += header(step.cell);
    text += `Direct configuration=${String(k + 1).padStart(6)}\n`;
    for (const f of fractional(step.cell, step.positions)) text += f.map((x) => x.toFixed(8).padStart(12)).join("") + "\n";
  });
  return text;
}
