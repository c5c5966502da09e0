"""Host tier, real browser: ComfyUI serving its real frontend package, headless Debian Chromium, every UI workflow.

For each workflows/<name>.json: no missing node types, no widget value the frontend would flag, the frontend's own
graphToPrompt gives exactly the API twin, our extension's steps label is there, no console error, exception or
warning (deprecations included) from our extension's code. Then
the extension's behaviours (steps follow the motion file, user values kept), the missing-models dialog offering
our download links, the Templates listing with thumbnails, and one run queued from the page whose Save node gets
the video preview. Screenshots go to $ADL_SCREENSHOTS (default: a temp folder); with
ADL_UPDATE_SCREENSHOTS=1 they replace docs/screenshots/*.png and workflows/*.jpg (the Templates thumbnails).

Runs on the frontend package each ComfyUI pins (requirements.txt: 1.39.14 for ComfyUI 0.14.1, 1.48.7 for 0.30.0);
the first test says which one it got. Skipped, with the reason, without COMFYUI_PATH (see conftest) or without
/usr/bin/chromium.
"""
from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest

from dev.harness.chromium import CHROMIUM, Chromium
from dev.harness.comfy_server import PACK_DIR_NAME
from tests.host.conftest import comfy_path
from tests.host.test_v2v_host import SOURCE as V2V_SOURCE, put_input
from dev.node_defs import REPO, all_defs, is_widget
from dev.ui_workflow import api_to_ui

UI_NAMES = sorted(p.stem for p in (REPO / "workflows").glob("*.json"))
EXTENSION_URL = f"/extensions/{PACK_DIR_NAME}/"
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False, "Comfy.Graph.CanvasInfo": False,
            "Comfy.Workflow.ShowMissingModelsWarning": True, "Comfy.Validation.Workflows": True,
            # Text at any zoom: a wide graph (v2v) fits the screenshot only below the zoom where nodes lose it.
            "LiteGraph.Canvas.MinFontSizeForLOD": 0}
UPDATE = os.environ.get("ADL_UPDATE_SCREENSHOTS") == "1"

# Runs in the page after a workflow is loaded: what the frontend would show as missing or red.
PROBLEMS_JS = """(() => {
  const problems = [];
  for (const node of app.graph.nodes) {
    if (!(node.type in LiteGraph.registered_node_types)) problems.push(`node ${node.id}: missing type ${node.type}`);
    if (node.has_errors) problems.push(`node ${node.id} (${node.type}) has errors`);
    for (const w of node.widgets ?? []) {
      const o = w.options ?? {};
      const values = typeof o.values === "function" ? o.values(w, node) : o.values;
      if (w.type === "combo" && Array.isArray(values) && !values.includes(w.value))
        problems.push(`node ${node.id} ${w.name}: ${JSON.stringify(w.value)} not in its list`);
      if (w.type === "number" && (w.value < o.min || w.value > o.max || typeof w.value !== "number"))
        problems.push(`node ${node.id} ${w.name}: ${w.value} outside [${o.min}, ${o.max}]`);
    }
    for (const input of node.inputs ?? [])
      if (input.link != null && !app.graph.getLink(input.link))
        problems.push(`node ${node.id} ${input.name}: dangling link ${input.link}`);
  }
  return problems;
})()"""


# The graph's box on screen (CSS pixels, with a margin): screenshots show the workflow, not the empty canvas.
GRAPH_BOX_JS = """(() => {
  const ds = app.canvas.ds, r = app.canvas.canvas.getBoundingClientRect(), m = 16;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const n of app.graph.nodes) {
    const a = ds.convertOffsetToCanvas([n.pos[0], n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT]);
    const b = ds.convertOffsetToCanvas([n.pos[0] + n.size[0], n.pos[1] + n.size[1]]);
    x0 = Math.min(x0, a[0]); y0 = Math.min(y0, a[1]); x1 = Math.max(x1, b[0]); y1 = Math.max(y1, b[1]);
  }
  return [Math.max(r.left, r.left + x0 - m), Math.max(r.top, r.top + y0 - m),
          Math.min(r.right, r.left + x1 + m), Math.min(r.bottom, r.top + y1 + m)];
})()"""
# Every node's box as drawn (title bar included), in graph units.
NODE_BOXES_JS = """app.graph.nodes.map(n => [n.title || n.type, n.pos[0], n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT,
    n.pos[0] + n.size[0], n.pos[1] + n.size[1]])"""
