// Frontend glue for the AnimateDiff-Lightning nodes. Optional: the nodes and the API work without it.
//  * Changing the motion-module file carries the sampler's steps along (auto stays auto, a value equal to the old
//    file's N becomes the new file's N, any other value is the user's and stays).
//  * The steps widget's label says what auto resolves to ("steps (auto: 4)") and when a value overrides the file.
//  * The Context Windows node shows which frames each window will cover for the sampler it feeds, before running.
//  * The Clip Metrics node shows its table after a run.
// The decisions live in ./lib (plain ES modules tested with node --test); this file only reads and writes the graph.
import { app } from "../../scripts/app.js";
import { describeWindows, describeWindowsOfInput } from "./lib/context_windows.js";
import { downstreamOfType, upstreamOfType } from "./lib/graph_walk.js";
import { lightningStepsFromName } from "./lib/lightning_steps.js";
import { effectiveSteps, stepsLabel, syncedSteps } from "./lib/steps_sync.js";

const LOADER = "ADLightning_LoadMotionModule";
const SAMPLERS = ["ADLightning_Sampler", "ADLightning_Schedule"];
const CONTEXT = "ADLightning_ContextOptions";
const PACK_PREFIX = "ADLightning_";
const PREVIEW = "window_preview";
const METRICS = "ADLightning_ClipMetrics";

const widget = (node, name) => node?.widgets?.find((w) => w.name === name);

// Links are read through the graph's link lookup (graph.getLink) and the nodes' own accessors (getInputNode), never
// through the legacy slot/graph fields (input.link, graph._nodes, graph.links[id]: in frontend 1.48 graph.links is a
// compatibility proxy over the graph's link Map, and those fields are on their way out). The browser check fails on
// any console error or deprecation warning our code causes; tests/js/no_legacy_accessors.test.mjs keeps the fields
// out of the source.

/** The graph as plain {nodes, edges} for ./lib/graph_walk.js. */
function plainGraph(graph) {
  const all = graph.nodes ?? [];
  const edges = [];
  for (const node of all) {
    for (const output of node.outputs ?? []) {
      for (const id of output.links ?? []) {
        const link = graph.getLink(id);
        if (link) edges.push([node.id, link.target_id]);
      }
    }
  }
  return { nodes: all.map((n) => ({ id: n.id, type: n.comfyClass ?? n.type })), edges };
}

/** The Lightning N of the one motion file feeding `samplerId`; null if none, not Lightning, or several differ. */
function fileSteps(graph, desc, samplerId) {
  const loaders = upstreamOfType(samplerId, [LOADER], desc.nodes, desc.edges);
  const found = new Set(loaders.map((id) => lightningStepsFromName(widget(graph.getNodeById(id), "model_name")?.value)));
  return found.size === 1 ? [...found][0] : null;
}

/** Frame count of the latent feeding a sampler (an empty-latent node's batch_size), or undefined; `linked` says
 * whether a latent is connected at all (one from an encoded clip has no count until the graph runs). */
function samplerFrames(sampler) {
  const slot = sampler.findInputSlot("latent_image");
  const source = slot >= 0 ? sampler.getInputNode(slot) : null;
  return { linked: !!source, frames: source ? widget(source, "batch_size")?.value : undefined };
}

function windowPreviewText(graph, desc, node) {
  const options = {
    length: widget(node, "context_length")?.value,
    overlap: widget(node, "context_overlap")?.value,
    schedule: widget(node, "schedule")?.value,
  };
  const samplers = downstreamOfType(node.id, SAMPLERS, desc.nodes, desc.edges);
  if (!samplers.length) return "Connect to the sampler's context_options to see the windows.";
  const sampler = graph.getNodeById(samplers[0]);
  const steps = effectiveSteps(widget(sampler, "steps")?.value ?? 0, fileSteps(graph, desc, sampler.id));
  const { linked, frames } = samplerFrames(sampler);
  if (linked && frames === undefined) return describeWindowsOfInput(options);
  return describeWindows(frames, options, steps);
}

