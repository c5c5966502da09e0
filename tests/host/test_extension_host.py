"""Host tier: what the pack adds to a user's ComfyUI once it has started, and nothing more.

The extension registers its model folders and the app page's routes in `on_load` (nodes/__init__.py), so they exist
from the first request; importing the pack registers nothing. Lab routes are not on a user's server: the benchmark's
memory route comes only with the benchmark-only custom node (dev/harness/memory_node), loaded when a benchmark asks.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

from dev.harness.comfy_server import ComfyServer, PromptFailed
from dev.harness.models import LIGHTNING_NAME
from tests.host.conftest import comfy_path, load_api, model_files, small


def status_of(server: ComfyServer, path: str, method: str = "GET") -> int:
    request = urllib.request.Request(server.url + path, method=method, data=b"{}" if method == "POST" else None,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_folders_and_app_routes_exist_after_start(server):
    for name in ("animatediff_models", "animatediff_motion_lora"):
        assert (server.base / "models" / name).is_dir()
    info = server.get("/object_info/ADLightning_LoadMotionModule")["ADLightning_LoadMotionModule"]
    options = info["input"]["required"]["model_name"]
    assert LIGHTNING_NAME in (options[0] if isinstance(options[0], list) else options[1]["options"])
    assert status_of(server, "/adlightning/app/") == 200
    assert status_of(server, "/adlightning/app/workflows/t2v_lightning.json") == 200
    assert status_of(server, "/api/adlightning/app/app_logic.js") == 200   # core mounts every route under /api too


def test_no_lab_route_on_a_users_server(server):
    assert status_of(server, "/adlightning/memory") == 404
    assert status_of(server, "/adlightning/memory/reset", "POST") in (404, 405)


def test_the_memory_route_comes_only_with_the_benchmark_node():
    with ComfyServer(comfy_path(), {}, memory_route=True) as srv:
        figures = srv.get("/adlightning/memory")
        assert set(figures) == {"device", "total", "free", "allocated", "peak_allocated", "peak_reserved"}


def test_a_motion_module_left_in_checkpoints_is_named_with_where_it_belongs(server):
    """Core's own check would only say the name is not in the list; the pack's loader says where the file is."""
    misplaced = server.base / "models" / "checkpoints" / "misplaced_lightning_4step.safetensors"
    os.symlink(model_files()["animatediff_models"][LIGHTNING_NAME], misplaced)
    try:
        api = small(load_api("t2v_lightning"), 64, 8)
        [loader] = [k for k, v in api.items() if v["class_type"] == "ADLightning_LoadMotionModule"]
        api[loader]["inputs"]["model_name"] = misplaced.name
        with pytest.raises(PromptFailed, match=r"'misplaced_lightning_4step.safetensors' is in models/checkpoints "
                                               r".*belong in models/animatediff_models"):
            server.queue(api)
    finally:
        misplaced.unlink()