DIALOG_BOX_JS = "(() => { const b = document.querySelector('[role=dialog]').getBoundingClientRect();" \
                " return [b.left, b.top, b.right, b.bottom]; })()"

# Text of every open dialog (missing nodes, missing models, errors).
DIALOGS_JS = "[...document.querySelectorAll('[role=dialog]')].map(d => d.innerText)"


# The missing-model toast's button on newer frontends (1.48), or undefined.
VIEW_DETAILS_JS = "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'View details')"


def close_dialogs(br: Chromium) -> None:
    br.evaluate("[...document.querySelectorAll('[role=dialog] .p-dialog-close-button')].map(b => b.click()).length")
    br.wait_for(f"{DIALOGS_JS}.length === 0", 10, "the dialog to close")


def post_json(url: str, body: dict) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = REPO / "docs" / "screenshots" if UPDATE else \
        Path(os.environ.get("ADL_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(server):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium): browser check not run")
    assert post_json(server.url + "/settings", SETTINGS) == 200
    # The v2v workflow's Load Video names this file; without it in input/ its combo would (rightly) show red.
    put_input(server, V2V_SOURCE)
    # The image workflows' Load Image names core's own example.png (shipped in ComfyUI's input/).
    (server.base / "input" / "example.png").write_bytes((Path(server.comfy_path) / "input" / "example.png").read_bytes())
    with Chromium() as br:
        br.call("Network.enable")
        # The frontend asks api.comfy.org for release notes; keep the page on loopback.
        br.call("Network.setBlockedURLs", urls=["https://*", "wss://*"])
        br.navigate(server.url + "/")
        br.wait_for("window.app?.graph && window.LiteGraph?.registered_node_types?.ADLightning_Sampler", 180,
                    "the ComfyUI page with this pack's nodes")
        br.wait_for(f"performance.getEntriesByType('resource').some(e => e.name.includes('{EXTENSION_URL}"
                    f"adlightning.js'))", 30, "our extension to load")
        # LiteGraph prints each deprecation once per page; repeat them, so one the frontend triggered first is
        # still seen when our code triggers it.
        br.evaluate("LiteGraph.alwaysRepeatWarnings = true")
        br.server = server
        yield br


def load(br: Chromium, name: str, ui: dict) -> None:
    br.evaluate(f"app.loadGraphData({json.dumps(ui)}, true, true, {json.dumps(name)}).then(() => true)")
    br.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def settled_boxes(br: Chromium, timeout: float = 15) -> list:
    """Node boxes once the page stops resizing nodes (a Load Video grows when its preview arrives)."""
    boxes, deadline = br.evaluate(NODE_BOXES_JS), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1)
        now = br.evaluate(NODE_BOXES_JS)
        if now == boxes:
            break
        boxes = now
    return boxes


def overlapping(boxes: list) -> list[tuple[str, str]]:
    return [(a[0], b[0]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]]


def our_errors(br: Chromium) -> list[str]:
    """Console errors, uncaught exceptions and warnings (the frontend prints deprecations as warnings) whose call
    stack or text involves our extension."""
    return [e for e in br.console_messages(("error", "assert", "warning")) if EXTENSION_URL in e or "ADLightning" in e]


def exceptions(br: Chromium) -> list[str]:
    return [e["params"]["exceptionDetails"].get("text", "") for e in br.events
            if e["method"] == "Runtime.exceptionThrown"]


def sampler_steps(br: Chromium) -> dict:
    return br.evaluate("""(() => { const n = app.graph.nodes.find(n => n.type === 'ADLightning_Sampler');
        const w = n.widgets.find(w => w.name === 'steps'); return {value: w.value, label: w.label}; })()""")


