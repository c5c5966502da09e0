"""Build the UI-format workflow (what the ComfyUI page loads) from an API-format twin (what /prompt takes).

The API twin is the source of truth: the host tier runs it and the client queues it. The UI file adds only what the
page needs: node positions (columns left to right by graph depth), slots and links, widgets_values in the frontend's
order (with the frontend-only control_after_generate value after each seed), node titles from `_meta.title`,
`properties.models` (download URL + folder, which the frontend's missing-models dialog offers to download) and a note
listing the model files. Everything is derived deterministically, so rebuilding an unchanged twin changes nothing.
"""
from __future__ import annotations

import math

import tomllib
import uuid

from dev.node_defs import PACK_PREFIX, REPO, is_widget, ordered_inputs, widget_slots

# Model files the shipped workflows may name -> (download URL, models/ folder). The frontend offers a download only
# from huggingface.co / civitai.com and only for .safetensors / .sft names.
MODEL_SOURCES = {
    "v1-5-pruned-emaonly-fp16.safetensors": (
        "https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/"
        "v1-5-pruned-emaonly-fp16.safetensors", "checkpoints"),
    **{f"animatediff_lightning_{n}step_{kind}.safetensors": (
        f"https://huggingface.co/ByteDance/AnimateDiff-Lightning/resolve/main/"
        f"animatediff_lightning_{n}step_{kind}.safetensors", "animatediff_models")
       for n in (1, 2, 4, 8) for kind in ("comfyui", "diffusers")},
    "RealESRGAN_x4plus.safetensors": (
        "https://huggingface.co/Comfy-Org/Real-ESRGAN_repackaged/resolve/main/RealESRGAN_x4plus.safetensors",
        "upscale_models"),
    "control_v11p_sd15_canny_fp16.safetensors": (
        "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/"
        "control_v11p_sd15_canny_fp16.safetensors", "controlnet"),
}
# Official files the frontend will not download (it fetches only .safetensors/.sft, from a few hosts): the Models
# note gives their URL and folder, and they stay out of properties.models so the dialog offers nothing broken.
MANUAL_SOURCES = {
    "v2_lora_ZoomIn.ckpt": ("https://huggingface.co/guoyww/animatediff/resolve/main/v2_lora_ZoomIn.ckpt",
                            "animatediff_motion_lora"),
}
MODEL_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin")

# What a seed's control_after_generate widget starts as: a new clip on every queue after the first, like core's
# templates; the first run uses the twin's seed, so it reproduces the API twin's output.
SEED_CONTROL = "randomize"
# Frontend-only node types (no /object_info entry, never sent to /prompt).
FRONTEND_ONLY_TYPES = {"MarkdownNote", "Note", "Reroute", "PrimitiveNode"}
# Input types that render as several widgets or grow slots; their widgets_values layout is not a flat list.
UNSUPPORTED_TYPES = ("COMFY_DYNAMICCOMBO_V3", "COMFY_AUTOGROW_V3", "COMFY_MATCHTYPE_V3")

COLUMN_GAP = 60
ROW_GAP = 50
ORIGIN = (40, 260)        # top-left of the first column; the note sits above the graph
NOTE_SIZE = (520, 200)
SLOT_HEIGHT = 22
WIDGET_HEIGHT = 26
MULTILINE_HEIGHT = 110
TITLE_HEIGHT = 34
# The frontend widens a node to its title (measured on frontend 1.39: 43 characters -> 327 px, 57 -> 427 px) but
# cuts the title short with "..." before that (a 320 px node shows about 32 characters). Room for the whole title
# here, which also keeps a node from growing past its column on the page.
TITLE_CHAR_WIDTH = 8.5
TITLE_PADDING = 60
# Room the page adds below a node's widgets once it runs in the page: the preview of an upload widget's file (Load
# Video grew from 82 to 287 px with the v2v source selected) and the text our extension writes into the Context
# Windows node (its window layout: up to five lines).
UPLOAD_PREVIEW_HEIGHT = 220
EXTENSION_TEXT_HEIGHT = {"ADLightning_ContextOptions": 90}


class WorkflowError(ValueError):
    pass


def pack_identity() -> tuple[str, str]:
    """(registry id, version) from pyproject.toml; the frontend's missing-node dialog suggests installing it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project["name"], project["version"]


def node_ids(api: dict) -> dict[str, int]:
    """API ids -> UI ids: the same numbers where the twin uses numeric ids (so errors name the same node)."""
    if all(k.isdigit() for k in api):
        return {k: int(k) for k in api}
    return {k: i + 1 for i, k in enumerate(sorted(api))}


def is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def depths(api: dict) -> dict[str, int]:
    """Longest path from a source node: the node's column."""
    memo: dict[str, int] = {}

    def depth(key: str, trail: tuple = ()) -> int:
        if key in trail:
            raise WorkflowError(f"cycle through node {key}")
        if key not in memo:
            parents = [v[0] for v in api[key]["inputs"].values() if is_link(v)]
            missing = [p for p in parents if p not in api]
            if missing:
                raise WorkflowError(f"node {key} links to missing node(s) {missing}")
            memo[key] = 1 + max((depth(p, trail + (key,)) for p in parents), default=-1)
        return memo[key]

    for key in api:
        depth(key)
    return memo


