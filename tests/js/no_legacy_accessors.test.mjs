import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";

// The extension reads links through graph.getLink and the nodes' accessors (js/adlightning.js says why); the legacy
// fields newer frontends move away from stay out of every shipped script. Comments are not code: stripped first.
const root = new URL("../../js/", import.meta.url);
const files = ["adlightning.js", ...readdirSync(new URL("lib/", root)).map((f) => `lib/${f}`)].filter((f) => f.endsWith(".js"));
const LEGACY = [
  [/\.link\b(?!s)/, "input.link (use node.getInputNode/getInputLink or graph.getLink)"],
  [/\._nodes\b/, "graph._nodes (use graph.nodes)"],
  [/\.links\s*(\?\.)?\[/, "graph.links[id] (use graph.getLink(id))"],
];

const code = (text) => text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");

for (const file of files) {
  test(`${file} uses no legacy graph accessors`, () => {
    const source = code(readFileSync(new URL(file, root), "utf8"));
    for (const [pattern, what] of LEGACY) assert.doesNotMatch(source, pattern, `${file}: ${what}`);
  });
}

test("the check catches what it is meant to catch", () => {
  assert.match("if (input.link == null)", LEGACY[0][0]);
  assert.doesNotMatch("output.links ?? []", LEGACY[0][0]);
  assert.match("graph._nodes ?? []", LEGACY[1][0]);
  assert.match("graph.links?.[id]", LEGACY[2][0]);
  assert.doesNotMatch("for (const id of output.links ?? [])", LEGACY[2][0]);
});
