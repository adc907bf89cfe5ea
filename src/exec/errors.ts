/** A problem running stages: an unreachable host, a refused host key, a rejected submission. One line, no stack. */
export class ExecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExecError";
  }
}

/**
 * The connection to the execution host failed or dropped. `retryable` is false for what waiting cannot fix: a
 * changed host key, a refused login, a missing key.
 */
export class ConnectionError extends ExecError {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "ConnectionError";
  }
}
