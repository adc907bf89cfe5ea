import { describe, expect, it } from "vitest";
import { findJsonSyntaxError } from "../../../src/core/stage/json-error.js";

describe("findJsonSyntaxError", () => {
  it.each([
    ['{\n  "a": 1,\n}', 3, "expected a double-quoted key, found '}'"],
    ['{\n  a: 1\n}', 2, "expected a double-quoted key, found 'a'"],
    ['{"a": [1, 2\n', 2, "expected ']' before the end"],
    ['{"a": tru}', 1, "unexpected 't'"],
    ['{"a": 1}\n{', 2, "unexpected '{' after the value"],
    ['{"a": "x\ny"}', 1, "unescaped control character in a string"],
  ])("finds the error in %j on line %i", (text, line, message) => {
    expect(() => JSON.parse(text)).toThrow();
    expect(findJsonSyntaxError(text)).toEqual({ line, message });
  });

  it("finds nothing in valid JSON", () => {
    const text = '{"a": [1, -2.5e3, true, null, "\\u00e9\\n"], "b": {}}';
    expect(JSON.parse(text)).toBeTruthy();
    expect(findJsonSyntaxError(text)).toBeUndefined();
  });
});
