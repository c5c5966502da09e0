"""Small builders for the A/B study tests: a minimal MP4 box structure with ComfyUI-style metadata, a study folder."""
from __future__ import annotations

import json
import struct
from pathlib import Path

from adlightning.study.generate import new_manifest


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def fake_mp4(text: str = '{"motion_module": "animatediff_lightning_4step_comfyui.safetensors"}',
             frames: bytes = b"\x00\x01frame-data") -> bytes:
    """ftyp, moov (mvhd, trak with its own udta, udta/meta/ilst holding the workflow text), mdat: the boxes ComfyUI's
    Save Video writes, minus the sample tables."""
    ilst = box(b"ilst", box(b"----", text.encode()))
    udta = box(b"udta", box(b"meta", b"\x00\x00\x00\x00" + ilst))
    trak = box(b"trak", box(b"tkhd", bytes(20)) + box(b"udta", box(b"name", b"lightning track")))
    return box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2avc1mp41") + box(b"moov", box(b"mvhd", bytes(100)) + trak + udta) \
        + box(b"mdat", frames)


CONFIGS = {"A": {"name": "Lightning 4-step", "workflow": "t2v_lightning", "overrides": {"steps": 4}},
           "B": {"name": "AnimateDiff v2 25 steps", "workflow": "t2v_lightning", "overrides": {"steps": 25}}}


def make_study(folder: Path, n_pairs: int = 4, themes=("sports", "nature"), seed: int = 11,
               study_id: str = "s1") -> dict:
    """A complete study folder (manifest and clip files) without the generator."""
    manifest = new_manifest(study_id, seed, CONFIGS)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    for i in range(n_pairs):
        pid = f"p{i:03d}"
        files = {}
        for side in "AB":
            name = f"clips/{pid}_{side}.mp4"
            (folder / name).write_bytes(fake_mp4())
            files[side] = name
        manifest["pairs"].append({"id": pid, "index": i, "prompt": f"prompt {i}", "theme": themes[i % len(themes)],
                                  "seed": seed + i, "files": files})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return manifest
