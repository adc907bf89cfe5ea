/**
 * The comment-line grammar, case by case. Expected values come from the grammar facts in
 * /work/shared/docs/formats.md section 1, ASE 3.22.1's behaviour (checked by hand with ase.io.extxyz) and the
 * should-pass/should-fail lists of libAtoms/extxyz kv_tests.md; where ASE 3.22.1 and libAtoms differ the case says
 * which one is followed.
 */
import { describe, expect, it } from "vitest";
import { parseKeyValues, parseProperties, stressVoigt } from "../../../src/core/formats/extxyz.js";
import { InputError } from "../../../src/core/errors.js";
import type { InfoValue } from "../../../src/core/structure.js";

const int = (value: number): InfoValue => ({ kind: "int", value });
const float = (value: number): InfoValue => ({ kind: "float", value });
const bool = (value: boolean): InfoValue => ({ kind: "bool", value });
const str = (value: string): InfoValue => ({ kind: "string", value });
const json = (value: unknown): InfoValue => ({ kind: "json", value });
const arr = (dtype: "int" | "float" | "bool", shape: number[], data: number[] | boolean[]): InfoValue => ({ kind: "array", dtype, shape, data });

function one(text: string): InfoValue {
  const kv = parseKeyValues(text);
  expect([...kv.keys()]).toHaveLength(1);
  return [...kv.values()][0];
}

describe("scalars are typed int, then float, then bool, then string", () => {
  const cases: [string, InfoValue][] = [
    ["n=12", int(12)],
    ["n=+12", int(12)],
    ["n=-12", int(-12)],
    ["n=012", int(12)],
    ["n=-0", int(0)],
    ["n=1_000", int(1000)],
    ["energy=-10", int(-10)],
    // Beyond int64 numpy gives up on int and reads a float.
    ["n=99999999999999999999", float(1e20)],
    ["x=12.0", float(12)],
    ["x=012.0", float(12)],
    ["x=-0.12", float(-0.12)],
    ["x=00.12", float(0.12)],
    ["x=+0.012", float(0.012)],
    ["x=.5", float(0.5)],
    ["x=5.", float(5)],
    ["x=12e0", float(12)],
    ["x=12E+12", float(12e12)],
    ["x=-012.0e-12", float(-12e-12)],
    ["x=1.2e7", float(1.2e7)],
    ["x=5e-6", float(5e-6)],
    ["x=1e400", float(Infinity)],
    ["x=-0.0", float(-0)],
    ["x=1_0.5", float(10.5)],
    ["x=nan", float(NaN)],
    ["x=NaN", float(NaN)],
    ["x=inf", float(Infinity)],
    ["x=-Infinity", float(-Infinity)],
    // Fortran exponents are not Python floats: ASE keeps the text (libAtoms would read 100.0).
    ["x=1.0d2", str("1.0d2")],
    ["x=0x10", str("0x10")],
    ["b=T", bool(true)],
    ["b=F", bool(false)],
    ["b=True", bool(true)],
    ["b=true", bool(true)],
    ["b=TRUE", bool(true)],
    ["b=False", bool(false)],
    ["b=false", bool(false)],
    ["b=FALSE", bool(false)],
    // Single lower-case letters are not bools in ASE (libAtoms reads them as bools).
    ["b=t", str("t")],
    ["b=TRuE", str("TRuE")],
    ["s=1.3k7", str("1.3k7")],
    ["s=astring", str("astring")],
    ["s=a/b", str("a/b")],
    ["s=a@b", str("a@b")],
    ["s=a_to_Z_$%^&*", str("a_to_Z_$%^&*")],
    ["s=DMC(1)", str("DMC(1)")],
    ["s=run_iter_0/run_VASP_37oj_bd2", str("run_iter_0/run_VASP_37oj_bd2")],
    ["s=héllo", str("héllo")],
  ];
  it.each(cases)("%s", (text, expected) => {
    expect(one(text)).toEqual(expected);
  });
});

