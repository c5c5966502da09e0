// The prompt-to-clip page (served by the pack at /adlightning/app/ on ComfyUI's own server). It only uses ComfyUI's
// public API: /object_info for the files, the shipped API workflows (served from workflows/api/ by the pack's route),
// POST /prompt with this tab's own client_id, /ws for progress, /history and /view for the clip. The logic is in
// app_logic.js (tested in node); this file is the DOM. Stream mode queues chunk after chunk, each continuing the last
// (app_logic.js streamChunk), and plays each as soon as it is saved, back to back.
import {
  LOADERS, STREAM_FRAMES, atTime, buildPrompt, clipsOf, defaultFile, describeRejection, filesOnServer, historyError,
  nextProgress, parseSize, progressText, savedLatent, startProgress, streamChunk, streamWantsChunk, viewQuery,
  workflowsFor,
} from "./app_logic.js";

const API = new URL("../../", location.href); // ComfyUI's root, wherever the server is mounted
// One per tab: ComfyUI sends a prompt's progress to the client that queued it only. (getRandomValues, not
// randomUUID: the page may be opened over plain http from another machine, which is not a secure context.)
const CLIENT_ID = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
const $ = (id) => document.getElementById(id);
const graphs = {};
let job = null;
let stream = null; // the stream running in this tab (stream mode, below)
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

const STRIP_MAX = 24; // the strip keeps the latest clips only, so a long session holds a bounded number of videos

function addToStrip(clip, prompt) {
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  caption.textContent = prompt;
  figure.title = `${prompt}\n${clip.filename}`;
  figure.append(clipElement(clip, true), caption);
  figure.addEventListener("click", () => play(clip));
  $("strip").prepend(figure);
  while ($("strip").children.length > STRIP_MAX) dropVideo($("strip").lastElementChild);
}

function dropVideo(el) {
  // Removing src and calling load() is the HTML spec's way to release a media element's resource (decoder, buffered
  // data, connection) at once rather than at the next garbage collection.
  const videos = el.tagName === "VIDEO" ? [el] : [...el.querySelectorAll("video")];
  for (const media of videos) {
    media.removeAttribute("src");
    media.load();
  }
  el.remove();
}

function finish(text) {
  job = null;
  if (text) {
    showError(text);
    $("label").textContent = "failed";
    if (stream) stopStream();
  }
  if (!stream) setIdle(true);
}

function setIdle(idle) {
  $("generate").disabled = !idle;
  $("stream").disabled = !idle;
  $("stop").hidden = idle;
}

async function complete(current) {
  // `executing` with node null comes after ComfyUI has written the history; wait for the entry all the same.
  let entry;
  for (let pause = 50; !(entry = (await getJSON(new URL(`history/${current.promptId}`, API)))[current.promptId]);
    pause = Math.min(pause * 2, 1000)) await new Promise((r) => setTimeout(r, pause));
  const failed = historyError(current.api, entry);
  const clips = clipsOf(entry);
  if (failed || !clips.length) return finish(failed ?? "the prompt finished but saved no clip");
  if (current.onSaved) return current.onSaved(entry, clips, current.promptId);
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
  complete({ ...current.state, prompt: current.prompt, onSaved: current.onSaved })
    .catch((e) => finish(String(e.message ?? e)));
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

/** Queue one API prompt and follow it; onSaved(entry, clips) takes over when it has saved (default: play it). */
async function queue(api, prompt, onSaved) {
  backlog = [];
  try {
    const r = await fetch(new URL("prompt", API), { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: api, client_id: CLIENT_ID }) });
    const answer = await r.json().catch(() => ({ error: { message: `HTTP ${r.status}` } }));
    if (!r.ok || Object.keys(answer.node_errors ?? {}).length) return finish(describeRejection(api, answer));
    job = { prompt, onSaved, state: startProgress(api, answer.prompt_id, Date.now()) };
    showProgress(job.state);
    for (const message of backlog.splice(0)) if (job) apply(message);
  } finally {
    backlog = null;
  }
}

async function generate(event) {
  event.preventDefault();
  if (job || stream) return;
  showError(null);
  setIdle(false);
  try {
    const chosen = choices();
    for (const name of workflowsFor(chosen)) await graph(name);
    await queue(buildPrompt(graphs, chosen).api, chosen.prompt);
  } catch (e) {
    finish(e.message ?? String(e));
  }
}

