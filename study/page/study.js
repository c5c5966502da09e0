// The rating page of an A/B study (served by the pack at /adlightning/study/ on ComfyUI's own server; the server
// side is nodes/study_route.py over study/store.py). Every click is sent at once and stored on the server, so a
// closed tab loses nothing: reopening asks the server for this rater's votes and continues at the first unfinished
// pair. The logic is in study_logic.js (tested in node); this file is the DOM.
import {
  CHOICES, apiPath, cleanRater, clipPath, errorText, isFinished, progressText, resumeIndex, withVote,
} from "./study_logic.js";

const $ = (id) => document.getElementById(id);
const STUDY = new URLSearchParams(location.search).get("study");
const RATER_KEY = `adl-study-rater:${STUDY}`;
let session = null;
let index = 0;

async function call(path, body) {
  const r = await fetch(path, body === undefined ? { cache: "no-store" } : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new Error(errorText(r.status, data));
  return data;
}

function showError(text) {
  $("error").hidden = !text;
  $("error").textContent = text ?? "";
}

function show(...ids) {
  for (const id of ["list", "login", "rating", "done", "organiser", "closed"]) $(id).hidden = !ids.includes(id);
}

async function listStudies() {
  show("list");
  const studies = await call("api/studies");
  $("studies").replaceChildren(...studies.map((s) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `?study=${encodeURIComponent(s.id)}`;
    a.textContent = s.id;
    li.append(a, s.error ? ` — cannot be opened: ${s.error}`
      : ` — ${s.pairs} pairs, ${s.raters} rater(s)${s.closed ? ", closed" : ""}`);
    return li;
  }));
}

function setProgress() {
  const done = session.pairs.filter((p) => isFinished(p, session.criteria)).length;
  $("progress").value = done / session.pairs.length;
  $("progressText").textContent = progressText(session);
}

function renderCriteria(pair) {
  $("criteria").replaceChildren(...session.criteria.map((criterion) => {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = criterion;
    row.append(name);
    for (const [choice, label] of CHOICES) {
      const cell = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.dataset.criterion = criterion;
      button.dataset.choice = choice;
      button.setAttribute("aria-pressed", String(pair.votes[criterion] === choice));
      button.addEventListener("click", () => vote(pair.pair, criterion, choice));
      cell.append(button);
      row.append(cell);
    }
    return row;
  }));
}

function setClip(video, token) {
  const src = new URL(clipPath(STUDY, token), location.href).href;
  if (video.src !== src) video.src = src;
}

function render() {
  const pair = session.pairs[index];
  show("rating", "organiser");
  $("prompt").textContent = pair.prompt;
  setClip($("left"), pair.left);
  setClip($("right"), pair.right);
  renderCriteria(pair);
  $("pairLabel").textContent = `pair ${index + 1} of ${session.pairs.length}`;
  $("prev").disabled = index === 0;
  $("next").disabled = !isFinished(pair, session.criteria);
  $("next").textContent = index === session.pairs.length - 1 ? "Finish" : "Next pair";
  setProgress();
}

async function vote(pairId, criterion, choice) {
  try {
    await call(apiPath(STUDY, "vote"), { rater: session.rater, pair: pairId, criterion, choice });
    showError(null);
    session = withVote(session, pairId, criterion, choice);
    render();
  } catch (e) {
    showError(`your vote was not stored: ${e.message}`);
  }
}

async function showClosed() {
  show("closed");
  $("progressText").textContent = "closed";
  const configs = await call(apiPath(STUDY, "configs"));
  $("configs").textContent = `A: ${configs.A.name} · B: ${configs.B.name}`;
  $("chart").src = apiPath(STUDY, "report.svg");
  $("reportMd").href = apiPath(STUDY, "report.md");
  $("reportJson").href = apiPath(STUDY, "report.json");
  $("reportSvg").href = apiPath(STUDY, "report.svg");
}

async function start(rater) {
  session = await call(apiPath(STUDY, "session", { rater }));
  localStorage.setItem(RATER_KEY, session.rater);
  if (session.closed) return showClosed();
  index = resumeIndex(session);
  if (session.pairs.every((p) => isFinished(p, session.criteria))) {
    setProgress();
    return show("done", "organiser");
  }
  render();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const rater = cleanRater($("rater").value);
  if (!rater) return showError("give your name (1-64 characters)");
  start(rater).then(() => showError(null), (e) => showError(e.message));
});

$("prev").addEventListener("click", () => { index = Math.max(0, index - 1); render(); });
$("next").addEventListener("click", () => {
  if (index === session.pairs.length - 1) {
    setProgress();
    return show("done", "organiser");
  }
  index += 1;
  render();
});

$("close").addEventListener("click", async () => {
  try {
    await call(apiPath(STUDY, "close"), { confirm: $("confirm").value.trim() });
    showError(null);
    await showClosed();
  } catch (e) {
    showError(e.message);
  }
});

async function main() {
  if (!STUDY) return listStudies();
  $("studyName").textContent = `study ${STUDY}`;
  const saved = localStorage.getItem(RATER_KEY);
  if (saved) return start(saved);
  show("login");
  $("rater").focus();
}

main().catch((e) => showError(e.message));