def set_widget(br: Chromium, node_type: str, name: str, value) -> None:
    """What the frontend does when the user edits a widget: set the value, then call its callback."""
    br.evaluate(f"""(() => {{ const n = app.graph.nodes.find(n => n.type === {json.dumps(node_type)});
        const w = n.widgets.find(w => w.name === {json.dumps(name)}); w.value = {json.dumps(value)};
        w.callback?.(w.value, app.canvas, n); return true; }})()""")


def save_screenshot(br: Chromium, folder: Path, name: str, box_js: str = GRAPH_BOX_JS,
                    thumbnail: bool = False) -> Path:
    """PNG of the graph (or of box_js's box) for the README; with thumbnail, also the Templates browser's JPEG."""
    from PIL import Image   # ComfyUI's own dependency, present wherever the host tier runs

    raw = folder / f"{name}.raw.png"
    br.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    br.screenshot(raw, clip=br.evaluate(box_js))
    image = Image.open(raw).convert("RGB")
    raw.unlink()
    shot = image.copy()
    shot.thumbnail((1400, 1000), Image.LANCZOS)
    path = folder / f"{name}.png"
    shot.quantize(256).save(path, optimize=True)
    if thumbnail:
        thumb = image.copy()
        thumb.thumbnail((640, 400), Image.LANCZOS)
        target = REPO / "workflows" if UPDATE else folder
        thumb.save(target / f"{name}.jpg", quality=85, optimize=True)
    return path


def test_frontend_version_is_the_one_comfyui_pins(page):
    pinned = re.search(r"comfyui-frontend-package==([\w.]+)",
                       (Path(comfy_path()) / "requirements.txt").read_text()).group(1)
    served = page.evaluate("window.__COMFYUI_FRONTEND_VERSION__")   # the page's own build version
    print(f"\nfrontend {served} (ComfyUI's requirements pin {pinned})")
    assert served == pinned, f"install comfyui-frontend-package=={pinned} into the environment running ComfyUI"


def as_exported(node: dict, server) -> dict:
    """A twin node's inputs as this server's frontend exports them: the twins are written for the oldest core, so an
    optional widget a newer core added (0.30's Create Video bit_depth) is exported at its default; a frontend-only
    widget that is no input of the node (Load Video's upload preview, 'video-preview') is exported empty once the
    file exists. Nothing else may differ."""
    defn = server.get(f"/object_info/{node['class_type']}")[node["class_type"]]["input"]
    inputs = dict(node["inputs"])
    for name, spec in defn.get("optional", {}).items():
        options = spec[1] if len(spec) > 1 else {}
        # test_workflows checks that the twins write every widget the oldest core has: a missing one is newer.
        if name not in inputs and is_widget(spec) and "default" in options:
            inputs[name] = options["default"]
    if node["class_type"] == "LoadVideo":
        inputs["video-preview"] = ""
    return inputs


@pytest.mark.parametrize("name", UI_NAMES)
def test_workflow_loads_cleanly(page, shots, name):
    ui = json.loads((REPO / "workflows" / f"{name}.json").read_text())
    api = json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())
    registered = set(page.evaluate("Object.keys(LiteGraph.registered_node_types)"))
    assert {n["type"] for n in ui["nodes"]} <= registered, "missing node types"
    load(page, name, ui)
    assert page.evaluate(PROBLEMS_JS) == []
    assert page.evaluate(DIALOGS_JS) == [], "a dialog opened on load (missing nodes or models?)"
    prompt = page.evaluate("app.graphToPrompt().then(p => p.output)")
    assert {k: (v["class_type"], v["inputs"]) for k, v in prompt.items()} == \
        {k: (v["class_type"], as_exported(v, page.server)) for k, v in api.items()}, \
        "the frontend's API export differs from the twin"
    steps = page.evaluate("""app.graph.nodes.filter(n => ['ADLightning_Sampler', 'ADLightning_Schedule']
        .includes(n.type)).map(n => n.widgets.find(w => w.name === 'steps').label)""")
    assert steps and all(label.startswith("steps") for label in steps)
    # dev/ui_workflow.py lays the graph out without a page; as the page draws it (titles, previews, our
    # extension's text), no node may cover another.
    assert overlapping(settled_boxes(page)) == [], "nodes overlap on the page"
    save_screenshot(page, shots, name, thumbnail=True)
    assert our_errors(page) == []
    assert exceptions(page) == []


