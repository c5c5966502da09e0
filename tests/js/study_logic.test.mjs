import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CHOICES, apiPath, cleanRater, clipPath, errorText, finishedCount, isFinished, isOrganiserPage, progressText,
  resumeIndex, withVote,
} from "../../study/page/study_logic.js";

const CRITERIA = ["relevance", "distortion"];
const session = (votes) => ({ criteria: CRITERIA, pairs: votes.map((v, i) => ({ pair: `p00${i}`, votes: v })) });

test("a pair is finished when every criterion has an answer", () => {
  assert.equal(isFinished({ votes: { relevance: "left", distortion: "tie" } }, CRITERIA), true);
  assert.equal(isFinished({ votes: { relevance: "left" } }, CRITERIA), false);
  assert.equal(isFinished({ votes: {} }, CRITERIA), false);
});

test("resume starts at the first unfinished pair, or the last when all are done", () => {
  const full = { relevance: "left", distortion: "right" };
  assert.equal(resumeIndex(session([full, { relevance: "tie" }, {}])), 1);
  assert.equal(resumeIndex(session([{}, full])), 0);
  assert.equal(resumeIndex(session([full, full])), 1);
  assert.equal(finishedCount(session([full, { relevance: "tie" }, full])), 2);
});

test("progress says k of N, and thanks at the end", () => {
  const full = { relevance: "left", distortion: "right" };
  assert.equal(progressText(session([full, {}, {}])), "1 of 3 pairs rated");
  assert.equal(progressText(session([full, full])), "all 2 pairs rated, thank you");
});

test("a vote replaces the earlier answer on the same criterion, without touching the old session", () => {
  const before = session([{ relevance: "left" }, {}]);
  const after = withVote(before, "p000", "relevance", "right");
  assert.deepEqual(after.pairs[0].votes, { relevance: "right" });
  assert.deepEqual(before.pairs[0].votes, { relevance: "left" });
  assert.deepEqual(withVote(after, "p001", "distortion", "tie").pairs[1].votes, { distortion: "tie" });
});

test("the page's choices are left, indistinguishable and right only: it never sees A or B", () => {
  assert.deepEqual(CHOICES.map(([c]) => c), ["left", "tie", "right"]);
});

test("paths are relative to the page and escaped", () => {
  assert.equal(apiPath("my study", "session", { rater: "a b&c" }), "api/my%20study/session?rater=a+b%26c");
  assert.equal(apiPath("s1", "vote"), "api/s1/vote");
  assert.equal(clipPath("s1", "abc"), "clip/s1/abc");
});

test("server refusals and rater names", () => {
  assert.equal(errorText(400, { error: "unknown pair 'x'" }), "unknown pair 'x'");
  assert.equal(errorText(502, null), "the server answered 502");
  assert.equal(cleanRater("  ann "), "ann");
  assert.equal(cleanRater("   "), null);
  assert.equal(cleanRater("x".repeat(65)), null);
});

test("only the organiser's link opens the close form", () => {
  assert.equal(isOrganiserPage("?study=s1"), false);
  assert.equal(isOrganiserPage("?study=s1&organiser"), true);
  assert.equal(isOrganiserPage("?organiser=1&study=s1"), true);
  assert.equal(isOrganiserPage(""), false);
});
