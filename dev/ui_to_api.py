"""Read a UI-format workflow back into API format, the way the frontend's graphToPrompt does, for twin checks.

Written separately from ui_workflow.py (which goes the other way) so that a mistake in one is caught by the other.
"""
from __future__ import annotations

from dev.node_defs import widget_slots
from dev.ui_workflow import FRONTEND_ONLY_TYPES


def ui_to_api(ui: dict, defs: dict) -> dict:
    links = {link[0]: link for link in ui["links"]}
    api = {}
    for node in ui["nodes"]:
        if node["type"] in FRONTEND_ONLY_TYPES or node.get("mode", 0) != 0:
            continue
        slots = widget_slots(defs[node["type"]])
        values = node.get("widgets_values", [])
        if len(values) != len(slots):
            raise ValueError(f"node {node['id']} ({node['type']}): {len(values)} widget values, "
                             f"its definition has {len(slots)} ({slots})")
        inputs = {name: value for name, value in zip(slots, values) if name is not None}
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                _, origin, origin_slot, target, target_slot, _ = links[slot["link"]]
                if target != node["id"] or node["inputs"][target_slot] is not slot:
                    raise ValueError(f"link {slot['link']} does not end at node {node['id']} input {slot['name']}")
                inputs[slot["name"]] = [str(origin), origin_slot]
        api[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return api