def test_steps_follow_the_motion_file_and_keep_user_values(page, shots):
    load(page, "t2v_lightning", json.loads((REPO / "workflows" / "t2v_lightning.json").read_text()))
    assert sampler_steps(page) == {"value": 0, "label": "steps (auto: 4)"}
    set_widget(page, "ADLightning_LoadMotionModule", "model_name", "animatediff_lightning_8step_comfyui.safetensors")
    assert sampler_steps(page) == {"value": 0, "label": "steps (auto: 8)"}
    set_widget(page, "ADLightning_Sampler", "steps", 8)            # the user types the file's N ...
    set_widget(page, "ADLightning_LoadMotionModule", "model_name", "animatediff_lightning_4step_comfyui.safetensors")
    assert sampler_steps(page) == {"value": 4, "label": "steps"}   # ... so it follows the next file
    set_widget(page, "ADLightning_Sampler", "steps", 6)            # the user's own value ...
    set_widget(page, "ADLightning_LoadMotionModule", "model_name", "animatediff_lightning_8step_comfyui.safetensors")
    assert sampler_steps(page) == {"value": 6, "label": "steps (file: 8)"}   # ... stays, and says what it overrides
    save_screenshot(page, shots, "steps_override")
    assert our_errors(page) == [] and exceptions(page) == []


def test_missing_motion_module_is_offered_for_download(page, shots):
    """A workflow naming an official file the server lacks: the frontend lists it with our URL and folder."""
    api = json.loads((REPO / "workflows" / "api" / "t2v_lightning.json").read_text())
    loader = next(k for k, v in api.items() if v["class_type"] == "ADLightning_LoadMotionModule")
    api[loader]["inputs"]["model_name"] = "animatediff_lightning_2step_comfyui.safetensors"
    load(page, "missing_model", api_to_ui("missing_model", api, all_defs()))
    page.wait_for(f"{DIALOGS_JS}.some(t => t.includes('Missing Models')) || {VIEW_DETAILS_JS} !== undefined", 30,
                  "the missing-models dialog (or, on newer frontends, its toast)")
    dialogs = [t for t in page.evaluate(DIALOGS_JS) if "Missing Models" in t]
    if dialogs:   # frontend 1.39 (ComfyUI 0.14.1): a dialog, "folder / file" with Download and Copy URL
        text = dialogs[0]
        assert "animatediff_models / animatediff_lightning_2step_comfyui.safetensors" in text
        assert "Download" in text and "Copy URL" in text, text
        save_screenshot(page, shots, "missing_model_download", DIALOG_BOX_JS)
        close_dialogs(page)
    else:         # frontend 1.48 (ComfyUI 0.30): a toast naming the file; View details opens the Errors panel
        page.evaluate(f"{VIEW_DETAILS_JS}.click(), true")
        page.wait_for("document.body.innerText.includes('Missing Models')", 30, "the Errors panel's Missing Models")
        text = page.evaluate("document.body.innerText")
        text = text[text.index("Missing Models"):][:600]
        assert "animatediff_lightning_2step_comfyui.safetensors\nanimatediff_models\nDownload" in text, text
    assert "Invalid directory" not in text and "not allowed" not in text and "Only allowed" not in text
    assert page.evaluate(DIALOGS_JS) == []
    assert our_errors(page) == [] and exceptions(page) == []


def test_templates_list_ui_workflows_with_thumbnails(page):
    listed = page.server.get("/workflow_templates")[PACK_DIR_NAME]
    assert sorted(listed) == UI_NAMES, "the Templates browser must list exactly the UI-format workflows"
    for name in UI_NAMES:
        url = f"{page.server.url}/api/workflow_templates/{PACK_DIR_NAME}/{name}.jpg"
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and r.read(3) == b"\xff\xd8\xff"


