/**
 * DFT settings that must agree across the runs of one dataset: ENCUT, GGA, METAGGA, ISPIN, LASPH, PREC, IVDW and
 * the DFT+U parameters. Each run's values are normalised to comparable text, so that the vasprun.xml form
 * (`PREC = accura`, `GGA = --`) and the OUTCAR form (`accurate`) of the same setting compare equal.
 */

export type RawParameters = Record<string, string | number | boolean | number[]>;

/** Setting name -> normalised value, e.g. `{ ENCUT: "520", PREC: "accurate", "LDAU[Fe]": "L=2 U=4 J=0" }`. */
export type RunSettings = Record<string, string>;

const PREC_WORDS: Record<string, string> = { l: "low", m: "medium", n: "normal", h: "high", a: "accurate", s: "single" };

/** VASP's atom types: consecutive blocks of the same species (Ti, O, Ti is three types). */
export function speciesTypes(symbols: readonly string[]): string[] {
  const types: string[] = [];
  for (let i = 0; i < symbols.length; i++) if (i === 0 || symbols[i] !== symbols[i - 1]) types.push(symbols[i]);
  return types;
}

function pick(key: string, params: RawParameters, incar: RawParameters | null): RawParameters[string] | undefined {
  return params[key] ?? incar?.[key];
}

function asBool(v: RawParameters[string] | undefined): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (typeof v === "string") {
    const m = /^\.?(T|TRUE|F|FALSE)\.?$/i.exec(v);
    if (m) return m[1][0].toUpperCase() === "T";
  }
  return undefined;
}

