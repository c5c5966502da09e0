"""Rewrite tests/fixtures/core_object_info-<version>.json, the core node definitions of one ComfyUI version, from a
live server (the unit tier checks the shipped workflows against them, without ComfyUI).

    COMFYUI_PATH=/opt/hosts/ComfyUI python -m tools.refresh_core_object_info

Run it with the Python environment of that ComfyUI (for 0.30.0 also with the torchaudio stub on PYTHONPATH, as the
host tests need), once per version in dev/node_defs.py CORE_VERSIONS, and after adding a version there. The
version comes from the server. The server starts with no model files, so model-file combos are empty lists; the
pack's own nodes are left out (dev/refresh_pack_object_info.py keeps those).
"""
from __future__ import annotations

import json
import os
import sys

from dev.harness.comfy_server import ComfyServer
from dev.node_defs import CORE_VERSIONS, PACK_PREFIX, REPO, core_dump_path


def core_entries(object_info: dict) -> dict:
    return {name: object_info[name] for name in sorted(object_info) if not name.startswith(PACK_PREFIX)}


def dump_text(entries: dict) -> str:
    # One key or value per line (indent 0): a regenerated dump diffs line by line, at two thirds of indent 1's size.
    return json.dumps(entries, indent=0, sort_keys=True) + "\n"


def main() -> int:
    path = os.environ.get("COMFYUI_PATH")
    if not path:
        print(f"set COMFYUI_PATH to a ComfyUI checkout (tested versions: {', '.join(CORE_VERSIONS)})", file=sys.stderr)
        return 2
    with ComfyServer(path, models={}) as srv:
        version = srv.get("/system_stats")["system"]["comfyui_version"]
        entries = core_entries(srv.get("/object_info"))
    target = core_dump_path(version)
    target.write_text(dump_text(entries))
    print(f"wrote {len(entries)} core node definitions of ComfyUI {version} to {target.relative_to(REPO)}")
    if version not in CORE_VERSIONS:
        print(f"note: {version} is not in dev/node_defs.py CORE_VERSIONS, so no test reads it yet", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
