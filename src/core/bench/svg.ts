/**
 * Hand-written SVG plots for the benchmark report: parity plots (scatter, or a 2-D histogram for many points) and
 * validation learning curves. Output is deterministic (coordinates to 0.1 px) and small (a few hundred KB at most).
 */

const FONT = 'font-family="Helvetica, Arial, sans-serif"';
/** Tableau 10: distinguishable categories. */
export const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
/** Viridis at 8 levels: counts of a 2-D histogram, light = many. */
const DENSITY = ["#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725"];

export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A coordinate with one decimal, never "-0.0". */
function px(x: number): string {
  const s = x.toFixed(1);
  return s === "-0.0" ? "0.0" : s;
}

export interface Ticks {
  lo: number;
  hi: number;
  values: number[];
  labels: string[];
}

/** Round ticks (1, 2 or 5 times a power of ten) covering [lo, hi], about `target` of them; the range snaps to ticks. */
export function niceTicks(lo: number, hi: number, target = 6): Ticks {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const mult = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  const step = mult * mag;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const values: number[] = [];
  const labels: string[] = [];
  for (let k = first; k <= last; k++) {
    values.push(k * step);
    labels.push(tickLabel(k * step, decimals));
  }
  return { lo: first * step, hi: last * step, values, labels };
}

