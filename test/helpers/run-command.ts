export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs one command's `runXxx(argv)` (or the CLI's `main`) in-process, capturing what it prints. Errors a command
 * throws propagate, so tests can check them before main turns them into exit codes.
 */
export async function runCommand(run: (argv: string[]) => Promise<number>, ...argv: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const origOut = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (err.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    const code = await run(argv);
    return { code, stdout: out.join(""), stderr: err.join("") };
  } finally {
    process.stdout.write = origOut;
    process.stderr.write = origErr;
  }
}
