// Writes templates/relabel.schema.json from the built zod schema (run through `npm run schema`, which builds first).
// test/core/app/config.test.ts fails when the checked-in file differs from what this writes.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const target = fileURLToPath(new URL("../templates/relabel.schema.json", import.meta.url));
const { relabelJsonSchemaText } = await import("../dist/core/app/config.js");
writeFileSync(target, relabelJsonSchemaText());
process.stdout.write(`wrote ${target}\n`);
