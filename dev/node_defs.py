"""Node definitions (ComfyUI's GET /object_info shape) for offline workflow checks and for building UI workflows.

Two sources, merged:
  * core: tests/fixtures/core_object_info-<version>.json, one dump of a stock ComfyUI per tested version, written
    from a live server by refresh_core_object_info.py;
  * this pack: tests/fixtures/pack_object_info.json, dumped from a live server by refresh_pack_object_info.py and
    kept current by a host test (the V3 schemas need ComfyUI to import, which the unit tier does not have).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
PACK_DUMP = FIXTURES / "pack_object_info.json"
PACK_PREFIX = "ADLightning_"
# The ComfyUI versions the pack is tested on (README "Testing"); the first is the oldest supported
# (pyproject requires-comfyui), which the UI workflows are generated against.
CORE_VERSIONS = ("0.14.1", "0.30.0")
OLDEST = CORE_VERSIONS[0]

# Widget-capable input types; every other type (MODEL, LATENT, ADLIGHTNING_...) is a socket that takes a link.
# COMFY_DYNAMICCOMBO_V3 (0.30's Save Video codec) is a combo whose options are {key, inputs}: a widget holding the key,
# plus the chosen option's own inputs (none for the "auto" the workflows use).
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "COMFY_DYNAMICCOMBO_V3"}
# Inputs with these flags get one more, serialized widget after them in the frontend (the upload button's value).
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload")


def core_dump_path(version: str = OLDEST) -> Path:
    return FIXTURES / f"core_object_info-{version}.json"


@lru_cache(maxsize=None)
def core_defs(version: str = OLDEST) -> dict:
    return json.loads(core_dump_path(version).read_text())


@lru_cache(maxsize=1)
def pack_defs() -> dict:
    return json.loads(PACK_DUMP.read_text())


def all_defs(version: str = OLDEST) -> dict:
    """Core nodes of ComfyUI `version` plus this pack's."""
    return {**core_defs(version), **pack_defs()}


def ordered_inputs(defn: dict) -> list[tuple[str, list]]:
    """(name, spec) in the order the frontend creates slots and widgets: required, then optional, per input_order."""
    out = []
    for group in ("required", "optional"):
        specs = defn["input"].get(group, {})
        for name in defn.get("input_order", {}).get(group, list(specs)):
            out.append((name, specs[name]))
    return out


def is_widget(spec: list) -> bool:
    kind = spec[0]
    options = spec[1] if len(spec) > 1 else {}
    if options.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in WIDGET_TYPES


def widget_slots(defn: dict) -> list[str | None]:
    """Names behind a UI node's widgets_values, in order. None marks a frontend-only value (control_after_generate,
    an upload button) that has no API input."""
    slots: list[str | None] = []
    for name, spec in ordered_inputs(defn):
        if not is_widget(spec):
            continue
        slots.append(name)
        options = spec[1] if len(spec) > 1 else {}
        if options.get("control_after_generate"):
            slots.append(None)
        if any(options.get(flag) for flag in UPLOAD_FLAGS):
            slots.append(None)
    return slots


def socket_inputs(defn: dict) -> list[tuple[str, str]]:
    """(name, type) of the inputs that are link slots, in slot order."""
    return [(name, spec[0]) for name, spec in ordered_inputs(defn) if not is_widget(spec)]