describe("quoting and escapes", () => {
  const cases: [string, InfoValue][] = [
    ['q="quoted value"', str("quoted value")],
    ['q="650 eV"', str("650 eV")],
    ['q="1 P1 P 1 @ 0.01"', str("1 P1 P 1 @ 0.01")],
    ['q="a@b"', str("a@b")],
    ['q="esc\\"aped"', str('esc"aped')],
    ['q="back\\\\slash"', str("back\\slash")],
    ['q="line one\\nline two"', str("line one\nline two")],
    // A quoted number or bool is typed like a bare one.
    ['q="3"', int(3)],
    ['q={3}', int(3)],
    ["q='3.5'", float(3.5)],
    ['q="T"', bool(true)],
    ["q='single quoted'", str("single quoted")],
    ['q="x=1 y=2"', str("x=1 y=2")],
    ['q="[[1, 2, 3], [4, 5, 6]]"', str("[[1, 2, 3], [4, 5, 6]]")],
    // Only the first = splits; the rest belongs to the value.
    ["q=abc=xyz", str("abc=xyz")],
    // Quoted and bare parts of one word are joined, as ASE does.
    ['q="a b"c', str("a bc")],
    ["q=", str("")],
    ['q=""', str("")],
  ];
  it.each(cases)("%s", (text, expected) => {
    expect(one(text)).toEqual(expected);
  });
});

describe("keys", () => {
  it("accepts spaces around =, quoted keys, escaped quotes, digits and hyphens", () => {
    const kv = parseKeyValues('  a = 1   "with space"="a value" sp\\"ace=2 2body=33.3 hyph-en=4 ünï=5  ');
    expect([...kv.keys()]).toEqual(["a", "with space", 'sp"ace', "2body", "hyph-en", "ünï"]);
    expect(kv.get("with space")).toEqual(str("a value"));
    expect(kv.get("2body")).toEqual(float(33.3));
    expect(kv.get("hyph-en")).toEqual(int(4));
  });

  it("reads a bare key as true, anywhere in the line (ASE; libAtoms rejects it)", () => {
    const kv = parseKeyValues("first x=1 middle y=2 last");
    expect([...kv.entries()]).toEqual([
      ["first", bool(true)],
      ["x", int(1)],
      ["middle", bool(true)],
      ["y", int(2)],
      ["last", bool(true)],
    ]);
  });

  it("reads a prose comment as bare keys, as ASE does", () => {
    const kv = parseKeyValues("This is a comment");
    expect([...kv.keys()]).toEqual(["This", "is", "a", "comment"]);
    expect([...kv.values()].every((v) => v.kind === "bool" && v.value)).toBe(true);
  });

  it("keeps a repeated key at its first position with its last value", () => {
    const kv = parseKeyValues("a=1 b=2 a=3");
    expect([...kv.entries()]).toEqual([
      ["a", int(3)],
      ["b", int(2)],
    ]);
  });

  it("leaves uid untyped (ASE's UNPROCESSED_KEYS)", () => {
    expect(one("uid=0042")).toEqual(str("0042"));
    expect(one("UID=T")).toEqual(str("T"));
  });

  it("returns nothing for an empty or blank line", () => {
    expect(parseKeyValues("").size).toBe(0);
    expect(parseKeyValues("   \t ").size).toBe(0);
  });
});

