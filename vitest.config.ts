import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "node",
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
