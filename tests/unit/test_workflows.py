"""Shipped workflows, offline: UI and API twins agree, every node type exists (this pack or ComfyUI core, in every
tested version), every widget value is one the real frontend accepts, and every model file carries its download
source."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dev.node_defs import CORE_VERSIONS, REPO, all_defs, is_widget, ordered_inputs, widget_slots
from dev.ui_to_api import ui_to_api
from dev.ui_workflow import FRONTEND_ONLY_TYPES, MANUAL_SOURCES, MODEL_SOURCES, MODEL_SUFFIXES, api_to_ui, node_size

WORKFLOWS = REPO / "workflows"
API_NAMES = sorted(p.stem for p in (WORKFLOWS / "api").glob("*.json"))
UI_NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
# The frontend's missing-models dialog (comfyui-frontend-package 1.39, MissingModelsWarning) downloads only these
# few named URLs, or .safetensors / .sft files from these hosts; for anything else it shows an error instead.
DOWNLOAD_HOSTS = ("https://huggingface.co/", "https://civitai.com/")
DOWNLOAD_SUFFIXES = (".safetensors", ".sft")
DOWNLOAD_ALLOWED_URLS = {
    "https://huggingface.co/stabilityai/stable-zero123/resolve/main/stable_zero123.ckpt",
    "https://huggingface.co/TencentARC/T2I-Adapter/resolve/main/models/t2iadapter_depth_sd14v1.pth?download=true",
    "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",
}


def frontend_offers_download(url: str, name: str) -> bool:
    return url in DOWNLOAD_ALLOWED_URLS or (url.startswith(DOWNLOAD_HOSTS) and name.endswith(DOWNLOAD_SUFFIXES))


def added_since_oldest(version: str) -> dict[str, list[str]]:
    """node type -> optional inputs core `version` has that the oldest tested core's same node lacks (0.30's
    CreateVideo.bit_depth): the shipped workflows are written for the oldest core and cannot set them."""
    oldest, newer = all_defs(), all_defs(version)
    added = {}
    for node_type, defn in newer.items():
        if node_type in oldest:
            known = {name for name, _ in ordered_inputs(oldest[node_type])}
            names = [name for name, _ in ordered_inputs(defn) if name not in known]
            if names:
                added[node_type] = names
    return added


def as_oldest_knows(version: str) -> dict:
    """Core `version`'s node definitions without the optional inputs added since the oldest core; ComfyUI gives
    those their defaults when a prompt leaves them out, and the page when a workflow has no value for them."""
    defs = copy.deepcopy(all_defs(version))
    for node_type, names in added_since_oldest(version).items():
        for name in names:
            for group in ("required", "optional"):
                defs[node_type]["input"].get(group, {}).pop(name, None)
                order = defs[node_type].get("input_order", {}).get(group)
                if order and name in order:
                    order.remove(name)
    return defs


@pytest.fixture(scope="module", params=CORE_VERSIONS)
def defs(request) -> dict:
    """This pack and the core of each tested ComfyUI version: the shipped workflows must load and queue on all.
    Optional inputs a newer core added are left out (test_inputs_added_since_the_oldest_core_have_defaults)."""
    return as_oldest_knows(request.param)


@pytest.mark.parametrize("version", CORE_VERSIONS[1:])
def test_inputs_added_since_the_oldest_core_have_defaults(version):
    """What a newer core added to a node the workflows use must be optional (a workflow written for the oldest core
    still validates) and, if it is a widget, have a default for the page to fill in."""
    used = {node["class_type"] for name in API_NAMES for node in api_twin(name).values()}
    for node_type, names in added_since_oldest(version).items():
        if node_type not in used:
            continue
        defn = all_defs(version)[node_type]
        for name in names:
            assert name not in defn["input"].get("required", {}), f"{version} {node_type}: new required input {name}"
            spec = defn["input"]["optional"][name]
            assert not is_widget(spec) or "default" in (spec[1] if len(spec) > 1 else {}), \
                f"{version} {node_type}: new widget {name} has no default"


@pytest.fixture(scope="module")
def generator_defs() -> dict:
    """This pack and the oldest tested ComfyUI core: what dev/build_ui_workflows.py generates against."""
    return all_defs()


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def api_twin(name: str) -> dict:
    return load(WORKFLOWS / "api" / f"{name}.json")


def ui_twin(name: str) -> dict:
    return load(WORKFLOWS / f"{name}.json")


def strip_meta(api: dict) -> dict:
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api.items()}


def test_shipped_workflows_exist():
    assert "t2v_lightning" in API_NAMES
    assert UI_NAMES, "no UI-format workflows in workflows/"


@pytest.mark.parametrize("name", API_NAMES)
def test_every_api_twin_has_a_ui_workflow_and_thumbnail(name):
    assert (WORKFLOWS / f"{name}.json").is_file(), \
        f"workflows/{name}.json missing: run python -m tools.build_ui_workflows {name}"
    thumb = WORKFLOWS / f"{name}.jpg"
    assert thumb.is_file(), f"workflows/{name}.jpg missing: run the host-tier browser check (tests/host/test_browser.py)"
    assert thumb.read_bytes()[:3] == b"\xff\xd8\xff", f"{thumb} is not a JPEG"


@pytest.mark.parametrize("name", UI_NAMES)
def test_every_ui_workflow_has_an_api_twin(name):
    assert (WORKFLOWS / "api" / f"{name}.json").is_file(), f"workflows/{name}.json has no twin in workflows/api/"


@pytest.mark.parametrize("name", UI_NAMES)
def test_ui_and_api_twins_agree(name, defs):
    """Same nodes, same types, same widget values, same links."""
    assert ui_to_api(ui_twin(name), defs) == strip_meta(api_twin(name))


@pytest.mark.parametrize("name", API_NAMES)
def test_every_node_type_exists(name, defs):
    for key, node in api_twin(name).items():
        assert node["class_type"] in defs, f"api/{name}.json node {key}: unknown type {node['class_type']}"
    if (WORKFLOWS / f"{name}.json").is_file():
        for node in ui_twin(name)["nodes"]:
            assert node["type"] in defs or node["type"] in FRONTEND_ONLY_TYPES, \
                f"{name}.json node {node['id']}: unknown type {node['type']}"


def check_value(where: str, spec: list, value) -> None:
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    choices = kind if isinstance(kind, list) else options.get("options") if kind == "COMBO" else None
    if kind == "COMFY_DYNAMICCOMBO_V3":
        choices = [option["key"] for option in options["options"]]
    if choices:   # model-file combos are empty in the dumps (no files on that server); their names are checked below
        assert value in choices, f"{where}: {value!r} is not one of {choices}"
    elif kind == "INT":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r} is not an INT"
    elif kind == "FLOAT":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: {value!r} not a FLOAT"
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), f"{where}: {value!r} is not a BOOLEAN"
    elif kind == "STRING":
        assert isinstance(value, str), f"{where}: {value!r} is not a STRING"
    if kind in ("INT", "FLOAT"):
        assert options.get("min", value) <= value <= options.get("max", value), \
            f"{where}: {value} outside [{options.get('min')}, {options.get('max')}]"


@pytest.mark.parametrize("name", API_NAMES)
def test_api_inputs_are_valid(name, defs):
    """What the server's validation (and the frontend's red widgets) would reject: unknown inputs, missing required
    ones, out-of-range numbers, combo values not offered, links between mismatched types."""
    api = api_twin(name)
    for key, node in api.items():
        defn = defs[node["class_type"]]
        specs = dict(ordered_inputs(defn))
        where = f"api/{name}.json node {key} ({node['class_type']})"
        assert set(node["inputs"]) <= set(specs), f"{where}: unknown inputs {set(node['inputs']) - set(specs)}"
        for required in defn["input"].get("required", {}):
            assert required in node["inputs"], f"{where}: required input '{required}' missing"
        # The frontend's API export writes every widget, optional ones too; a twin that leaves one out to its default
        # still runs, but no longer equals what the page queues (the browser check compares the two).
        omitted = [n for n, spec in ordered_inputs(defn) if is_widget(spec) and n not in node["inputs"]]
        assert not omitted, f"{where}: widget inputs {omitted} not written; give their values (defaults are fine)"
        for input_name, value in node["inputs"].items():
            spec = specs[input_name]
            if isinstance(value, list):
                origin = api[value[0]]
                out_type = defs[origin["class_type"]]["output"][value[1]]
                accepted = spec[0] if isinstance(spec[0], str) else "COMBO"
                assert out_type == accepted or "*" in (out_type, accepted) or out_type in accepted.split(","), \
                    f"{where}: input '{input_name}' takes {accepted}, linked to a {out_type} output"
            else:
                assert is_widget(spec), f"{where}: '{input_name}' is a {spec[0]} socket but has a value {value!r}"
                check_value(f"{where}.{input_name}", spec, value)


@pytest.mark.parametrize("name", UI_NAMES)
def test_model_files_are_official_and_downloadable(name):
    """Every model file a loader names is an official file, and the node carries where to download it and which
    models/ folder it goes in, in the form the frontend's missing-models dialog reads (properties.models)."""
    found = 0
    for node in ui_twin(name)["nodes"]:
        if node["type"] in FRONTEND_ONLY_TYPES:
            continue
        files = [v for v in node["widgets_values"] if isinstance(v, str) and v.lower().endswith(MODEL_SUFFIXES)
                 and v not in MANUAL_SOURCES]
        entries = {m["name"]: m for m in node["properties"].get("models", [])}
        assert sorted(entries) == sorted(files), f"{name}.json node {node['id']}: models {entries} vs files {files}"
        for file in files:
            entry = entries[file]
            assert (entry["url"], entry["directory"]) == MODEL_SOURCES[file]
            assert entry["url"].split("?")[0].endswith("/" + file)
            assert frontend_offers_download(entry["url"], file), f"the frontend will not download {entry['url']}"
            found += 1
    assert found >= 2, f"{name}.json names no checkpoint and motion module"