describe("old-style arrays: quotes, braces or single quotes, split at whitespace and commas", () => {
  const cases: [string, InfoValue][] = [
    ['a="1 2 3"', arr("int", [3], [1, 2, 3])],
    ["a={1 2 3}", arr("int", [3], [1, 2, 3])],
    ["a='1 2 3'", arr("int", [3], [1, 2, 3])],
    ['a="4 8 12"', arr("int", [3], [4, 8, 12])],
    ['a="7, 4, -1"', arr("int", [3], [7, 4, -1])],
    ["a=7,4,-1", arr("int", [3], [7, 4, -1])],
    ['a="1.0 2.0 3.0"', arr("float", [3], [1, 2, 3])],
    // int + float promotes to float, and -0 keeps its sign once the array is float.
    ['a="1 2.0 3"', arr("float", [3], [1, 2, 3])],
    ['a="1.0 2 3"', arr("float", [3], [1, 2, 3])],
    ['a="-0 1 2.5"', arr("float", [3], [-0, 1, 2.5])],
    ['a="1.2 2.2e3 4e1 3.3e-1 2e-2"', arr("float", [5], [1.2, 2200, 40, 0.33, 0.02])],
    ['a="T F True FALSE"', arr("bool", [4], [true, false, true, false])],
    ["a={T F T F}", arr("bool", [4], [true, false, true, false])],
    ['a=" T, F, T "', arr("bool", [3], [true, false, true])],
    // One non-numeric token keeps the whole value a string.
    ['a="1.2 3.4 text"', str("1.2 3.4 text")],
    ['a="1 T"', str("1 T")],
    // Nine numbers under an ordinary key stay a 1-D vector.
    ['a="1 4 7 2 5 8 3 6 9"', arr("int", [9], [1, 4, 7, 2, 5, 8, 3, 6, 9])],
    ['a="17 17 6"', arr("int", [3], [17, 17, 6])],
  ];
  it.each(cases)("%s", (text, expected) => {
    expect(one(text)).toEqual(expected);
  });
});

describe("new-style arrays [..] (libAtoms grammar)", () => {
  const cases: [string, InfoValue][] = [
    ["a=[1, 2, 3]", arr("int", [3], [1, 2, 3])],
    ["a=[1,2,3]", arr("int", [3], [1, 2, 3])],
    ["a=[ 1 , 2 , 3 ]", arr("int", [3], [1, 2, 3])],
    // A one-element new-style array stays an array (ASE 3.22.1 would make it a scalar).
    ["a=[7]", arr("int", [1], [7])],
    ["a=[1, 2, 3.0, +4.0e0]", arr("float", [4], [1, 2, 3, 4])],
    ["a=[T, T, F, T]", arr("bool", [4], [true, true, false, true])],
    ["a=[T, F, True, FALSE]", arr("bool", [4], [true, false, true, false])],
    // Without commas the inside reads like an old-style value, as in ASE.
    ["a=[T F S]", str("T F S")],
    ["a=[1 2 3]", arr("int", [3], [1, 2, 3])],
    // Mixed kinds become a list of strings (a json value).
    ['a=[ "a", "b" ]', json(["a", "b"])],
    ["a=[ a, b ]", json(["a", "b"])],
    ["a=[a,b]", json(["a", "b"])],
    ['a=["a","b"]', json(["a", "b"])],
    ['a=[ a, "b", c ]', json(["a", "b", "c"])],
    ['a=[ "a, b", "c]" ]', json(["a, b", "c]"])],
    ["a=[ T, F, bob ]", json(["T", "F", "bob"])],
    ['a=[ T, F, "bob", TRUE ]', json(["T", "F", "bob", "TRUE"])],
    ["a=[1, 2, abc, d]", json(["1", "2", "abc", "d"])],
    ["a=[T, False, abc, d]", json(["T", "False", "abc", "d"])],
    ['a=[T, False, "abc", d]', json(["T", "False", "abc", "d"])],
    ["a=[T, False, 12, 345]", json(["T", "False", "12", "345"])],
    ['a=["1", "2"]', json(["1", "2"])],
    ["a=[]", arr("float", [0], [])],
  ];
  it.each(cases)("%s", (text, expected) => {
    expect(one(text)).toEqual(expected);
  });
});

