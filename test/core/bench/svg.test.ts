import { describe, expect, it } from "vitest";
import { curveSvg, logTicks, niceTicks, paritySvg } from "../../../src/core/bench/svg.js";
import { checkWellFormedXml } from "./xml-check.js";

describe("niceTicks / logTicks", () => {
  it("snaps the range to 1-2-5 steps", () => {
    expect(niceTicks(-0.13, 0.42, 6)).toMatchObject({ lo: -0.2, hi: 0.5, labels: ["-0.2", "-0.1", "0.0", "0.1", "0.2", "0.3", "0.4", "0.5"] });
    expect(niceTicks(-120, -0.5, 6).labels).toEqual(["-120", "-100", "-80", "-60", "-40", "-20", "0"]);
    expect(niceTicks(3, 3).lo).toBeLessThan(3);
  });

  it("puts decade ticks on log axes", () => {
    expect(logTicks(9.6, 5323.5).labels).toEqual(["1", "10", "100", "1000", "10000"]);
    expect(logTicks(0.5, 20).labels).toEqual(["0.1", "1", "10", "100"]);
    expect(logTicks(0.2, 8).labels).toEqual(["0.1", "0.2", "0.5", "1", "2", "5", "10"]);
  });
});

/** A deterministic pseudo-random sequence (no Math.random in tests of deterministic output). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe("paritySvg", () => {
  it("draws one translucent circle per point, coloured by group, with a legend and a y = x line", () => {
    const svg = paritySvg({
      title: "Energy per atom: RMSE 1.00",
      subtitle: "3 frames",
      xLabel: "reference",
      yLabel: "predicted",
      x: [0, 1, 2],
      y: [0.1, 0.9, 2.2],
      group: [0, 1, 1],
      groupNames: ["bulk & <surface>", "Default", "no points"],
    });
    const elements = checkWellFormedXml(svg);
    expect(elements[0]).toBe("svg");
    expect(elements.filter((e) => e === "circle")).toHaveLength(3 + 2);
    expect(svg).toContain("bulk &amp; &lt;surface&gt;");
    expect(svg).not.toContain("no points");
    expect(svg).toContain('fill-opacity="0.55"');
    expect(svg).toMatch(/stroke-dasharray="5,4"/);
    expect(svg).toContain(">Energy per atom: RMSE 1.00</text>");
  });

  it("bins many points into a 2-D histogram and stays small", () => {
    const next = lcg(7);
    const n = 200_000;
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = (next() - 0.5) * 20;
      y[i] = x[i] + (next() - 0.5) * 2;
    }
    const svg = paritySvg({ title: "Forces", subtitle: "", xLabel: "x", yLabel: "y", x, y });
    const elements = checkWellFormedXml(svg);
    expect(elements.filter((e) => e === "circle")).toHaveLength(0);
    expect(elements.filter((e) => e === "path").length).toBeGreaterThan(1);
    expect(Buffer.byteLength(svg)).toBeLessThan(500_000);
  });

  it("keeps the worst case (points everywhere) under 500 KB", () => {
    const next = lcg(11);
    const n = 100_000;
    const x = Float64Array.from({ length: n }, () => next());
    const y = Float64Array.from({ length: n }, () => next());
    expect(Buffer.byteLength(paritySvg({ title: "t", subtitle: "", xLabel: "x", yLabel: "y", x, y }))).toBeLessThan(500_000);
  });

  it("is deterministic", () => {
    const p = { title: "t", subtitle: "s", xLabel: "x", yLabel: "y", x: [1, 2, 3], y: [1, 2.5, 2.9] };
    expect(paritySvg(p)).toBe(paritySvg(p));
  });
});

describe("curveSvg", () => {
  it("draws a polyline per series per panel, a log axis for a wide range and the SWA marker", () => {
    const svg = curveSvg({
      title: "curve",
      subtitle: "sub",
      xLabel: "epoch",
      panels: [
        { title: "E", yLabel: "RMSE E", series: [{ name: "run", points: [{ x: 0, y: 5000 }, { x: 2, y: 100 }, { x: 4, y: 10 }] }] },
        { title: "F", yLabel: "RMSE F", series: [{ name: "run", points: [{ x: 0, y: 300 }, { x: 2, y: 250 }, { x: 4, y: 200 }] }] },
      ],
      markers: [{ x: 3, label: "SWA starts" }],
    });
    const elements = checkWellFormedXml(svg);
    expect(elements.filter((e) => e === "polyline")).toHaveLength(2);
    expect(svg).toContain("RMSE E (log scale)");
    expect(svg).not.toContain("RMSE F (log scale)");
    expect(svg.match(/SWA starts/g)).toHaveLength(2);
  });
});
