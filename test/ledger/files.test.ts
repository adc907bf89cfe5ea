import { describe, expect, it } from "vitest";
import { LedgerError } from "../../src/ledger/errors.js";
import { checkFileSizes, MAX_FILE_BYTES, prepareFiles } from "../../src/ledger/files.js";

function refusal(run: () => unknown): LedgerError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(LedgerError);
    return err as LedgerError;
  }
  throw new Error("expected a LedgerError");
}

describe("prepareFiles", () => {
  it("accepts exactly 100 MiB and refuses one byte more, counting UTF-8 bytes of strings", () => {
    expect(MAX_FILE_BYTES).toBe(104_857_600);
    const exact = prepareFiles([{ path: "a.bin", content: Buffer.alloc(MAX_FILE_BYTES) }]);
    checkFileSizes(exact);
    expect(exact[0].content!.length).toBe(MAX_FILE_BYTES);
    // 2-byte characters: under the limit in characters, over it in bytes.
    const wide = "é".repeat(MAX_FILE_BYTES / 2 + 1);
    const err = refusal(() => checkFileSizes(prepareFiles([{ path: "big.extxyz", content: wide }])));
    expect(err.code).toBe("too-large");
    expect(err.message).toContain(`${MAX_FILE_BYTES + 2} bytes`);
  });

  it("checks every file against the guard and says whether it would write or delete", () => {
    const guard = (p: string) => (p.startsWith("rounds/0002/dataset/") ? "dataset" : null);
    const ok = prepareFiles([{ path: "rounds/0002/jobs.json", content: "[]", executable: false }], guard);
    expect(ok).toEqual([{ path: "rounds/0002/jobs.json", content: Buffer.from("[]"), executable: false }]);
    const err = refusal(() => prepareFiles([{ path: "rounds/0002/dataset/split.json", content: null }], guard));
    expect(err.code).toBe("frozen");
    expect(err.message).toBe('refusing to delete rounds/0002/dataset/split.json: step "dataset" is finished and its files are frozen');
  });

  it("keeps deletions as null and the executable flag", () => {
    expect(prepareFiles([{ path: "x/run.sh", content: "#!/bin/sh\n", executable: true }, { path: "gone", content: null }])).toEqual([
      { path: "x/run.sh", content: Buffer.from("#!/bin/sh\n"), executable: true },
      { path: "gone", content: null, executable: false },
    ]);
  });
});