describe("2-D arrays [[..],[..]]", () => {
  const cases: [string, InfoValue][] = [
    ["a=[[1, 2, 3]]", arr("int", [1, 3], [1, 2, 3])],
    ["a=[[1, 2], [3, 4]]", arr("int", [2, 2], [1, 2, 3, 4])],
    ["a=[[1.5, 2], [3, 4]]", arr("float", [2, 2], [1.5, 2, 3, 4])],
    ["a=[[1, 2], [3.0, +4.0e0]]", arr("float", [2, 2], [1, 2, 3, 4])],
    ["a=[[T, F], [F, T]]", arr("bool", [2, 2], [true, false, false, true])],
    ["a=[[a, b], [c, d]]", json([["a", "b"], ["c", "d"]])],
    ["a=[[T, F], [a, b]]", json([["T", "F"], ["a", "b"]])],
    ["a=[[1, 2], [a, b]]", json([["1", "2"], ["a", "b"]])],
    ["a=[[T, F], [1, 2], [a, b], [c, d]]", json([["T", "F"], ["1", "2"], ["a", "b"], ["c", "d"]])],
    ["lat=[[1, 2, 3], [4, 5, 6], [7, 8, 9]]", arr("int", [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9])],
  ];
  it.each(cases)("%s", (text, expected) => {
    expect(one(text)).toEqual(expected);
  });
});

describe("_JSON values", () => {
  const cases: [string, InfoValue][] = [
    ['class="_JSON [1.0, 0.0, 0.0]"', arr("float", [3], [1, 0, 0])],
    ['a="_JSON [1, 2]"', arr("int", [2], [1, 2])],
    ['a="_JSON [[1.5, 2, 3], [4, 5, 6]]"', arr("float", [2, 3], [1.5, 2, 3, 4, 5, 6])],
    ['a="_JSON [[1, 2], [3, 4]]"', arr("int", [2, 2], [1, 2, 3, 4])],
    ['a="_JSON [true, false]"', arr("bool", [2], [true, false])],
    ['a="_JSON [NaN, Infinity, -Infinity]"', arr("float", [3], [NaN, Infinity, -Infinity])],
    ['a="_JSON [5]"', arr("int", [1], [5])],
    ['a="_JSON []"', arr("float", [0], [])],
    ['MACE_stress="_JSON [[0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]]"', arr("float", [3, 3], [0.1, 0, 0, 0, 0.1, 0, 0, 0, 0.1])],
    ['d="_JSON {\\"x\\": 1}"', json({ x: 1 })],
    ['d={_JSON {"a" : 1}}', json({ a: 1 })],
    ['d="_JSON {\\"a\\": [1, \\"b\\"], \\"c\\": null}"', json({ a: [1, "b"], c: null })],
    ['a="_JSON [[1, 2], [3]]"', json([[1, 2], [3]])],
    ['a="_JSON [\\"u\\", \\"v\\"]"', json(["u", "v"])],
    ['a="_JSON 3"', int(3)],
    ['a="_JSON 3.0"', float(3)],
    ['a="_JSON \\"123\\""', str("123")],
    ['a="_JSON \\"line\\\\nbreak\\""', str("line\nbreak")],
  ];
  it.each(cases)("%s", (text, expected) => {
    expect(one(text)).toEqual(expected);
  });

  it("keeps a JSON object's keys in order and never touches Object.prototype", () => {
    const v = one('d="_JSON {\\"b\\": 1, \\"__proto__\\": 2, \\"a\\": 3}"');
    expect(v.kind).toBe("json");
    const obj = (v as { value: Record<string, number> }).value;
    expect(Object.keys(obj)).toEqual(["b", "__proto__", "a"]);
    expect(obj["__proto__"]).toBe(2);
    expect(({} as Record<string, unknown>).a).toBeUndefined();
  });
});

