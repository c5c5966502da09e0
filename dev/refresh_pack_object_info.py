"""Rewrite tests/fixtures/pack_object_info.json from a live ComfyUI with this pack loaded.

    COMFYUI_PATH=/opt/hosts/ComfyUI python -m dev.refresh_pack_object_info

Run after adding or changing a node's inputs; tests/host/test_shipped_workflows.py fails until the dump matches.
The server starts with no model files, so model-file combos are empty lists, as in core's shared dump.
"""
from __future__ import annotations

import json
import os
import sys

from dev.harness.comfy_server import ComfyServer
from dev.node_defs import PACK_DUMP, PACK_PREFIX


def pack_entries(object_info: dict) -> dict:
    return {name: object_info[name] for name in sorted(object_info) if name.startswith(PACK_PREFIX)}


def dump_text(entries: dict) -> str:
    return json.dumps(entries, indent=1, sort_keys=True) + "\n"


def main() -> int:
    path = os.environ.get("COMFYUI_PATH")
    if not path:
        print("set COMFYUI_PATH to a ComfyUI 0.14.1 checkout", file=sys.stderr)
        return 2
    with ComfyServer(path, models={}) as srv:
        entries = pack_entries(srv.get("/object_info"))
    PACK_DUMP.write_text(dump_text(entries))
    print(f"wrote {len(entries)} node definitions to {PACK_DUMP.relative_to(PACK_DUMP.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
