/**
 * The GitHub App's credentials in the environment. The server reads them once and removes them; child processes
 * (stages on the App host, git) never get them, and an executor config may not name them as an SSH key, so
 * nothing a data repository controls can read them.
 */

/** The App's private key (or where it lives) and its webhook and OAuth secrets. */
export const APP_SECRET_VARIABLES = ["PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET", "GITHUB_CLIENT_SECRET"] as const;

/** Case-insensitive: Windows' environment is, and no executor needs a variable of these names in any case. */
export function isAppSecretVariable(name: string): boolean {
  return (APP_SECRET_VARIABLES as readonly string[]).includes(name.toUpperCase());
}

/** The environment for a child process: `env` without the App's credentials (and without unset entries). */
export function childEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !isAppSecretVariable(name)) out[name] = value;
  }
  return out;
}