describe("stress and virial become 3x3 (row-major data)", () => {
  it("reads 9 values column-major, as ASE does (a non-symmetric case shows the order)", () => {
    expect(one('virial="1 4 7 2 5 8 3 6 9"')).toEqual(arr("int", [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]));
    expect(one('stress="1 4 7 2 5 8 3 6 9"')).toEqual(arr("int", [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]));
  });

  it("reads 6 values as Voigt xx yy zz yz xz xy (ASE 3.22.1 raises here)", () => {
    expect(one('stress="1.0 2 3 4 5 6"')).toEqual(arr("float", [3, 3], [1, 6, 5, 6, 2, 4, 5, 4, 3]));
  });

  it("takes a 3x3 new-style array as rows", () => {
    expect(one("stress=[[1, 2, 3], [4, 5, 6], [7, 8, 9]]")).toEqual(arr("int", [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]));
    expect(one('virial="_JSON [[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]"')).toEqual(arr("float", [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]));
  });

  it("leaves other stress keys as they are", () => {
    expect(one('REF_stress="1 2 3 4 5 6"')).toEqual(arr("int", [6], [1, 2, 3, 4, 5, 6]));
  });

  it("stressVoigt reads 6, 9 (column-major) and 3x3 the same way", () => {
    const voigt = [1, 2, 3, 4, 5, 6];
    expect(stressVoigt(arr("float", [6], voigt))).toEqual(voigt);
    // The full tensor [[1,6,5],[6,2,4],[5,4,3]] in column-major order.
    expect(stressVoigt(arr("float", [9], [1, 6, 5, 6, 2, 4, 5, 4, 3]))).toEqual(voigt);
    expect(stressVoigt(arr("float", [3, 3], [1, 6, 5, 6, 2, 4, 5, 4, 3]))).toEqual(voigt);
    // A non-symmetric 9-vector: yz is element (1,2), at index 1 + 3*2 = 7 column-major.
    expect(stressVoigt(arr("int", [9], [11, 21, 31, 12, 22, 32, 13, 23, 33]))).toEqual([11, 22, 33, 23, 13, 12]);
    expect(stressVoigt(arr("int", [3, 3], [11, 12, 13, 21, 22, 23, 31, 32, 33]))).toEqual([11, 22, 33, 23, 13, 12]);
    expect(stressVoigt(arr("float", [5], [1, 2, 3, 4, 5]))).toBeUndefined();
    expect(stressVoigt(str("1 2 3"))).toBeUndefined();
  });

  it("rejects a stress that is not 6 or 9 numbers", () => {
    expect(() => parseKeyValues('stress="1 2 3"')).toThrow("stress: expected 6 (Voigt) or 9 numbers or a 3x3 array, found int array of shape [3]");
  });
});