def test_run_from_the_page_shows_the_animated_preview(page, shots):
    load(page, "t2v_lightning", json.loads((REPO / "workflows" / "t2v_lightning.json").read_text()))
    for name, value in (("width", 64), ("height", 64), ("batch_size", 8)):
        set_widget(page, "EmptyLatentImage", name, value)
    save_node = page.evaluate("String(app.graph.nodes.find(n => n.type === 'SaveVideo').id)")
    page.evaluate("""(() => { window.__adlExecuted = [];
        window.comfyAPI.api.api.addEventListener('executed', e => window.__adlExecuted.push(e.detail));
        return app.queuePrompt(0, 1); })()""")
    found = f"window.__adlExecuted.find(d => String(d.node) === {json.dumps(save_node)})"
    deadline = time.time() + 600
    while time.time() < deadline and not page.evaluate(f"!!{found}"):
        time.sleep(2)
    output = page.evaluate(f"{found}?.output")
    assert output, f"the Save node sent no output within 600 s:\n{page.server.log()[-3000:]}"
    assert output["images"][0]["filename"].endswith(".mp4") and output["animated"] == [True]
    # The frontend shows a video output as a <video> in the node's videoContainer; readyState >= 2 means the
    # browser decoded the H.264 frames (Debian's Chromium ships the codec).
    page.wait_for("(() => { const v = app.graph.nodes.find(n => n.type === 'SaveVideo')"
                  ".videoContainer?.querySelector('video');"
                  " return !!v && v.readyState >= 2 && v.videoWidth === 64 && !v.error; })()",
                  60, "the video preview in the Save Video node")
    save_screenshot(page, shots, "t2v_lightning_result")
    assert our_errors(page) == [] and exceptions(page) == []


def parse_windows(line: str) -> list[list[int]]:
    """'0-15 · 12-27' -> frame lists; '56-63+0-7' is a window wrapping around a looped clip."""
    out = []
    for span in line.split(" · "):
        frames = []
        for part in span.split("+"):
            first, _, last = part.partition("-")
            frames += list(range(int(first), int(last or first) + 1))
        out.append(frames)
    return out


def window_preview(br: Chromium) -> str:
    return br.evaluate("""app.graph.nodes.find(n => n.type === 'ADLightning_ContextOptions')
        .widgets.find(w => w.name === 'window_preview').element.textContent""")


CONTEXT_NAMES = [n for n in UI_NAMES if '"ADLightning_ContextOptions"' in (REPO / "workflows" / f"{n}.json").read_text()]


@pytest.mark.parametrize("name", CONTEXT_NAMES or [pytest.param(None, marks=pytest.mark.skip(
    reason="no UI workflow with ADLightning_ContextOptions yet (context windows not merged)"))])
def test_context_node_shows_the_windows_the_sampler_runs(page, name):
    """The in-node preview lists exactly the windows samplers/windows.py will run, and follows widget edits."""
    from adlightning.samplers import windows as win

    ui = json.loads((REPO / "workflows" / f"{name}.json").read_text())
    load(page, name, ui)
    if not any(n["type"] == "EmptyLatentImage" for n in ui["nodes"]):   # v2v: the count comes from the video
        text = window_preview(page)
        assert text.startswith("frames come from the input clip: windows of "), text
        assert our_errors(page) == [] and exceptions(page) == []
        return
    for frames, overlap in ((None, None), (48, 8), (40, 2)):
        if frames is not None:
            set_widget(page, "EmptyLatentImage", "batch_size", frames)
            set_widget(page, "ADLightning_ContextOptions", "context_overlap", overlap)
        values = page.evaluate("""(() => { const n = app.graph.nodes.find(n => n.type === 'ADLightning_ContextOptions');
            const l = app.graph.nodes.find(n => n.type === 'EmptyLatentImage');
            const v = k => n.widgets.find(w => w.name === k).value;
            return {frames: l.widgets.find(w => w.name === 'batch_size').value, length: v('context_length'),
                    overlap: v('context_overlap'), schedule: v('schedule')}; })()""")
        options = win.WindowOptions(length=values["length"], overlap=values["overlap"], schedule=values["schedule"])
        text = window_preview(page)
        lines = text.splitlines()
        assert lines[0].startswith(f"{values['frames']} frames, {values['schedule']}:"), text
        for step, line in enumerate(lines[1:]):
            assert parse_windows(line.removeprefix(f"step {step + 1}: ")) == \
                win.windows(values["frames"], options, step), text
    assert our_errors(page) == [] and exceptions(page) == []