def node_size(class_type: str, defn: dict, title: str = "") -> list[int]:
    """[width, height] that holds what the page will draw: slots, widgets, the title, previews."""
    sockets = sum(1 for _, spec in ordered_inputs(defn) if not is_widget(spec))
    rows = max(sockets, len(defn["output"]))
    height = TITLE_HEIGHT + SLOT_HEIGHT * rows
    width = 320
    for name, spec in ordered_inputs(defn):
        if not is_widget(spec):
            continue
        options = spec[1] if len(spec) > 1 else {}
        height += MULTILINE_HEIGHT if options.get("multiline") else WIDGET_HEIGHT
        if options.get("control_after_generate"):
            height += WIDGET_HEIGHT
        if options.get("multiline"):
            width = 400
        if not options.get("multiline") and name.endswith("_name"):
            width = max(width, 380)   # model-file combos: room for the whole official file name
        if options.get("image_upload") or options.get("video_upload"):
            height += UPLOAD_PREVIEW_HEIGHT
    height += EXTENSION_TEXT_HEIGHT.get(class_type, 0)
    if defn.get("output_node"):
        width, height = 380, max(height, 420)   # room for the animated preview the node shows after a run
    title = title or defn.get("display_name") or class_type
    width = max(width, math.ceil((TITLE_CHAR_WIDTH * len(title) + TITLE_PADDING) / 10) * 10)
    return [width, height]


def widget_value(key: str, name: str, spec: list, inputs: dict):
    if name in inputs and not is_link(inputs[name]):
        return inputs[name]
    if name in inputs:
        return spec[1].get("default") if len(spec) > 1 else None   # driven by a link; the widget keeps its default
    # The page's API export writes every widget, so a twin without one would differ from what the page queues.
    raise WorkflowError(f"node {key}: widget input '{name}' has no value in the API twin; write it (its default "
                        f"is fine)")


def models_for(values: list) -> list[dict]:
    """Model files among a node's widget values; those in MANUAL_SOURCES are marked "manual"."""
    out = []
    for value in values:
        if isinstance(value, str) and value.lower().endswith(MODEL_SUFFIXES):
            if value in MANUAL_SOURCES:
                url, folder = MANUAL_SOURCES[value]
                out.append({"name": value, "url": url, "directory": folder, "manual": True})
                continue
            if value not in MODEL_SOURCES:
                raise WorkflowError(f"model file '{value}' has no download source in MODEL_SOURCES; add its "
                                    f"official URL and models/ folder")
            url, folder = MODEL_SOURCES[value]
            out.append({"name": value, "url": url, "directory": folder})
    return out


def models_note(models: list[dict]) -> str:
    lines = ["## Model files", "",
             "ComfyUI offers to download missing ones when this workflow loads. Or put them here:", ""]
    for m in models:
        by_hand = " (download it yourself: ComfyUI only downloads .safetensors files)" if m.get("manual") else ""
        lines.append(f"- `ComfyUI/models/{m['directory']}/` [{m['name']}]({m['url']}){by_hand}")
    lines += ["", "Sampler **steps 0** = the motion module's Lightning step count (4 for the 4-step file); "
                  "cfg 1.0 ignores the negative prompt."]
    return "\n".join(lines)


