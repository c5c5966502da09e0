// Pure logic of the rating page (tested with node --test in tests/js/study_logic.test.mjs); study.js is the DOM.
// The page only knows "left", "right" and "tie": which configuration is on which side stays on the server.

export const CHOICES = [
  ["left", "Left"],
  ["tie", "Indistinguishable"],
  ["right", "Right"],
];

// A pair is finished when every criterion has an answer.
export function isFinished(pair, criteria) {
  return criteria.every((c) => pair.votes[c] !== undefined);
}

export function finishedCount(session) {
  return session.pairs.filter((p) => isFinished(p, session.criteria)).length;
}

// Where a (re)opened page starts: the first pair in the rater's order not finished yet; the last pair when all are.
export function resumeIndex(session) {
  const i = session.pairs.findIndex((p) => !isFinished(p, session.criteria));
  return i === -1 ? session.pairs.length - 1 : i;
}

export function progressText(session) {
  const done = finishedCount(session);
  const total = session.pairs.length;
  return done === total ? `all ${total} pairs rated, thank you` : `${done} of ${total} pairs rated`;
}

// A vote the server accepted, applied to the local copy of the session (a new object; the old one is unchanged).
export function withVote(session, pairId, criterion, choice) {
  return {
    ...session,
    pairs: session.pairs.map((p) => (p.pair === pairId ? { ...p, votes: { ...p.votes, [criterion]: choice } } : p)),
  };
}

// Paths relative to the page (the study server serves it at its root).
export function apiPath(study, what, query) {
  const q = query ? `?${new URLSearchParams(query)}` : "";
  return `api/${encodeURIComponent(study)}/${what}${q}`;
}

export function clipPath(study, token) {
  return `clip/${encodeURIComponent(study)}/${encodeURIComponent(token)}`;
}

// The server's refusal ({"error": ...}) as one line for the page.
export function errorText(status, body) {
  const message = body && typeof body.error === "string" ? body.error : `the server answered ${status}`;
  return message;
}

// The organiser's view of a study (the close form) is ?study=ID&organiser; raters' links do not have it.
export function isOrganiserPage(search) {
  return new URLSearchParams(search).has("organiser");
}

export function cleanRater(name) {
  const trimmed = (name ?? "").trim();
  return trimmed.length > 0 && trimmed.length <= 64 ? trimmed : null;
}
