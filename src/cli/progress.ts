/** A one-line progress display on stderr, drawn only when stderr is a terminal and throttled to 10 Hz. */
export class Progress {
  private last = 0;
  private drawn = false;
  private readonly enabled: boolean;

  constructor(private readonly label: string, stream: NodeJS.WriteStream = process.stderr) {
    this.enabled = Boolean(stream.isTTY) && !process.env.CI;
    this.stream = stream;
  }

  private readonly stream: NodeJS.WriteStream;

  update(text: string, fraction?: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    const width = 24;
    const bar = fraction === undefined ? "" : `[${"#".repeat(Math.round(fraction * width)).padEnd(width, ".")}] `;
    // A terminal that reports no width (0, as under `script`) gets 80 columns.
    const line = `${this.label} ${bar}${text}`.slice(0, (this.stream.columns || 80) - 1);
    this.stream.write(`\r\x1b[2K${line}`);
    this.drawn = true;
  }

  done(): void {
    if (this.drawn) this.stream.write("\r\x1b[2K");
    this.drawn = false;
  }
}
