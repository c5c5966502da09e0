"""Write workflows/<name>.json (UI format) for every API twin workflows/api/<name>.json.

    python -m tools.build_ui_workflows [NAME ...]

Run after adding or changing an API twin; tests/unit/test_workflows.py fails while a twin has no UI file or the two
disagree. Thumbnails (workflows/<name>.jpg) come from the host-tier browser check (tests/host/test_browser.py).
"""
from __future__ import annotations

import json
import sys

from dev.node_defs import REPO, all_defs
from dev.ui_workflow import api_to_ui

WORKFLOWS = REPO / "workflows"


def api_twins() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((WORKFLOWS / "api").glob("*.json"))}


def ui_text(ui: dict) -> str:
    return json.dumps(ui, indent=1, ensure_ascii=False) + "\n"


def main(names: list[str]) -> int:
    twins = api_twins()
    unknown = sorted(set(names) - set(twins))
    if unknown:
        print(f"no API twin for: {', '.join(unknown)}", file=sys.stderr)
        return 2
    defs = all_defs()
    for name in names or twins:
        (WORKFLOWS / f"{name}.json").write_text(ui_text(api_to_ui(name, twins[name], defs)))
        print(f"workflows/{name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
