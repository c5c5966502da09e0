"""Host tier: every API twin in workflows/api/ runs in a real ComfyUI (random weights, 64 px), and the committed dump
of this pack's node definitions (used offline by the unit tier) matches what the live server reports."""
from __future__ import annotations

import json

import pytest

from tests.host.conftest import nodes_of, small
from dev.node_defs import PACK_DUMP, REPO
from dev.refresh_pack_object_info import dump_text, pack_entries
from dev.ui_workflow import MODEL_SUFFIXES

API_NAMES = sorted(p.stem for p in (REPO / "workflows" / "api").glob("*.json"))
TEST_FRAMES = 8   # enough to exercise the temporal layers; context-window twins keep their own frame count


def without_model_files(entries: dict) -> dict:
    """Model-file combos list whatever files the server has; the dump is made with none."""
    entries = json.loads(json.dumps(entries))
    for entry in entries.values():
        for group in entry["input"].values():
            for spec in group.values():
                if len(spec) > 1 and isinstance(spec[1], dict) and spec[1].get("options") is not None \
                        and any(str(o).endswith(MODEL_SUFFIXES) for o in spec[1]["options"]):
                    spec[1]["options"] = []
    return entries


def without_newer_fields(entries: dict, dump: dict) -> dict:
    """The dump is made on the oldest core. A newer core's serializer adds fields to every node (0.30:
    essentials_category, has_intermediate_output); the pack sets none of them, so they must be empty, and are
    dropped before comparing."""
    known = set().union(*(entry.keys() for entry in dump.values()))
    for name, entry in entries.items():
        for key in set(entry) - known:
            assert entry[key] in (None, False, "", [], {}), f"{name}.{key} = {entry[key]!r}: set by the pack?"
            del entry[key]
    return entries


def test_pack_object_info_dump_is_current(server):
    text = PACK_DUMP.read_text()
    live = without_newer_fields(without_model_files(pack_entries(server.get("/object_info"))), json.loads(text))
    assert dump_text(live) == text, \
        "tests/fixtures/pack_object_info.json is stale: run python -m dev.refresh_pack_object_info"


@pytest.mark.parametrize("name", API_NAMES)
def test_api_twin_runs(server, name):
    api = json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())
    if nodes_of(api, "LoadVideo"):
        pytest.skip(f"{name} needs a source video: tests/host/test_v2v_host.py runs it on one it makes")
    if nodes_of(api, "LoadImage"):
        pytest.skip(f"{name} needs an input image: tests/host/test_keyframes_host.py runs it on one it makes")
    has_windows = any("Context" in node["class_type"] for node in api.values())
    entry = server.run(small(api, 64, None if has_windows else TEST_FRAMES))
    saved = server.output_files(entry)
    assert saved, f"{name}: no output saved: {entry.get('outputs')}"
    for path in saved:
        assert path.stat().st_size > 0
    assert nodes_of(api, "SaveAnimatedWEBP") or nodes_of(api, "SaveVideo") or nodes_of(api, "SaveWEBM")