def api_to_ui(name: str, api: dict, defs: dict) -> dict:
    ids = node_ids(api)
    depth = depths(api)
    pack_id, pack_version = pack_identity()
    for key, node in api.items():
        if node["class_type"] not in defs:
            raise WorkflowError(f"node {key}: unknown node type {node['class_type']}")

    # Slots first: link ids are numbered in (target node, target slot) order so the output is stable.
    nodes: dict[str, dict] = {}
    links: list[list] = []
    manual_models: list[dict] = []
    for key in sorted(api, key=lambda k: ids[k]):
        node = api[key]
        defn = defs[node["class_type"]]
        extra = set(node["inputs"]) - {n for n, _ in ordered_inputs(defn)}
        if extra:
            raise WorkflowError(f"node {key} ({node['class_type']}): inputs {sorted(extra)} are not in its definition")
        ui_inputs, values = [], []
        for input_name, spec in ordered_inputs(defn):
            if isinstance(spec[0], str) and spec[0] in UNSUPPORTED_TYPES:
                raise WorkflowError(f"node {key}: input '{input_name}' of type {spec[0]} is not supported here")
            value = node["inputs"].get(input_name)
            widget = is_widget(spec)
            if widget:
                values.append(widget_value(key, input_name, spec, node["inputs"]))
                options = spec[1] if len(spec) > 1 else {}
                if options.get("control_after_generate"):
                    values.append(SEED_CONTROL)
                if any(options.get(f) for f in ("image_upload", "video_upload", "audio_upload")):
                    values.append("image")
            if is_link(value):
                links.append([len(links) + 1, ids[value[0]], value[1], ids[key], len(ui_inputs), spec[0]])
                slot = {"name": input_name, "type": spec[0], "link": links[-1][0]}
                if widget:
                    slot["widget"] = {"name": input_name}
                ui_inputs.append(slot)
            elif not widget:
                if input_name in defn["input"].get("required", {}):
                    raise WorkflowError(f"node {key} ({node['class_type']}): required input '{input_name}' "
                                        f"is not connected")
                ui_inputs.append({"name": input_name, "type": spec[0], "link": None})
        if len(values) != len(widget_slots(defn)):
            raise AssertionError("widget layout disagrees with node_defs.widget_slots")
        is_pack = node["class_type"].startswith(PACK_PREFIX)
        properties = {"Node name for S&R": node["class_type"],
                      "cnr_id": pack_id if is_pack else "comfy-core",
                      "ver": pack_version if is_pack else "0.14.1"}
        models = models_for(values)
        if models:
            properties["models"] = [m for m in models if not m.get("manual")]
            note_models = [m for m in models if m.get("manual")]
            if note_models:
                manual_models.extend(m for m in note_models if m not in manual_models)
            if not properties["models"]:
                del properties["models"]
        title = node.get("_meta", {}).get("title")
        ui = {"id": ids[key], "type": node["class_type"], "pos": [0, 0],
              "size": node_size(node["class_type"], defn, title or ""),
              "flags": {}, "order": 0, "mode": 0, "inputs": ui_inputs,
              "outputs": [{"name": out_name, "type": out_type, "slot_index": i, "links": []}
                          for i, (out_type, out_name) in enumerate(zip(defn["output"], defn["output_name"]))],
              "properties": properties, "widgets_values": values}
        if title and title != defn.get("display_name"):
            ui["title"] = title
        nodes[key] = ui
    for link_id, origin, origin_slot, _target, _slot, _type in links:
        origin_key = next(k for k, v in ids.items() if v == origin)
        outputs = nodes[origin_key]["outputs"]
        if origin_slot >= len(outputs):
            raise WorkflowError(f"node {origin_key} has no output {origin_slot}")
        outputs[origin_slot]["links"].append(link_id)
    for link in links:   # the link's type is the origin output's type (the input may accept several)
        origin_key = next(k for k, v in ids.items() if v == link[1])
        link[5] = nodes[origin_key]["outputs"][link[2]]["type"]

    # Columns by depth, each stacked top-down in id order; a column is as wide as its widest node.
    columns: dict[int, list[str]] = {}
    for key in sorted(api, key=lambda k: ids[k]):
        columns.setdefault(depth[key], []).append(key)
    x = ORIGIN[0]
    for col in sorted(columns):
        y = ORIGIN[1]
        for key in columns[col]:
            nodes[key]["pos"] = [x, y]
            y += nodes[key]["size"][1] + ROW_GAP
        x += max(nodes[k]["size"][0] for k in columns[col]) + COLUMN_GAP
    order = sorted(api, key=lambda k: (depth[k], ids[k]))
    for i, key in enumerate(order):
        nodes[key]["order"] = i + 1

    ui_nodes = [nodes[k] for k in sorted(api, key=lambda k: ids[k])]
    all_models = []
    for n in ui_nodes:
        for m in n["properties"].get("models", []):
            if m not in all_models:
                all_models.append(m)
    all_models += manual_models
    if all_models:
        note_id = max(ids.values()) + 1
        ui_nodes.append({"id": note_id, "type": "MarkdownNote", "pos": [ORIGIN[0], ORIGIN[1] - NOTE_SIZE[1] - 40],
                         "size": list(NOTE_SIZE), "flags": {}, "order": 0, "mode": 0, "inputs": [], "outputs": [],
                         "title": "Models", "properties": {}, "widgets_values": [models_note(all_models)],
                         "color": "#432", "bgcolor": "#653"})
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfyui-animatediff-lightning/workflows/{name}")),
        "revision": 0,
        "last_node_id": max(n["id"] for n in ui_nodes),
        "last_link_id": len(links),
        "nodes": ui_nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
    }
