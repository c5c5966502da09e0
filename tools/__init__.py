"""Command-line tools for users of the pack: `client.py` (queue a workflow on ComfyUI and download the clip),
`evaluate.py` (clip metrics), `study.py` (the blind A/B study).

Run them from the pack's folder with ComfyUI's Python, as modules: `python -m tools.evaluate clip.mp4`.
(`client.py` uses only the standard library and also runs as a plain file: `python tools/client.py ...`.)

Importing this package loads the pack itself as the package `adlightning`: the pack's code imports its own folders
relatively, as it does when ComfyUI loads it, so the tools, the benchmarks (dev/) and the tests import product code
one way, `adlightning.<folder>.<module>`, never a folder as a top-level package.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACK_NAME = "adlightning"
PACK_DIR = Path(__file__).resolve().parents[1]


def load_pack():
    """The pack as the package `adlightning` (loaded once per process; its __init__ imports nothing of ComfyUI)."""
    if PACK_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(PACK_NAME, PACK_DIR / "__init__.py",
                                                      submodule_search_locations=[str(PACK_DIR)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACK_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[PACK_NAME]


load_pack()