function tickLabel(x: number, decimals: number): string {
  const s = x.toFixed(decimals);
  return /^-0(?:\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** Decade ticks for a log axis (with 2 and 5 in between when the range spans at most two decades). */
export function logTicks(lo: number, hi: number): Ticks {
  const a = Math.floor(Math.log10(lo) + 1e-9);
  const b = Math.max(a + 1, Math.ceil(Math.log10(hi) - 1e-9));
  const values: number[] = [];
  for (let k = a; k <= b; k++) {
    for (const m of b - a <= 2 ? [1, 2, 5] : [1]) {
      const v = m * 10 ** k;
      if (v <= 10 ** b * (1 + 1e-9)) values.push(v);
    }
  }
  const labels = values.map((v) => {
    const k = Math.floor(Math.log10(v) + 1e-9);
    return k >= 0 ? String(Math.round(v)) : v.toFixed(-k);
  });
  return { lo: 10 ** a, hi: 10 ** b, values, labels };
}

export interface ParityPlot {
  title: string;
  subtitle: string;
  xLabel: string;
  yLabel: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  /** Category per point (index into groupNames); colours the scatter. */
  group?: ArrayLike<number>;
  groupNames?: string[];
  /** Above this many points the plot becomes a 2-D histogram. */
  maxPoints?: number;
  bins?: number;
}

const PLOT = 400;
const LEFT = 76;
const TOP = 64;

/** A square parity plot with a y = x line. */
export function paritySvg(p: ParityPlot): string {
  const n = p.x.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    lo = Math.min(lo, p.x[i], p.y[i]);
    hi = Math.max(hi, p.x[i], p.y[i]);
  }
  if (n === 0) {
    lo = 0;
    hi = 1;
  }
  const ticks = niceTicks(lo, hi);
  const scale = PLOT / (ticks.hi - ticks.lo);
  const sx = (v: number) => LEFT + (v - ticks.lo) * scale;
  const sy = (v: number) => TOP + PLOT - (v - ticks.lo) * scale;
  const width = LEFT + PLOT + 24;
  const height = TOP + PLOT + 58;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(p.title)}</text>`);
  out.push(`<text x="${width / 2}" y="44" text-anchor="middle" fill="#444444">${escapeXml(p.subtitle)}</text>`);
  out.push(axes(ticks, ticks, sx, sy, p.xLabel, p.yLabel));
  out.push(`<line x1="${px(sx(ticks.lo))}" y1="${px(sy(ticks.lo))}" x2="${px(sx(ticks.hi))}" y2="${px(sy(ticks.hi))}" stroke="#888888" stroke-width="1" stroke-dasharray="5,4"/>`);
  const bins = p.bins ?? 100;
  if (n > (p.maxPoints ?? 2500)) out.push(histogram(p, ticks, bins));
  else out.push(scatter(p, sx, sy));
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

function axes(xt: Ticks, yt: Ticks, sx: (v: number) => number, sy: (v: number) => number, xLabel: string, yLabel: string, plotW = PLOT, plotH = PLOT, left = LEFT, top = TOP): string {
  const out: string[] = [];
  out.push(`<g stroke="#e6e6e6" stroke-width="1">`);
  for (const v of xt.values) out.push(`<line x1="${px(sx(v))}" y1="${top}" x2="${px(sx(v))}" y2="${top + plotH}"/>`);
  for (const v of yt.values) out.push(`<line x1="${left}" y1="${px(sy(v))}" x2="${left + plotW}" y2="${px(sy(v))}"/>`);
  out.push(`</g>`);
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333333" stroke-width="1"/>`);
  out.push(`<g fill="#333333" font-size="11">`);
  xt.values.forEach((v, i) => {
    out.push(`<line x1="${px(sx(v))}" y1="${top + plotH}" x2="${px(sx(v))}" y2="${top + plotH + 5}" stroke="#333333"/>`);
    out.push(`<text x="${px(sx(v))}" y="${top + plotH + 18}" text-anchor="middle">${xt.labels[i]}</text>`);
  });
  yt.values.forEach((v, i) => {
    out.push(`<line x1="${left - 5}" y1="${px(sy(v))}" x2="${left}" y2="${px(sy(v))}" stroke="#333333"/>`);
    out.push(`<text x="${left - 8}" y="${px(sy(v) + 4)}" text-anchor="end">${yt.labels[i]}</text>`);
  });
  out.push(`</g>`);
  out.push(`<text x="${px(left + plotW / 2)}" y="${top + plotH + 40}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  const ly = top + plotH / 2;
  out.push(`<text x="${left - 52}" y="${px(ly)}" text-anchor="middle" transform="rotate(-90 ${left - 52} ${px(ly)})">${escapeXml(yLabel)}</text>`);
  return out.join("\n");
}

function scatter(p: ParityPlot, sx: (v: number) => number, sy: (v: number) => number): string {
  const names = p.groupNames ?? [];
  const coloured = p.group !== undefined && names.length > 1 && names.length <= PALETTE.length;
  const groups = coloured ? names.length : 1;
  const out: string[] = [];
  const present = new Set<number>();
  for (let g = 0; g < groups; g++) {
    const circles: string[] = [];
    for (let i = 0; i < p.x.length; i++) {
      if (coloured && p.group![i] !== g) continue;
      circles.push(`<circle cx="${px(sx(p.x[i]))}" cy="${px(sy(p.y[i]))}" r="2.5"/>`);
    }
    if (circles.length === 0) continue;
    present.add(g);
    out.push(`<g fill="${PALETTE[g]}" fill-opacity="0.55" stroke="none">`, ...circles, `</g>`);
  }
  if (coloured) out.push(legendBox(names.map((name, g) => ({ name, color: PALETTE[g] })).filter((_, g) => present.has(g))));
  return out.join("\n");
}

/** A legend in the upper-left corner of the plot, where parity plots are empty. */
function legendBox(entries: Array<{ name: string; color: string }>, left = LEFT + 8, top = TOP + 8): string {
  const width = 16 + Math.min(28, Math.max(...entries.map((e) => e.name.length))) * 6.5 + 12;
  const out = [`<rect x="${left}" y="${top}" width="${px(width)}" height="${entries.length * 16 + 8}" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`];
  entries.forEach((e, i) => {
    const y = top + 14 + i * 16;
    out.push(`<circle cx="${left + 10}" cy="${y - 4}" r="4" fill="${e.color}"/>`);
    const name = e.name.length > 28 ? `${e.name.slice(0, 27)}…` : e.name;
    out.push(`<text x="${left + 20}" y="${y}" font-size="11">${escapeXml(name)}</text>`);
  });
  return out.join("\n");
}

function histogram(p: ParityPlot, ticks: Ticks, bins: number): string {
  const counts = new Uint32Array(bins * bins);
  const span = ticks.hi - ticks.lo;
  const bin = (v: number) => Math.min(bins - 1, Math.max(0, Math.floor(((v - ticks.lo) / span) * bins)));
  for (let i = 0; i < p.x.length; i++) counts[bin(p.y[i]) * bins + bin(p.x[i])]++;
  let max = 0;
  for (const c of counts) if (c > max) max = c;
  const levels = DENSITY.length;
  const level = (c: number) => (max <= 1 ? levels - 1 : Math.round((Math.log(c) / Math.log(max)) * (levels - 1)));
  const paths: string[][] = DENSITY.map(() => []);
  const cell = PLOT / bins;
  for (let r = 0; r < bins; r++) {
    for (let c = 0; c < bins; c++) {
      const count = counts[r * bins + c];
      if (count === 0) continue;
      const x = LEFT + c * cell;
      const y = TOP + PLOT - (r + 1) * cell;
      paths[level(count)].push(`M${px(x)} ${px(y)}h${px(cell)}v${px(cell)}h-${px(cell)}z`);
    }
  }
  const out: string[] = [];
  paths.forEach((d, k) => {
    if (d.length > 0) out.push(`<path fill="${DENSITY[k]}" d="${d.join("")}"/>`);
  });
  // Colour bar: counts per bin on a log scale, 1 .. max.
  const bx = LEFT + 10;
  const by = TOP + 10;
  out.push(`<rect x="${bx - 4}" y="${by - 4}" width="${DENSITY.length * 14 + 70}" height="38" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`);
  DENSITY.forEach((color, k) => out.push(`<rect x="${bx + k * 14}" y="${by}" width="14" height="10" fill="${color}"/>`));
  out.push(`<text x="${bx}" y="${by + 24}" font-size="10">1</text>`);
  out.push(`<text x="${bx + DENSITY.length * 14}" y="${by + 24}" font-size="10" text-anchor="end">${max}</text>`);
  out.push(`<text x="${bx + DENSITY.length * 14 + 6}" y="${by + 9}" font-size="10">per bin</text>`);
  out.push(`<text x="${bx + DENSITY.length * 14 + 6}" y="${by + 21}" font-size="10">(log)</text>`);
  return out.join("\n");
}

export interface CurveSeries {
  name: string;
  points: Array<{ x: number; y: number }>;
}

export interface CurvePanel {
  title: string;
  yLabel: string;
  series: CurveSeries[];
}

export interface CurvePlot {
  title: string;
  subtitle: string;
  xLabel: string;
  panels: CurvePanel[];
  /** Vertical markers, e.g. where stochastic weight averaging starts. */
  markers: Array<{ x: number; label: string }>;
}

const PANEL_W = 320;
const PANEL_H = 250;
const PANEL_LEFT = 70;
const PANEL_GAP = 90;

/** Panels side by side sharing the x axis (epochs); a log y axis when a series spans more than a factor 20. */
export function curveSvg(plot: CurvePlot): string {
  const names = [...new Set(plot.panels.flatMap((p) => p.series.map((s) => s.name)))];
  const color = new Map(names.map((n, i) => [n, PALETTE[i % PALETTE.length]]));
  const xs = plot.panels.flatMap((p) => p.series.flatMap((s) => s.points.map((q) => q.x)));
  const xt = niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1, 6);
  const top = 84;
  const width = PANEL_LEFT + plot.panels.length * PANEL_W + (plot.panels.length - 1) * PANEL_GAP + 24;
  const legendRows = Math.ceil(names.length / 3);
  const height = top + PANEL_H + 56 + legendRows * 18 + 8;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(plot.title)}</text>`);
  out.push(`<text x="${width / 2}" y="44" text-anchor="middle" fill="#444444">${escapeXml(plot.subtitle)}</text>`);
  plot.panels.forEach((panel, k) => {
    const left = PANEL_LEFT + k * (PANEL_W + PANEL_GAP);
    const ys = panel.series.flatMap((s) => s.points.map((q) => q.y));
    const yMin = ys.length ? Math.min(...ys) : 0;
    const yMax = ys.length ? Math.max(...ys) : 1;
    const log = yMin > 0 && yMax / yMin > 20;
    const yt = log ? logTicks(yMin, yMax) : niceTicks(Math.min(0, yMin), yMax, 5);
    const tf = (v: number) => (log ? Math.log10(v) : v);
    const sx = (v: number) => left + ((v - xt.lo) / (xt.hi - xt.lo)) * PANEL_W;
    const sy = (v: number) => top + PANEL_H - ((tf(v) - tf(yt.lo)) / (tf(yt.hi) - tf(yt.lo))) * PANEL_H;
    out.push(axes(xt, yt, sx, sy, plot.xLabel, panel.yLabel + (log ? " (log scale)" : ""), PANEL_W, PANEL_H, left, top));
    out.push(`<text x="${left + PANEL_W / 2}" y="${top - 6}" text-anchor="middle" font-weight="bold">${escapeXml(panel.title)}</text>`);
    for (const m of plot.markers) {
      if (m.x < xt.lo || m.x > xt.hi) continue;
      out.push(`<line x1="${px(sx(m.x))}" y1="${top}" x2="${px(sx(m.x))}" y2="${top + PANEL_H}" stroke="#999999" stroke-dasharray="4,3"/>`);
      out.push(`<text x="${px(sx(m.x) + 4)}" y="${top + 14}" font-size="10" fill="#666666">${escapeXml(m.label)}</text>`);
    }
    for (const s of panel.series) {
      if (s.points.length === 0) continue;
      const c = color.get(s.name)!;
      const pts = s.points.map((q) => `${px(sx(q.x))},${px(sy(q.y))}`);
      out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${pts.join(" ")}"/>`);
      out.push(`<g fill="${c}">`);
      for (const q of s.points) out.push(`<circle cx="${px(sx(q.x))}" cy="${px(sy(q.y))}" r="2.5"/>`);
      out.push(`</g>`);
    }
  });
  names.forEach((name, i) => {
    const x = PANEL_LEFT + (i % 3) * 260;
    const y = top + PANEL_H + 62 + Math.floor(i / 3) * 18;
    out.push(`<line x1="${x}" y1="${y - 4}" x2="${x + 18}" y2="${y - 4}" stroke="${color.get(name)}" stroke-width="2.5"/>`);
    out.push(`<text x="${x + 24}" y="${y}" font-size="11">${escapeXml(name)}</text>`);
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