describe("malformed comment lines (libAtoms should-fail cases that ASE also rejects)", () => {
  const cases: [string, string][] = [
    ['a="abc', 'unterminated "..." starting at column 3'],
    ["a=\"abc'", 'unterminated "..." starting at column 3'],
    ['a="abc\\"def', 'unterminated "..." starting at column 3'],
    ["a=abc'def", "unterminated '...' starting at column 6"],
    ["a=abc{def", "unterminated {...} starting at column 6"],
    ["a=[1, 2", "unterminated [ starting at column 3"],
    ["a=[1,,2]", "an array has two commas in a row"],
    ["a=[1, 2,]", "an array ends with a comma"],
    ["a=[,1]", "an array starts with a comma"],
    ["a=[1, 2]x", "unexpected x after the array of a"],
    ["a=[a=b]", "unexpected = inside an array item"],
    ["a=[[1, 2], 3]", "a 2-D array mixes rows and single values"],
    ["a=[[1, 2], [3]]", "the rows of a 2-D array must be non-empty and of equal length"],
    ["a=[[[1]]]", "arrays deeper than 2-D are not supported"],
    ["=5", '"=" without a key at column 1'],
    ['""=5', "empty key at column 3"],
    ["a=b\\", "line ends in a backslash"],
    ['a="_JSON [1,"', "_JSON: unexpected end of value"],
    ['a="_JSON {1: 2}"', "_JSON: expected a string key"],
  ];
  it.each(cases)("%s", (text, message) => {
    let error: unknown;
    try {
      parseKeyValues(text, "f.xyz", 2);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(`f.xyz:2: ${message}`);
  });

  it("accepts the ASE-tolerated near-misses: abc,def and abc]def and abc}def stay strings", () => {
    expect(one("a=abc,def")).toEqual(str("abc,def"));
    expect(one("a=abc]def")).toEqual(str("abc]def"));
    expect(one("a=abc}def")).toEqual(str("abc}def"));
    expect(one("a=abc\\def")).toEqual(str("abcdef"));
  });
});

describe("a comment line mixing everything (the facts of ASE's complex key/value test)", () => {
  it("types every value", () => {
    const line = [
      " word=plain",
      'spaced="two words"',
      'escaped="say \\"hi\\""',
      "flag",
      "off = F",
      "count=22",
      "ratio=1.1",
      "ints={1 2 3}",
      'reals="3.3 4.4"',
      'virial="1 4 7 2 5 8 3 6 9"',
      'nine="1 4 7 2 5 8 3 6 9"',
      "big=1.2e7",
      'mixed="1.2 3.4 text"',
      'bools_commas=" T, F, T "',
      "not_bools=[T F S]",
      "special=a_to_Z_$%^&*",
      "2body=33.3",
      "hyphen-ated",
      'commas="7, 4, -1"',
      "new_bools=[T, T, F, T]",
      "Properties=species:S:1:pos:R:3",
      "many_spaces       ",
      "eq=abc=xyz",
      '"key with space"="a value"',
      'looks_like_array="[[1, 2, 3], [4, 5, 6]]"',
      'json_floats="_JSON [[1.5, 2, 3], [4, 5, 6]]"',
      "json_dict={_JSON {\"a\" : 1}}",
      "trailing",
    ].join(" ");
    const kv = parseKeyValues(line);
    expect(Object.fromEntries(kv)).toEqual({
      word: str("plain"),
      spaced: str("two words"),
      escaped: str('say "hi"'),
      flag: bool(true),
      off: bool(false),
      count: int(22),
      ratio: float(1.1),
      ints: arr("int", [3], [1, 2, 3]),
      reals: arr("float", [2], [3.3, 4.4]),
      virial: arr("int", [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]),
      nine: arr("int", [9], [1, 4, 7, 2, 5, 8, 3, 6, 9]),
      big: float(1.2e7),
      mixed: str("1.2 3.4 text"),
      bools_commas: arr("bool", [3], [true, false, true]),
      not_bools: str("T F S"),
      special: str("a_to_Z_$%^&*"),
      "2body": float(33.3),
      "hyphen-ated": bool(true),
      commas: arr("int", [3], [7, 4, -1]),
      new_bools: arr("bool", [4], [true, true, false, true]),
      Properties: str("species:S:1:pos:R:3"),
      many_spaces: bool(true),
      eq: str("abc=xyz"),
      "key with space": str("a value"),
      looks_like_array: str("[[1, 2, 3], [4, 5, 6]]"),
      json_floats: arr("float", [2, 3], [1.5, 2, 3, 4, 5, 6]),
      json_dict: json({ a: 1 }),
      trailing: bool(true),
    });
    expect([...kv.keys()][0]).toBe("word");
    expect([...kv.keys()].at(-1)).toBe("trailing");
  });
});

describe("parseProperties", () => {
  it("splits name:type:count triples", () => {
    expect(parseProperties("species:S:1:pos:R:3:move_mask:L:1:tags:I:1")).toEqual([
      { name: "species", type: "S", ncols: 1 },
      { name: "pos", type: "R", ncols: 3 },
      { name: "move_mask", type: "L", ncols: 1 },
      { name: "tags", type: "I", ncols: 1 },
    ]);
  });

  const bad: [string, string][] = [
    ["species", "1 fields is not a multiple of 3"],
    ["species:S", "2 fields is not a multiple of 3"],
    ["species:S:", "bad count \"\" for species"],
    ["pos:R:3:species", "4 fields is not a multiple of 3"],
    ["species:S:1:pos:X:3", 'unknown type "X" for pos'],
    ["species:S:1:pos:R:0", 'bad count "0" for pos'],
    ["species:S:1:pos:R:three", 'bad count "three" for pos'],
    ["species:S:1:pos:R:3:pos:R:3", "pos appears twice"],
    ["species:S:1::R:3", 'bad name ""'],
  ];
  it.each(bad)("rejects %s", (spec, why) => {
    expect(() => parseProperties(spec)).toThrow(`bad Properties "${spec}": ${why} (expected name:type:count triples, type S, I, R or L, count >= 1)`);
  });
});
