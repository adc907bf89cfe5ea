/** What the VASP readers (vasprun.xml and OUTCAR) produce: one DFT ionic step at a time, then a summary. */

export interface VaspStep {
  /** 0-based index among the DFT ionic steps of the file (ML force-field steps are not counted). */
  index: number;
  symbols: string[];
  /** Cartesian positions, Angstrom, length 3N. */
  positions: Float64Array;
  /** Cell rows a1 a2 a3, Angstrom, length 9. */
  cell: Float64Array;
  /** eV/Angstrom, length 3N. */
  forces: Float64Array;
  /** Voigt xx yy zz yz xz xy in eV/A^3 with ASE's sign (-sigma_VASP / 1602.1766); null when VASP computed none. */
  stress: Float64Array | null;
  /** e_fr_energy / TOTEN, eV: the force-consistent free energy. */
  freeEnergy: number;
  /** energy(sigma->0), eV, with the VASP 5 vasprun correction applied. */
  energySigma0: number;
  /** Electronic (SCF) iterations in this ionic step. */
  scfSteps: number;
  nelm: number | null;
  /** False when the SCF loop hit NELM (or VASP 6 said EDIFF was not reached). */
  scfConverged: boolean;
}

/** Something the reader did not turn into a step, with the reason. Never silent. */
export interface SkippedStep {
  /** 0-based position in the file among blocks of this kind, when known. */
  block: number | null;
  /** 1-based line the reason points at, for a frame of a text file (an extxyz atom line). */
  line?: number;
  reason: string;
}

export interface VaspSummary {
  file: string;
  format: "vasprun" | "outcar";
  vaspVersion: string | null;
  nelm: number | null;
  /** Resolved settings relevant to mixing DFT settings (ENCUT, GGA, METAGGA, ISPIN, LASPH, PREC, IVDW, LDAU*, ISIF, ...). */
  parameters: Record<string, string | number | boolean | number[]>;
  /** The species per atom as the file declares them (empty when it could not tell). */
  symbols: string[];
  /** The pseudopotential title of each atom type, in type order (`PAW_PBE Fe_pv 02Aug2007`); empty when unknown. */
  potentials: string[];
  stepsRead: number;
  skipped: SkippedStep[];
  /** ML force-field predicted steps seen and left out (never DFT labels). */
  mlStepsSkipped: number;
  /** Null when the file ended normally; otherwise where it was cut, e.g. "line 4817, inside <calculation> 3". */
  truncated: string | null;
}
