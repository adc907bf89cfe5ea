import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "node",
    // One test file per core: most wait on git, ssh, Slurm and child processes, not on the CPU (vitest's default
    // leaves a core idle, which on a 2-core machine runs the files one at a time: 760 s instead of 455 s).
    maxWorkers: "100%",
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default", "./test/helpers/summary-reporter.ts"],
    projects: [
      { extends: true, test: { name: "suite", include: ["test/**/*.test.ts"], exclude: ["test/**/*.exclusive.test.ts"], sequence: { groupOrder: 0 } } },
      // Files that take a shared service away (the loopback Slurm controller, sshd) run alone, after the rest.
      {
        extends: true,
        test: { name: "exclusive", include: ["test/**/*.exclusive.test.ts"], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
