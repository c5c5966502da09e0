// The prompt-to-clip page (served by the pack at /adlightning/app/ on ComfyUI's own server). It only uses ComfyUI's
// public API: /object_info for the files, the shipped API workflows (served from workflows/api/ by the pack's route),
// POST /prompt with this tab's own client_id, /ws for progress, /history and /view for the clip. The logic is in
// app_logic.js (tested in node); this file is the DOM.
import {
  LOADERS, atTime, buildPrompt, clipsOf, defaultFile, describeRejection, filesOnServer, historyError, nextProgress,
  parseSize, progressText, startProgress, viewQuery, workflowsFor,
} from "./app_logic.js";

const API = new URL("../../", location.href); // ComfyUI's root, wherever the server is mounted
// One per tab: ComfyUI sends a prompt's progress to the client that queued it only. (getRandomValues, not
// randomUUID: the page may be opened over plain http from another machine, which is not a secure context.)
const CLIENT_ID = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
const $ = (id) => document.getElementById(id);
const graphs = {};
let job = null;
let backlog = null; // messages that came while POST /prompt was in flight

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`GET ${url} answered ${r.status}`);
  return r.json();
}

async function graph(name) {
  graphs[name] ??= await getJSON(`workflows/${name}.json`);
  return graphs[name];
}

function fill(select, files, preferred, keepFirst = false) {
  const keep = keepFirst ? [...select.options].slice(0, 1) : [];
  select.replaceChildren(...keep, ...files.map((f) => new Option(f, f)));
  if (preferred !== undefined) select.value = defaultFile(files, preferred);
}

async function loadChoices() {
  const info = {};
  for (const [type] of Object.values(LOADERS)) Object.assign(info, await getJSON(new URL(`object_info/${type}`, API)));
  const files = filesOnServer(info);
  const plain = await graph("t2v_lightning");
  const named = (type, input) => Object.values(plain).find((n) => n.class_type === type)?.inputs[input];
  fill($("checkpoint"), files.checkpoint, named(...LOADERS.checkpoint));
  fill($("motionModule"), files.motionModule, named(...LOADERS.motionModule));
  fill($("lora"), files.lora, undefined, true);
}

function showError(text) {
  $("error").hidden = !text;
  $("error").textContent = text ?? "";
}

function showProgress(s) {
  $("progress").value = s.fraction;
  $("label").textContent = progressText(atTime(s, Date.now()));
}

// The clock runs between ComfyUI's messages too (a CPU step can take a minute).
setInterval(() => { if (job && job.state.phase === "running") showProgress(job.state); }, 1000);

function clipElement(clip, small) {
  const url = new URL(`view?${viewQuery(clip)}`, API).href;
  const el = document.createElement(clip.video ? "video" : "img");
  el.src = url;
  if (clip.video) Object.assign(el, { autoplay: true, loop: true, muted: true, playsInline: true, controls: !small });
  el.title = clip.filename;
  return el;
}

function play(clip) {
  $("player").replaceChildren(clipElement(clip, false));
}

function addToStrip(clip, prompt) {
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  caption.textContent = prompt;
  figure.title = `${prompt}\n${clip.filename}`;
  figure.append(clipElement(clip, true), caption);
  figure.addEventListener("click", () => play(clip));
  $("strip").prepend(figure);
}

function finish(text) {
  job = null;
  $("generate").disabled = false;
  if (text) {
    showError(text);
    $("label").textContent = "failed";
  }
}

async function complete(current) {
  // `executing` with node null comes after ComfyUI has written the history; wait for the entry all the same.
  let entry;
  for (let pause = 50; !(entry = (await getJSON(new URL(`history/${current.promptId}`, API)))[current.promptId]);
    pause = Math.min(pause * 2, 1000)) await new Promise((r) => setTimeout(r, pause));
  const failed = historyError(current.api, entry);
  const clips = clipsOf(entry);
  if (failed || !clips.length) return finish(failed ?? "the prompt finished but saved no clip");
  play(clips[0]);
  for (const clip of clips) addToStrip(clip, current.prompt);
  showProgress({ fraction: 1, label: `done: ${clips[0].filename}` });
  finish();
}

function apply(message) {
  const before = job.state;
  job.state = nextProgress(before, message, Date.now());
  if (job.state === before) return;
  showProgress(job.state);
  if (job.state.phase === "error") finish(job.state.error);
  else if (job.state.phase === "complete") done(job);
}

function done(current) {
  current.state = { ...current.state, phase: "complete" }; // later messages and polls change nothing
  complete({ ...current.state, prompt: current.prompt }).catch((e) => finish(String(e.message ?? e)));
}

function onMessage(event) {
  if (typeof event.data !== "string") return; // binary frames are latent previews
  const message = JSON.parse(event.data);
  if (backlog) backlog.push(message); // our prompt may start before POST /prompt has answered
  else if (job) apply(message);
}

// If the websocket dropped the last message, the history still says when the prompt is done.
setInterval(async () => {
  const current = job;
  if (!current || current.state.phase === "complete" || current.state.phase === "error") return;
  const entry = (await getJSON(new URL(`history/${current.state.promptId}`, API)).catch(() => ({})));
  if (entry[current.state.promptId] && job === current && current.state.phase !== "complete") done(current);
}, 5000);

function connect() {
  const ws = new WebSocket(new URL(`ws?clientId=${CLIENT_ID}`, API.href.replace(/^http/, "ws")));
  ws.addEventListener("open", () => {
    if (!job) $("label").textContent = "ready";
  });
  ws.addEventListener("message", onMessage);
  ws.addEventListener("close", () => {
    $("label").textContent = "connection to ComfyUI lost; reconnecting…";
    setTimeout(connect, 1000);
  });
}

function choices() {
  if ($("randomSeed").checked) $("seed").value = Math.floor(Math.random() * 2 ** 32);
  const size = parseSize($("size").value);
  return { prompt: $("prompt").value, seed: Number($("seed").value), frames: Number($("frames").value), ...size,
    checkpoint: $("checkpoint").value, motionModule: $("motionModule").value, lora: $("lora").value,
    upscale: $("upscale").checked };
}

async function generate(event) {
  event.preventDefault();
  if (job) return;
  showError(null);
  $("generate").disabled = true;
  try {
    const chosen = choices();
    for (const name of workflowsFor(chosen)) await graph(name);
    const { api } = buildPrompt(graphs, chosen);
    backlog = [];
    const r = await fetch(new URL("prompt", API), { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: api, client_id: CLIENT_ID }) });
    const answer = await r.json().catch(() => ({ error: { message: `HTTP ${r.status}` } }));
    if (!r.ok || Object.keys(answer.node_errors ?? {}).length) return finish(describeRejection(api, answer));
    job = { prompt: chosen.prompt, state: startProgress(api, answer.prompt_id, Date.now()) };
    showProgress(job.state);
    for (const message of backlog.splice(0)) if (job) apply(message);
  } catch (e) {
    finish(e.message ?? String(e));
  } finally {
    backlog = null;
  }
}

$("form").addEventListener("submit", generate);
connect();
loadChoices().then(() => { $("generate").disabled = false; }, (e) => showError(`cannot read the files ComfyUI has: ${e.message}`));