function asNumber(v: RawParameters[string] | undefined): number | undefined {
  if (typeof v === "number") return v;
  if (Array.isArray(v) && v.length > 0) return v[0];
  if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

function asList(v: RawParameters[string] | undefined): number[] {
  if (Array.isArray(v)) return v;
  if (typeof v === "number") return [v];
  return [];
}

/** `accura`, `a`, `Accurate` -> `accurate`; `SingleN` stays apart from `Single`. */
export function normalisePrec(v: RawParameters[string] | undefined): string {
  if (typeof v !== "string" || v.trim() === "") return "normal";
  const word = v.trim().toLowerCase();
  if (word.startsWith("singlen")) return "singlen";
  return PREC_WORDS[word[0]] ?? word;
}

/**
 * The functional each POTCAR family declares (its LEXCH), which VASP uses when GGA is unset or `--`: PAW_PBE PE,
 * PAW_GGA 91 (PW91), plain PAW CA (LDA).
 */
const POTCAR_FAMILY_GGA: Record<string, string> = { PAW_PBE: "PE", PAW_GGA: "91", PAW: "CA" };

/**
 * GGA as the run used it. `--` or none takes the functional of the POTCAR (its first potential's family; see
 * POTCAR_FAMILY_GGA): a family not listed reads `POTCAR <family>`, and without titles it is read as PE, which
 * every PAW_PBE POTCAR declares.
 */
export function normaliseGga(v: RawParameters[string] | undefined, potentials: readonly string[] = []): string {
  const word = typeof v === "string" ? v.trim().toUpperCase() : "";
  if (word !== "" && word !== "--") return word;
  const family = potentials[0]?.split(" ")[0];
  if (family === undefined) return "PE";
  return POTCAR_FAMILY_GGA[family] ?? `POTCAR ${family}`;
}

export function normaliseMetagga(v: RawParameters[string] | undefined): string {
  if (v === undefined || v === false) return "none";
  const word = String(v).trim().toUpperCase();
  return word === "" || word === "--" || word === "NONE" || word === "F" || word === ".FALSE." ? "none" : word;
}

function numberText(v: number): string {
  return String(Math.round(v * 1e6) / 1e6);
}

type Normaliser = (v: RawParameters[string] | undefined) => string;

/** The scalar settings compared across runs, each with its normaliser (which also supplies VASP's default). */
const SCALAR_SETTINGS: Record<string, Normaliser> = {
  ENCUT: (v) => {
    const n = asNumber(v);
    return n === undefined ? "unknown" : numberText(n);
  },
  METAGGA: normaliseMetagga,
  ISPIN: (v) => numberText(asNumber(v) ?? 1),
  LASPH: (v) => ((asBool(v) ?? false) ? "T" : "F"),
  PREC: normalisePrec,
  IVDW: (v) => numberText(asNumber(v) ?? 0),
};

export interface NormalisedSettings {
  settings: RunSettings;
  /** Settings whose INCAR value differs from what the run's output says VASP used (the output wins). */
  conflicts: string[];
}

/**
 * The comparable settings of one run from the reader's parameters (what VASP used, preferred) and the run's INCAR
 * (for settings the output does not echo). Absent settings take VASP's defaults: GGA from the POTCAR (PE), METAGGA
 * none, ISPIN 1, LASPH F, PREC normal, IVDW 0, LDAU F. The pseudopotential is compared per element
 * (`POTCAR[Fe]`, its title) when `potentials` gives one per atom type. DFT+U is compared per element (`LDAU[Fe]`), since
 * LDAUL/U/J lists follow each run's own species order; an element without an active U (LDAU off, L = -1, no U
 * and J, or U - J = 0 with Dudarev's LDAUTYPE 2) reads `none`. LDAUTYPE is added only when some element has an
 * active U. ENCUT has no default: without it the setting reads `unknown`.
 */
export function normaliseSettings(params: RawParameters, incar: RawParameters | null, symbols: readonly string[], potentials: readonly string[] = []): NormalisedSettings {
  const settings: RunSettings = {};
  const conflicts: string[] = [];
  const scalars: Record<string, Normaliser> = { ...SCALAR_SETTINGS, GGA: (v) => normaliseGga(v, potentials) };
  for (const [key, normalise] of Object.entries(scalars)) {
    settings[key] = normalise(pick(key, params, incar));
    if (params[key] !== undefined && incar?.[key] !== undefined && normalise(incar[key]) !== settings[key]) {
      conflicts.push(`INCAR sets ${key} = ${normalise(incar[key])} but the run used ${settings[key]}`);
    }
  }
  // Energies of one element from different pseudopotentials do not share a reference: compared per element.
  const types = speciesTypes(symbols);
  if (potentials.length === types.length) setPerElement(settings, "POTCAR", types, (t) => potentials[t]);
  const take = (key: string) => pick(key, params, incar);

  const ldau = asBool(take("LDAU")) ?? false;
  const l = asList(take("LDAUL"));
  const u = asList(take("LDAUU"));
  const j = asList(take("LDAUJ"));
  const ldauType = asNumber(take("LDAUTYPE")) ?? 2;
  const dftU = setPerElement(settings, "LDAU", types, (t) => {
    const lt = l[t] ?? -1;
    const ut = u[t] ?? 0;
    const jt = j[t] ?? 0;
    const active = ldau && lt >= 0 && (ut !== 0 || jt !== 0) && !(ldauType === 2 && ut - jt === 0);
    return active ? `L=${numberText(lt)} U=${numberText(ut)} J=${numberText(jt)}` : "none";
  });
  if (dftU.some((t) => t !== "none")) settings.LDAUTYPE = numberText(ldauType);
  return { settings, conflicts };
}

/**
 * Sets `<name>[<element>]` from the value of each atom type (`types`, VASP's type blocks), elements sorted; an
 * element in two type blocks with different values keeps both visible. Returns the values set.
 */
function setPerElement(settings: RunSettings, name: string, types: readonly string[], valueOf: (type: number) => string): string[] {
  const byElement = new Map<string, string>();
  types.forEach((element, t) => {
    const value = valueOf(t);
    const seen = byElement.get(element);
    byElement.set(element, seen === undefined || seen === value ? value : `${seen}; ${value}`);
  });
  for (const [element, value] of [...byElement].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) settings[`${name}[${element}]`] = value;
  return [...byElement.values()];
}

export interface SettingValueRuns {
  /** Runs with this value. */
  runs: number;
  /** The first few of them, in the order given. */
  examples: string[];
}

export interface SettingsReport {
  /** Setting name -> value -> runs having it; over all runs given. */
  values: Record<string, Record<string, SettingValueRuns>>;
  /** Settings with more than one value, sorted. */
  mixed: string[];
}

/**
 * Groups the runs' settings by value. A setting is mixed when runs disagree on it; a setting missing from a run
 * (an LDAU[element] of an element the run does not contain) does not count as a value.
 */
export function compareSettings(runs: ReadonlyArray<{ id: string; settings: RunSettings }>, examples = 3): SettingsReport {
  const values: Record<string, Record<string, SettingValueRuns>> = {};
  for (const run of runs) {
    for (const [key, value] of Object.entries(run.settings)) {
      const byValue = (values[key] ??= {});
      const entry = (byValue[value] ??= { runs: 0, examples: [] });
      entry.runs++;
      if (entry.examples.length < examples) entry.examples.push(run.id);
    }
  }
  const mixed = Object.keys(values)
    .filter((key) => Object.keys(values[key]).length > 1)
    .sort();
  return { values, mixed };
}
