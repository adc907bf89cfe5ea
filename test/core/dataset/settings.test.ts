import { describe, expect, it } from "vitest";
import { compareSettings, normaliseSettings, speciesTypes } from "../../../src/core/dataset/settings.js";

describe("speciesTypes", () => {
  it("counts two blocks of one element as two types", () => {
    expect(speciesTypes(["Ti", "Ti", "O", "O", "Ti"])).toEqual(["Ti", "O", "Ti"]);
  });
});

describe("normaliseSettings", () => {
  it("gives the vasprun.xml and OUTCAR forms of one run the same settings", () => {
    // As the readers report dpdata_h2o_md10: vasprun.xml keeps PREC raw ("a"), the OUTCAR reader spells it out.
    const fromVasprun = normaliseSettings({ ENCUT: 800, GGA: "--", ISPIN: 1, LASPH: true, PREC: "a", LDAU: false }, null, ["O", "H", "H"]);
    const fromOutcar = normaliseSettings({ PREC: "accurate", ISPIN: 1, LASPH: true, METAGGA: false, ENCUT: 800, GGA: "--" }, null, ["O", "H", "H"]);
    expect(fromVasprun.settings).toEqual(fromOutcar.settings);
    expect(fromVasprun.settings).toEqual({
      ENCUT: "800",
      GGA: "PE",
      METAGGA: "none",
      ISPIN: "1",
      LASPH: "T",
      PREC: "accurate",
      IVDW: "0",
      "LDAU[H]": "none",
      "LDAU[O]": "none",
    });
    expect(normaliseSettings({ PREC: "accura" }, null, []).settings.PREC).toBe("accurate");
    expect(normaliseSettings({ PREC: "Normal" }, null, []).settings.PREC).toBe("normal");
  });

  it("takes what the output lacks from the INCAR and reports INCAR values the run did not use", () => {
    const got = normaliseSettings({ ENCUT: 520 }, { ENCUT: 400, IVDW: 12, METAGGA: "R2SCAN" }, ["Si"]);
    expect(got.settings).toMatchObject({ ENCUT: "520", IVDW: "12", METAGGA: "R2SCAN" });
    expect(got.conflicts).toEqual(["INCAR sets ENCUT = 400 but the run used 520"]);
  });

  it("compares DFT+U per element, whatever the species order of the run", () => {
    // custodian_postprocess_FeO_relax_isif3 as the vasprun.xml reader reports it: Fe then O.
    const feO = normaliseSettings({ LDAU: true, LDAUL: [2, 0], LDAUU: [4, 0], LDAUJ: [0, 0], LDAUTYPE: [2] }, null, ["Fe", "Fe", "O", "O"]).settings;
    const sFe = normaliseSettings({ LDAU: true, LDAUL: [-1, 2], LDAUU: [0, 4], LDAUJ: [0, 0], LDAUTYPE: 2 }, null, ["S", "S", "Fe"]).settings;
    expect(feO["LDAU[Fe]"]).toBe("L=2 U=4 J=0");
    expect(sFe["LDAU[Fe]"]).toBe("L=2 U=4 J=0");
    expect(feO["LDAU[O]"]).toBe("none");
    expect(sFe["LDAU[S]"]).toBe("none");
    expect(feO.LDAUTYPE).toBe("2");
    const noU = normaliseSettings({ LDAU: false, LDAUL: [2], LDAUU: [4] }, null, ["Fe"]).settings;
    expect(noU["LDAU[Fe]"]).toBe("none");
    expect(noU.LDAUTYPE).toBeUndefined();
  });
});

describe("normaliseSettings with the pseudopotentials", () => {
  it("reads GGA = -- as the functional of the POTCAR family: PBE, PW91 or LDA", () => {
    // As the readers report dpdata_ch4_md_scf_unconverged, dpdata_ch4_mlff_md_v630 and flare_NiTi_static.
    const gga = (potentials: string[], value: string | undefined = "--") => normaliseSettings(value === undefined ? {} : { GGA: value }, null, [], potentials).settings.GGA;
    expect(gga(["PAW_PBE C 08Apr2002", "PAW_PBE H 15Jun2001"])).toBe("PE");
    expect(gga(["PAW_GGA C 05Jan2001", "PAW_GGA H 07Jul1998"])).toBe("91");
    expect(gga(["PAW Ni 02Aug2007", "PAW Ti 07Sep2000"], undefined)).toBe("CA");
    expect(gga(["US Fe"])).toBe("POTCAR US");
    // A GGA tag set in INCAR overrides the POTCAR (fairchem's OC20 runs: RP with PAW_PBE potentials).
    expect(gga(["PAW_PBE Ir 06Sep2000"], " RP")).toBe("RP");
    expect(gga([])).toBe("PE");
  });

  it("compares the pseudopotential per element, when there is one title per atom type", () => {
    const tiOTi = normaliseSettings({}, null, ["Ti", "Ti", "Ti", "O", "O", "Ti", "Ti", "Ti"], ["PAW_PBE Ti 08Apr2002", "PAW_PBE O 08Apr2002", "PAW_PBE Ti 08Apr2002"]).settings;
    expect(tiOTi).toMatchObject({ "POTCAR[O]": "PAW_PBE O 08Apr2002", "POTCAR[Ti]": "PAW_PBE Ti 08Apr2002" });
    const twoTi = normaliseSettings({}, null, ["Ti", "O", "Ti"], ["PAW_PBE Ti 08Apr2002", "PAW_PBE O 08Apr2002", "PAW_PBE Ti_sv 26Sep2005"]).settings;
    expect(twoTi["POTCAR[Ti]"]).toBe("PAW_PBE Ti 08Apr2002; PAW_PBE Ti_sv 26Sep2005");
    expect(Object.keys(normaliseSettings({}, null, ["Ti", "O"], ["PAW_PBE Ti 08Apr2002"]).settings).filter((k) => k.startsWith("POTCAR"))).toEqual([]);
  });
});

describe("compareSettings", () => {
  it("finds settings on which runs disagree, ignoring elements a run lacks", () => {
    const report = compareSettings([
      { id: "a", settings: { ENCUT: "520", "LDAU[Fe]": "L=2 U=4 J=0" } },
      { id: "b", settings: { ENCUT: "520", "LDAU[Si]": "none" } },
      { id: "c", settings: { ENCUT: "400", "LDAU[Fe]": "L=2 U=4 J=0" } },
    ]);
    expect(report.mixed).toEqual(["ENCUT"]);
    expect(report.values.ENCUT).toEqual({ "520": { runs: 2, examples: ["a", "b"] }, "400": { runs: 1, examples: ["c"] } });
  });
});
