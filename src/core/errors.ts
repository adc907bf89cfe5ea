/**
 * A problem with user input: a file of the wrong format, a truncated frame, a bad value.
 * Rendered as one line, `FILE:LINE: message` (or `FILE: <element>: message` for XML), never a stack trace.
 */
export class InputError extends Error {
  constructor(
    readonly file: string,
    readonly where: string | number | undefined,
    readonly detail: string,
  ) {
    super(formatLocation(file, where) + detail);
    this.name = "InputError";
  }
}

/**
 * A structure that was read but cannot be described (no atoms, pbc along a zero cell vector, a cell too small for
 * r_max): named by its file and frame. Unlike an unreadable file, it is not a reason to leave a source out quietly.
 */
export class StructureError extends InputError {
  constructor(file: string, where: string | number | undefined, detail: string) {
    super(file, where, detail);
    this.name = "StructureError";
  }
}

function formatLocation(file: string, where: string | number | undefined): string {
  if (where === undefined) return `${file}: `;
  if (typeof where === "number") return `${file}:${where}: `;
  return `${file}: ${where}: `;
}

/** A usage error on the command line (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
