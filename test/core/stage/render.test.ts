import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { stableJson } from "../../../src/core/json.js";
import { renderCommitteeScript, renderRunScript, shellQuote } from "../../../src/core/stage/render.js";

describe("shellQuote", () => {
  it("gives bash back every word unchanged", () => {
    const words = ["--lr=0.0001", "--atomic_numbers=[1, 8]", "it's", "$HOME", "`id`", "a\\b", "*", "", "--x='y'", "tab\there", "ü"];
    const script = `printf '%s\\n' ${words.map(shellQuote).join(" ")}`;
    const out = execFileSync("bash", ["-c", script], { encoding: "utf8" });
    expect(out).toBe(words.map((w) => `${w}\n`).join(""));
  });

  it("leaves plain flags bare and quotes glob characters", () => {
    expect(shellQuote("--E0s=assets/E0s.json")).toBe("--E0s=assets/E0s.json");
    expect(shellQuote("[1]")).toBe("'[1]'");
  });
});

describe("stableJson", () => {
  it("sorts keys at every level, keeps array order and ends with a newline", () => {
    expect(stableJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{\n  "a": {\n    "c": null,\n    "d": [\n      3,\n      {\n        "y": 2,\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}\n',
    );
  });
});

describe("run scripts", () => {
  it("pass bash's syntax check, for a stage and for a committee", () => {
    const stage = renderRunScript({ kind: "eval", inputs: ["data/test.extxyz", "models/x y.model"], outputDirs: ["predictions"], commands: [["a", "--b=c d"], ["e"]] });
    execFileSync("bash", ["-n"], { input: stage });
    execFileSync("bash", ["-n"], { input: renderCommitteeScript(["member-0", "member-1"]) });
    expect(stage).toContain("mkdir -p logs predictions\n");
    expect(stage).toContain("  'models/x y.model'\n");
    expect(stage).toContain(`commands_json='[["a","--b=c d"],["e"]]'`);
    expect(stage).toContain('check_command 1 "$code"');
  });
});