@pytest.mark.parametrize("name", UI_NAMES)
def test_files_the_frontend_cannot_fetch_are_in_the_models_note(name):
    """Official .ckpt files (guoyww's Motion LoRAs) get their URL and folder in the workflow's Models note."""
    workflow = ui_twin(name)
    note = "\n".join(str(v) for n in workflow["nodes"] if n["type"] == "MarkdownNote" for v in n["widgets_values"])
    for node in workflow["nodes"]:
        for value in node.get("widgets_values", []):
            if value in MANUAL_SOURCES:
                url, folder = MANUAL_SOURCES[value]
                assert f"models/{folder}/` [{value}]({url}) (download it yourself" in note


@pytest.mark.parametrize("name", UI_NAMES)
def test_ui_widget_counts_match_the_frontend(name, defs):
    for node in ui_twin(name)["nodes"]:
        if node["type"] not in FRONTEND_ONLY_TYPES:
            assert len(node["widgets_values"]) == len(widget_slots(defs[node["type"]])), f"{name} node {node['id']}"


def test_seed_is_followed_by_control_after_generate(defs):
    """The frontend adds a control widget after every seed; its value sits in widgets_values after the seed."""
    slots = widget_slots(defs["ADLightning_Sampler"])
    assert slots[:3] == ["seed", None, "steps"]
    assert widget_slots(defs["LoadImage"]) == ["image", None]   # the upload button's value
    values = next(n for n in ui_twin("t2v_lightning")["nodes"] if n["type"] == "ADLightning_Sampler")["widgets_values"]
    assert values[1] in ("fixed", "increment", "decrement", "randomize")


