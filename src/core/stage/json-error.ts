/**
 * Where JSON text first goes wrong, for error messages: V8's JSON.parse messages carry no position for several
 * errors (e.g. `Unexpected token ','`), so this small recursive-descent scan finds the offending offset.
 */
import { InputError } from "../errors.js";

/** JSON.parse with a one-line InputError naming the file and line; `hint` says what the file should be. */
export function parseJsonFile(text: string, file: string, hint: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const found = findJsonSyntaxError(text);
    throw new InputError(file, found?.line, `not valid JSON: ${found?.message ?? (err as Error).message} (${hint})`);
  }
}

export interface JsonSyntaxError {
  /** 1-based line of the first offending character (or of the end of the text). */
  line: number;
  message: string;
}

export function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  let i = 0;
  const fail = (message: string): never => {
    throw { offset: i, message };
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const expectChar = (c: string) => {
    if (text[i] !== c) fail(i >= text.length ? `expected '${c}' before the end` : `expected '${c}', found '${text[i]}'`);
    i++;
  };
  const string = () => {
    expectChar('"');
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") {
        i++;
        if (text[i] === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail("bad \\u escape");
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? "")) fail("bad escape in a string");
      } else if (text.charCodeAt(i) < 0x20) fail("unescaped control character in a string");
      i++;
    }
    expectChar('"');
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a double-quoted key, found ${i >= text.length ? "the end" : `'${text[i]}'`}`);
        string();
        ws();
        expectChar(":");
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        return expectChar("}");
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        return expectChar("]");
      }
    }
    if (c === '"') return string();
    const literal = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i));
    if (!literal) fail(i >= text.length ? "unexpected end of text" : `unexpected '${c}'`);
    i += literal![0].length;
  };
  try {
    value();
    ws();
    if (i < text.length) fail(`unexpected '${text[i]}' after the value`);
    return undefined;
  } catch (err) {
    const { offset, message } = err as { offset: number; message: string };
    return { line: text.slice(0, offset).split("\n").length, message };
  }
}
