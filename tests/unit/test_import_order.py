"""Every module of the pure-torch folders imports on its own, first, and brings no ComfyUI module with it. A module
that only works when a sibling was imported before it (an import cycle) passes every test that happens to import the
sibling first; this catches it."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE_FOLDERS = ("motion", "samplers", "frames", "metrics", "upscaling")

# One fresh interpreter: for each module, forget every submodule of the pack, import that module first, and record
# the error or the ComfyUI modules it pulled in (torch stays imported, so each import is quick).
PROBE = """
import importlib, json, sys, tools
tools.load_pack()
report = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.startswith("adlightning.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
        report[name] = sorted(m for m in sys.modules if m.split(".")[0] in ("comfy", "comfy_api", "folder_paths"))
    except Exception as e:
        report[name] = f"{type(e).__name__}: {e}"
print(json.dumps(report))
"""


def test_every_pure_module_imports_first_and_alone():
    modules = sorted(f"adlightning.{p.parent.name}.{p.stem}" for folder in PURE_FOLDERS
                     for p in (ROOT / folder).glob("*.py") if p.stem != "__init__")
    assert "adlightning.motion.windows" in modules and "adlightning.samplers.windows" in modules
    result = subprocess.run([sys.executable, "-c", PROBE, *modules], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {name: [] for name in modules}
