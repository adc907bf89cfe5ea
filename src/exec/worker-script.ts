/**
 * Worker threads that run compiled modules: the script next to the calling module in dist/, or, when the
 * caller runs from the TypeScript sources (the tests), the same script in dist/, which `npm test` builds first.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** `dist/<dir>/<name>.js` seen from the module at `callerUrl` (in src/<dir> or dist/<dir>); undefined when absent. */
export function compiledWorkerScript(callerUrl: string, dir: string, name: string): URL | undefined {
  const here = new URL(callerUrl);
  const script = here.pathname.endsWith(".ts") ? new URL(`../../dist/${dir}/${name}.js`, here) : new URL(`./${name}.js`, here);
  return existsSync(fileURLToPath(script)) ? script : undefined;
}
