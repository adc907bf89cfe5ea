import type { InputReport } from "../io/inputs.js";

/**
 * Prints what each input lost or got wrong, one line each; returns true when any input had a problem. An input that
 * gave no frame is one: its line says why (its notes are part of that line).
 */
export function printInputReports(reports: InputReport[], out: NodeJS.WritableStream = process.stderr): boolean {
  let problems = false;
  for (const r of reports) {
    const name = r.primary && r.kind === "rundir" ? `${r.path} (${r.primary.slice(r.path.length + 1)})` : r.path;
    for (const p of r.problems) out.write(`error: ${p.startsWith(r.path) ? p : `${name}: ${p}`}\n`);
    if (r.noFrame !== null) out.write(`error: ${name}: ${r.noFrame}\n`);
    for (const s of r.skipped) {
      out.write(s.line !== undefined ? `skipped: ${r.primary ?? r.path}:${s.line}: ${s.reason}\n` : `skipped: ${name}: ${s.block === null ? "" : `block ${s.block}: `}${s.reason}\n`);
    }
    if (r.noFrame === null) for (const n of r.notes) out.write(`note: ${name}: ${n}\n`);
    if (r.problems.length || r.skipped.length || r.noFrame !== null) problems = true;
  }
  return problems;
}

