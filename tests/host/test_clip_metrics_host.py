"""Host tier: the Clip Metrics node at the end of the shipped t2v graph (64 px) in a real ComfyUI, and a mismatched
reference refused with a message naming it."""
from __future__ import annotations

import re

import pytest

from dev.harness.comfy_server import PromptFailed
from tests.host.conftest import load_api, small


def metrics_node(images: list, reference: list | None = None) -> dict:
    inputs = {"images": images}
    if reference is not None:
        inputs["reference"] = reference
    return {"class_type": "ADLightning_ClipMetrics", "inputs": inputs}


def table_rows(table: str) -> dict[str, str]:
    """metric label -> value text of format_table's output (columns are separated by 2+ spaces)."""
    return {re.split(r"\s{2,}", line)[0]: re.split(r"\s{2,}", line)[1] for line in table.splitlines()[2:]}


def test_clip_metrics_on_a_generated_clip(server):
    pytest.importorskip("cv2", reason="Clip Metrics needs opencv-python-headless in ComfyUI's Python")
    api = small(load_api("t2v_lightning"), size=64, frames=8)
    decode = [k for k, v in api.items() if v["class_type"] == "VAEDecode"][0]
    api["100"] = metrics_node([decode, 0])
    api["101"] = metrics_node([decode, 0], reference=[decode, 0])
    entry = server.run(api)
    alone, versus_itself = entry["outputs"]["100"]["text"][0], entry["outputs"]["101"]["text"][0]
    rows, rows_alone = table_rows(versus_itself), table_rows(alone)
    assert rows["frames"] == "8"
    assert float(rows["motion amplitude (mean flow)"]) >= 0.0
    assert 0.0 < float(rows["pixels with reliable flow"]) <= 1.0
    assert rows["PSNR vs reference, mean"] == "inf" and rows["SSIM vs reference, mean"] == "1"
    assert "PSNR" not in alone
    # the rows the two nodes share are the same numbers: one clip, one computation
    assert {k: v for k, v in rows.items() if "reference" not in k} == rows_alone


def test_a_mismatched_reference_is_named(server):
    pytest.importorskip("cv2", reason="Clip Metrics needs opencv-python-headless in ComfyUI's Python")
    api = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 3, "color": 0x3070B0}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 2, "color": 0x3070B0}},
        "3": metrics_node(["1", 0], reference=["2", 0]),
    }
    with pytest.raises(PromptFailed) as err:
        server.run(api)
    assert "reference clip must match" in str(err.value) or "reference clip must match" in str(err.value.detail)
