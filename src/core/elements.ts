/** Element symbols by atomic number; index 0 is ASE's dummy atom X. */
export const CHEMICAL_SYMBOLS: readonly string[] = (
  "X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr " +
  "Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt " +
  "Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc " +
  "Lv Ts Og"
).split(" ");

const NUMBER_OF = new Map(CHEMICAL_SYMBOLS.map((s, z) => [s, z] as const).filter(([, z]) => z > 0));

/** True for the symbols of real elements (H..Og), not the dummy X. */
export function isElement(symbol: string): boolean {
  return NUMBER_OF.has(symbol);
}

/** The atomic number of an element symbol (`Fe` -> 26), or undefined when it names no element. */
export function atomicNumber(symbol: string): number | undefined {
  return NUMBER_OF.get(symbol);
}

/** The element symbol of an atomic number (26 -> `Fe`), or undefined outside 1..118. */
export function elementSymbol(z: number): string | undefined {
  return Number.isInteger(z) && z > 0 && z < CHEMICAL_SYMBOLS.length ? CHEMICAL_SYMBOLS[z] : undefined;
}

/** Why `symbol` names no element (with `wildcard`, "*" for every other element is one), or null. */
export function elementProblem(symbol: string, wildcard: boolean): string | null {
  if (isElement(symbol) || (wildcard && symbol === "*")) return null;
  return `"${symbol}" is not an element symbol${wildcard ? " (or * for every other element)" : ""}`;
}
