#!/usr/bin/env node
import { endQuietlyWhenOutputCloses, main } from "../dist/cli/main.js";

endQuietlyWhenOutputCloses();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    // Only programming errors reach here; user errors are printed as one line by main().
    console.error(err);
    process.exitCode = 70;
  },
);
