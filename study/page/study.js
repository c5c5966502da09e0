// The rating page of an A/B study (served by the study's own server, tools/study.py serve; the server side is
// study/server.py over study/store.py). Every click is sent at once and stored on the server, so a closed tab loses
// nothing: reopening asks the server for this rater's votes and continues at the first unfinished pair. Raters never
// see a close control: the organiser opens ?study=ID&organiser and gives the organiser secret. The logic is in
// study_logic.js (tested in node); this file is the DOM.
import {
  CHOICES, apiPath, cleanRater, clipPath, errorText, isFinished, isOrganiserPage, progressText, resumeIndex, withVote,
} from "./study_logic.js";

const $ = (id) => document.getElementById(id);
const STUDY = new URLSearchParams(location.search).get("study");
const ORGANISER = isOrganiserPage(location.search);
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
  show("rating");
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
    return show("done");
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
    return show("done");
  }
  index += 1;
  render();
});

$("organiser").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await call(apiPath(STUDY, "close"), { organiser: $("secret").value.trim() });
    $("secret").value = "";
    showError(null);
    await showClosed();
  } catch (e) {
    showError(e.message);
  }
});

async function organiserPage() {
  const study = (await call("api/studies")).find((s) => s.id === STUDY);
  if (!study) throw new Error(`no study ${STUDY} on this server`);
  if (study.error) throw new Error(`study ${STUDY} cannot be opened: ${study.error}`);
  $("progressText").textContent = `${study.pairs} pairs, ${study.raters} rater(s)`;
  if (study.closed) return showClosed();
  show("organiser");
  $("secret").focus();
}

async function main() {
  if (!STUDY) return listStudies();
  $("studyName").textContent = `study ${STUDY}`;
  if (ORGANISER) return organiserPage();
  const saved = localStorage.getItem(RATER_KEY);
  if (saved) return start(saved);
  show("login");
  $("rater").focus();
}

main().catch((e) => showError(e.message));