// --- stream mode ------------------------------------------------------------------------------------------------
// Chunk after chunk: each is queued when the last has saved (it continues that one's latent) and plays as soon as it
// is saved; while one chunk plays, the next is made, up to STREAM_AHEAD chunks ahead of playback (a GPU is faster
// than playback). The prompt box is read for every chunk, so a new prompt takes over at the next chunk while the
// motion goes on. The page holds the video playing and at most STREAM_AHEAD made but not yet played, and ComfyUI
// keeps nothing per chunk (its history entry is deleted once read), so a long stream runs in flat memory.
// window.adlStream exposes the timings (the browser test reads them).
async function startStream() {
  if (job || stream) return;
  showError(null);
  setIdle(false);
  const chosen = { ...choices(), frames: STREAM_FRAMES, upscale: false };
  const s = { chosen, name: `${Date.now().toString(36)}${CLIENT_ID.slice(0, 4)}`, index: 0, previous: null,
    stopped: false, making: false, waiting: [], playing: null, started: Date.now(), log: [] };
  stream = s;
  window.adlStream = { firstFrameMs: null, chunks: s.log, stopped: false };
  $("player").replaceChildren();
  try {
    for (const name of workflowsFor(chosen)) await graph(name);
    await nextChunk(s);
  } catch (e) {
    finish(e.message ?? String(e));
  }
}

function wantChunk(s) {
  if (streamWantsChunk({ stopped: s.stopped, making: s.making, waiting: s.waiting.length }))
    nextChunk(s).catch((e) => finish(e.message ?? String(e)));
}

async function nextChunk(s) {
  if (s.stopped) return;
  s.making = true;
  const prompt = $("prompt").value;
  const api = streamChunk(buildPrompt(graphs, { ...s.chosen, prompt }).api, s.index, s.previous, s.name);
  const index = s.index;
  s.log.push({ index, prompt, queuedAt: Date.now() - s.started, savedAt: null, playAt: null, endAt: null });
  await queue(api, prompt, (entry, clips, promptId) => chunkSaved(s, index, entry, clips, promptId));
}

function chunkSaved(s, index, entry, clips, promptId) {
  if (!s.stopped) job = null;
  s.making = false;
  s.log[index].savedAt = Date.now() - s.started;
  s.previous = savedLatent(entry);
  fetch(new URL("history", API), { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ delete: [promptId] }) }).catch(() => {});
  if (!s.previous) return finish("the stream chunk saved no latent to continue from");
  s.index += 1;
  const clip = clips.find((c) => c.video) ?? clips[0];
  s.waiting.push({ index, element: preload(clip) });
  if (!s.playing) playNext(s);
  wantChunk(s);
  showStreamStatus(s);
}

function preload(clip) {
  const el = clipElement(clip, false);
  Object.assign(el, { autoplay: false, loop: false, preload: "auto" });
  return el;
}

function playNext(s) {
  const next = s.waiting.shift();
  if (s.playing) dropVideo(s.playing.element);
  s.playing = next ?? null;
  wantChunk(s);   // a place ahead has opened
  if (!next) return; // a gap: the next chunk is not made yet; it plays the moment it is saved
  const entry = s.log[next.index];
  entry.playAt = Date.now() - s.started;
  if (window.adlStream.firstFrameMs == null) window.adlStream.firstFrameMs = entry.playAt;
  next.element.addEventListener("ended", () => {
    entry.endAt = Date.now() - s.started;
    playNext(s);
  }, { once: true });
  $("player").replaceChildren(next.element);
  next.element.play().catch(() => {});
  showStreamStatus(s);
}

function showStreamStatus(s) {
  const first = window.adlStream.firstFrameMs;
  $("streamInfo").hidden = false;
  $("streamInfo").textContent = `stream: ${s.log.filter((c) => c.savedAt != null).length} chunk(s) made` +
    (first == null ? "" : `, first frame after ${(first / 1000).toFixed(1)} s`) + (s.stopped ? ", stopped" : "");
}

async function stopStream() {
  const s = stream;
  if (!s) return;
  s.stopped = true;
  window.adlStream.stopped = true;
  stream = null;
  const running = job;
  job = null;
  if (running) {   // only this tab's own prompt: core interrupts the prompt it names, nothing else
    const post = (path, body) => fetch(new URL(path, API), { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }).catch(() => {});
    await post("interrupt", { prompt_id: running.state.promptId });
    await post("queue", { delete: [running.state.promptId] });
  }
  showStreamStatus(s);
  $("label").textContent = "stream stopped";
  setIdle(true);
}

$("form").addEventListener("submit", generate);
$("stream").addEventListener("click", startStream);
$("stop").addEventListener("click", stopStream);

connect();
loadChoices().then(() => setIdle(true), (e) => showError(`cannot read the files ComfyUI has: ${e.message}`));