def test_download_rule_matches_the_frontend():
    assert frontend_offers_download(*MODEL_SOURCES["animatediff_lightning_4step_comfyui.safetensors"][:1],
                                    "animatediff_lightning_4step_comfyui.safetensors")
    assert frontend_offers_download("https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/"
                                    "RealESRGAN_x4plus.pth", "RealESRGAN_x4plus.pth")
    assert not frontend_offers_download("https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/"
                                        "RealESRGAN_x2plus.pth", "RealESRGAN_x2plus.pth")
    assert not frontend_offers_download("https://huggingface.co/guoyww/animatediff/resolve/main/v2_lora_ZoomIn.ckpt",
                                        "v2_lora_ZoomIn.ckpt")


def test_node_size_leaves_room_for_what_the_page_draws(generator_defs):
    """Sizes the frontend grew nodes to on frontend 1.39 (ComfyUI 0.14.1); the browser check asserts no overlap."""
    sampler = generator_defs["ADLightning_Sampler"]
    assert node_size("ADLightning_Sampler", sampler, "Lightning Sampler (denoise 0.75: timesteps 749, 499, 249)")[0] \
        >= 427
    assert node_size("ADLightning_Sampler", sampler, "Lightning Sampler")[0] == 320
    assert node_size("LoadVideo", generator_defs["LoadVideo"])[1] >= 287   # with its video preview
    context = generator_defs["ADLightning_ContextOptions"]
    assert node_size("ADLightning_ContextOptions", context)[1] >= 222   # with the extension's window text


def test_generator_rejects_unknown_model_files(generator_defs):
    api = api_twin("t2v_lightning")
    loader = next(k for k, v in api.items() if v["class_type"] == "ADLightning_LoadMotionModule")
    api[loader]["inputs"]["model_name"] = "my_renamed_lightning.safetensors"
    with pytest.raises(ValueError, match="no download source"):
        api_to_ui("t2v_lightning", api, generator_defs)


def test_generator_rejects_a_dangling_link(generator_defs):
    api = api_twin("t2v_lightning")
    sampler = next(k for k, v in api.items() if v["class_type"] == "ADLightning_Sampler")
    api[sampler]["inputs"]["model"] = ["99", 0]
    with pytest.raises(ValueError, match="missing node"):
        api_to_ui("t2v_lightning", api, generator_defs)


def test_generator_rejects_an_unwritten_widget(generator_defs):
    api = api_twin("t2v_upscale")
    sampler = next(k for k, v in api.items() if v["class_type"] == "ADLightning_Sampler")
    del api[sampler]["inputs"]["motion_lora_strength"]
    with pytest.raises(ValueError, match="'motion_lora_strength' has no value in the API twin"):
        api_to_ui("t2v_upscale", api, generator_defs)


def test_twin_check_sees_a_changed_widget_value(generator_defs):
    """The agreement check must fail when one twin drifts (here: the UI's frame count)."""
    ui = ui_twin("t2v_lightning")
    latent = next(n for n in ui["nodes"] if n["type"] == "EmptyLatentImage")
    latent["widgets_values"][2] += 1
    assert ui_to_api(ui, generator_defs) != strip_meta(api_twin("t2v_lightning"))
