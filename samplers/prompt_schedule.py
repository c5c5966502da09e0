"""Prompt travel: parse a keyframe schedule ("0: a seed in the soil", "50%: a sprout", one per line) and interpolate
per-keyframe text embeddings into one embedding per frame.

Pure torch, so it is tested without ComfyUI; nodes/prompt_nodes.py encodes each keyframe with core's CLIP encode and
hands the embeddings to interpolate().

Schedule text, one keyframe per line:
  * `<frame>: <prompt>` with a 0-based frame index, or `<percent>%: <prompt>` where 0% is the first frame and 100% the
    last (rounded to the nearest frame);
  * blank lines and lines starting with `#` are skipped; keyframes may come in any order;
  * FizzNodes-style lines (`"0": "a prompt",`) are accepted as well: the quotes and the trailing comma are dropped;
  * a keyframe past the last frame still counts: the frames before it travel towards its prompt;
  * two keyframes on the same frame are an error (naming both lines), not a silent "last one wins".
Frame k gets the prompt of the keyframes around it: before the first keyframe the first prompt, after the last the
last prompt, in between either `hold` (the earlier keyframe's embedding) or `linear`
((1 - t) * earlier + t * later, t = (k - earlier frame) / (later frame - earlier frame)).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

INTERPOLATIONS = ("linear", "hold")
EXAMPLE = "'0: a seed in the soil' or '50%: a sprout'"

_LINE = re.compile(r'^"?\s*(?P<key>[^":]*?)\s*"?\s*:\s*(?P<prompt>.*)$')
_INDEX = re.compile(r"^\d+$")
_PERCENT = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*%$")


class ScheduleError(ValueError):
    """Schedule text that cannot be read; the message names the line and says how to write it."""

    __module__ = "builtins"   # shown as its own name, not the pack's folder path (see motion/module.py)


@dataclass(frozen=True)
class Keyframe:
    line: int          # 1-based line number in the schedule text, for messages
    value: float       # frame index, or percent of the clip when percent is True
    percent: bool
    prompt: str

    def frame(self, frames: int) -> int:
        """The 0-based frame this keyframe sits on in a clip of `frames` frames (may be past the last frame)."""
        if not self.percent:
            return int(self.value)
        return int(math.floor(self.value / 100.0 * (frames - 1) + 0.5))


def _prompt_text(text: str) -> str:
    text = text.strip()
    if text.endswith(","):
        text = text[:-1].rstrip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text


def parse(text: str) -> list[Keyframe]:
    """Keyframes in the order written. Raises ScheduleError naming the first bad line."""
    keyframes = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or line in ("{", "}"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ScheduleError(f"schedule line {number}: '{line}' is not 'frame: prompt' (write e.g. {EXAMPLE})")
        key = match["key"].strip()
        if _INDEX.match(key):
            value, percent = float(int(key)), False
        elif _PERCENT.match(key):
            value, percent = float(_PERCENT.match(key)[1]), True
        else:
            raise ScheduleError(
                f"schedule line {number}: '{key}' is not a frame: use a whole frame number from 0 (e.g. '24') or a "
                f"percentage of the clip (e.g. '50%'), as in {EXAMPLE}")
        keyframes.append(Keyframe(line=number, value=value, percent=percent, prompt=_prompt_text(match["prompt"])))
    if not keyframes:
        raise ScheduleError(f"the schedule has no keyframes; write one per line, e.g. {EXAMPLE}")
    return keyframes


def resolve(keyframes: list[Keyframe], frames: int) -> list[tuple[int, Keyframe]]:
    """(frame, keyframe) sorted by frame for a clip of `frames` frames; two keyframes on one frame are an error."""
    if frames < 1:
        raise ScheduleError(f"frame count must be at least 1, got {frames}")
    placed = sorted(((k.frame(frames), k) for k in keyframes), key=lambda p: (p[0], p[1].line))
    for (frame_a, a), (frame_b, b) in zip(placed, placed[1:]):
        if frame_a == frame_b:
            first, second = sorted((a, b), key=lambda k: k.line)
            raise ScheduleError(
                f"schedule line {second.line}: frame {frame_b} already has a prompt (line {first.line}) in a "
                f"{frames}-frame clip; give each keyframe its own frame")
    return placed


def with_prefix_suffix(prompt: str, prefix: str = "", suffix: str = "") -> str:
    """prefix, prompt and suffix joined with ", " (empty parts left out), so shared words reach every keyframe."""
    return ", ".join(part for part in (prefix.strip(), prompt.strip(), suffix.strip()) if part)


def frame_mix(frame: int, keyframe_frames: list[int], mode: str) -> tuple[int, int, float]:
    """(earlier keyframe index, later keyframe index, t): frame's embedding is (1 - t) * E[earlier] + t * E[later].
    t == 0 means exactly E[earlier]."""
    if mode not in INTERPOLATIONS:
        raise ScheduleError(f"interpolation '{mode}' is not one of {', '.join(INTERPOLATIONS)}")
    if frame <= keyframe_frames[0]:
        return 0, 0, 0.0
    last = len(keyframe_frames) - 1
    if frame >= keyframe_frames[last]:
        return last, last, 0.0
    i = max(j for j, f in enumerate(keyframe_frames) if f <= frame)
    if mode == "hold" or frame == keyframe_frames[i]:
        return i, i, 0.0
    return i, i + 1, (frame - keyframe_frames[i]) / (keyframe_frames[i + 1] - keyframe_frames[i])


def equal_token_lengths(embeddings: list[torch.Tensor]) -> list[torch.Tensor]:
    """Embeddings (1, tokens, C) of prompts longer than one 77-token chunk have more tokens; repeat each up to the
    least common multiple of the lengths, as core's CONDCrossAttn.concat does when it batches conds of different
    lengths (attention over keys repeated whole is unchanged), so keyframes can be mixed token by token."""
    length = math.lcm(*(e.shape[1] for e in embeddings))
    return [e if e.shape[1] == length else e.repeat(1, length // e.shape[1], 1) for e in embeddings]


def interpolate(embeddings: list[torch.Tensor], keyframe_frames: list[int], frames: int, mode: str) -> torch.Tensor:
    """One embedding per frame: (frames, *rest) from per-keyframe embeddings (1, *rest) at sorted keyframe_frames."""
    if len(embeddings) != len(keyframe_frames):
        raise ValueError("one embedding per keyframe")
    out = []
    for frame in range(frames):
        i, j, t = frame_mix(frame, keyframe_frames, mode)
        out.append(embeddings[i] if t == 0.0 else embeddings[i] * (1.0 - t) + embeddings[j] * t)
    return torch.cat(out, dim=0)