function refreshLabels(graph) {
  if (!graph) return;
  const desc = plainGraph(graph);
  for (const { id, type } of desc.nodes) {
    const node = graph.getNodeById(id);
    if (SAMPLERS.includes(type)) {
      const steps = widget(node, "steps");
      if (steps) steps.label = stepsLabel(steps.value, fileSteps(graph, desc, id));
    }
    const preview = widget(node, PREVIEW);
    if (type === CONTEXT && preview) preview.element.textContent = windowPreviewText(graph, desc, node);
  }
  graph.setDirtyCanvas?.(true, true);
}

let refreshQueued = false;
function queueRefresh(graph) {
  // Loading a graph fires a connection change per link; one refresh after them is enough.
  if (refreshQueued) return;
  refreshQueued = true;
  queueMicrotask(() => {
    refreshQueued = false;
    refreshLabels(graph ?? app.graph);
  });
}

function motionFileChanged(node, oldName, newName) {
  const graph = node.graph ?? app.graph;
  const desc = plainGraph(graph);
  const oldN = lightningStepsFromName(oldName);
  const newN = lightningStepsFromName(newName);
  for (const id of downstreamOfType(node.id, SAMPLERS, desc.nodes, desc.edges)) {
    const steps = widget(graph.getNodeById(id), "steps");
    if (steps) steps.value = syncedSteps(steps.value, oldN, newN);
  }
  refreshLabels(graph);
}

function chain(object, method, after) {
  const original = object[method];
  object[method] = function (...args) {
    const result = original?.apply(this, args);
    after.apply(this, args);
    return result;
  };
}

function watchLoader(node) {
  const file = widget(node, "model_name");
  if (!file) return;
  let last = file.value;
  chain(file, "callback", (value) => {
    if (value !== last) motionFileChanged(node, last, value);
    last = value;
  });
  // Loading a workflow sets widget values without callbacks: remember the loaded file as the one to follow from.
  chain(node, "onConfigure", () => {
    last = file.value;
  });
}

function addTextView(node, name, className, minHeight) {
  const element = document.createElement("pre");
  element.className = className;
  Object.assign(element.style, {
    margin: "0", padding: "4px 6px", whiteSpace: "pre-wrap", overflow: "hidden", fontSize: "10px",
    lineHeight: "1.35", fontFamily: "monospace", color: "var(--input-text, #ddd)",
    background: "var(--comfy-input-bg, #222)", borderRadius: "4px",
  });
  // Display only: not a widget value (serialize false keeps widgets_values and the API prompt unchanged).
  const view = node.addDOMWidget(name, "adlightning_preview", element, {
    serialize: false, getValue: () => undefined, setValue: () => {}, getMinHeight: () => minHeight,
  });
  view.serialize = false;
  return view;
}

function addWindowPreview(node) {
  addTextView(node, PREVIEW, "adlightning-window-preview", 64);
  for (const name of ["context_length", "context_overlap", "schedule"]) {
    const w = widget(node, name);
    if (w) chain(w, "callback", () => queueRefresh(node.graph));
  }
}

function addMetricsView(node) {
  const view = addTextView(node, "metrics_table", "adlightning-clip-metrics", 150);
  view.element.textContent = "Run the graph to measure the clip.";
  // The node returns its table as ui.text; show it where the user is looking.
  chain(node, "onExecuted", (output) => {
    view.element.textContent = (output?.text ?? []).join("\n");
  });
}

app.registerExtension({
  name: "ADLightning.Frontend",
  nodeCreated(node) {
    const type = node.comfyClass ?? node.type;
    // Frame counts live on core nodes (Empty Latent Image); their edits move the window preview.
    const frames = widget(node, "batch_size");
    if (frames) chain(frames, "callback", () => queueRefresh(node.graph));
    if (!type?.startsWith(PACK_PREFIX)) return;
    if (type === LOADER) watchLoader(node);
    if (type === CONTEXT) addWindowPreview(node);
    if (type === METRICS) addMetricsView(node);
    if (SAMPLERS.includes(type)) {
      const steps = widget(node, "steps");
      if (steps) chain(steps, "callback", () => refreshLabels(node.graph ?? app.graph));
    }
    chain(node, "onConnectionsChange", () => queueRefresh(node.graph));
  },
  afterConfigureGraph() {
    refreshLabels(app.graph);
  },
});
