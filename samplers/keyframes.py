"""Keyframe pinning, as pure functions: where keyframes go, their strengths, the per-frame mask, the latent a pinned
clip starts from, and a reference Euler sampler that pins frames the way ComfyUI core does.

The pinning itself is core's: a LATENT's `noise_mask` makes every sampler step (comfy/samplers.py KSamplerX0Inpaint,
checked on 0.14.1 and 0.30.0) do, for mask m (1 = free, 0 = pinned),

    model input = x * m + (latent + noise * sigma) * (1 - m)   before the model call
    denoised    = denoised * m + latent * (1 - m)              after it

(the sampler's own x is not replaced: Euler steps from it towards the mixed `denoised`)
so a frame with m = 0 is the source latent noised to each step's sigma on the way in, and the source latent itself
on the way out; Euler's last step (to sigma 0) then lands on the source latent to float rounding. The motion module
sees the pinned frames among the free ones and carries their content into them. The pack only builds the mask:
m = 1 - strength per frame. `euler_reference` mirrors core's formula in plain torch for the unit tier; a host test
checks the real sampler against it.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable

import torch


class KeyframeError(ValueError):
    """Keyframe settings that cannot work; the message names the keyframe and the clip's frame count."""

    __module__ = "builtins"   # shown as its own name, not the pack's folder path (see motion/module.py)


_NAMED = {"first": 0, "start": 0, "last": -1, "end": -1}
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def _tokens(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def parse_positions(text: str, frames: int) -> list[int]:
    """Frame indices for a comma-separated list of positions in a clip of `frames` frames.

    A position is a frame index from 0 ("0", "7"), counted from the end when negative ("-1" = the last frame), a
    percentage of the clip ("50%" = frame round(0.5 * (frames - 1)); "0%" the first, "100%" the last), or "first" /
    "last". A position past the clip is refused with the keyframe's number and the clip's frame count.
    """
    if frames < 1:
        raise KeyframeError(f"the clip has {frames} frames; keyframes need at least 1")
    tokens = _tokens(text)
    if not tokens:
        raise KeyframeError("no keyframe positions given: write e.g. 'first', '0', '-1', '50%' or '0, last'")
    result = []
    for number, token in enumerate(tokens, start=1):
        low = token.lower()
        where = f"keyframe {number} ('{token}')"
        if low in _NAMED:
            index = _NAMED[low]
        elif _INTEGER.match(low):
            index = int(low)
        elif (match := _PERCENT.match(low)) is not None:
            percent = float(match.group(1))
            if percent > 100:
                raise KeyframeError(f"{where} is past the end of the clip: percentages go from 0% to 100% "
                                    f"(the clip has {frames} frames)")
            index = int(math.floor(percent / 100 * (frames - 1) + 0.5))
        else:
            raise KeyframeError(f"{where} is not a position: write a frame index (0 = first, -1 = last), a "
                                f"percentage ('50%'), 'first' or 'last'")
        resolved = index + frames if index < 0 else index
        if not 0 <= resolved < frames:
            raise KeyframeError(f"{where} is at frame {index}, past the clip: the clip has {frames} frames "
                                f"(0 to {frames - 1}, or -1 to -{frames} from the end)")
        result.append(resolved)
    seen = {}
    for number, index in enumerate(result, start=1):
        if index in seen:
            raise KeyframeError(f"keyframes {seen[index]} and {number} are both at frame {index}; give each frame "
                                f"one keyframe")
        seen[index] = number
    return result


def parse_strengths(text: str, count: int) -> list[float]:
    """One strength per keyframe from a comma-separated list: one value applies to all; otherwise one per keyframe.
    1 = the frame is the image, 0 = the keyframe has no effect."""
    tokens = _tokens(text)
    if not tokens:
        return [1.0] * count
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        raise KeyframeError(f"strengths '{text}' are not numbers: write e.g. '1.0' or '1.0, 0.8'") from None
    for number, value in enumerate(values, start=1):
        if not 0.0 <= value <= 1.0:
            raise KeyframeError(f"strength {number} ({value}) is outside 0-1 (1 = the frame is the image, 0 = no "
                                f"effect)")
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise KeyframeError(f"{len(values)} strengths for {count} keyframes: give one strength for all or one per "
                            f"keyframe")
    return values


def image_for_keyframe(images: int, keyframes: int) -> list[int]:
    """Which of `images` pictures each keyframe shows: one picture for every keyframe, or one per keyframe."""
    if images == 1:
        return [0] * keyframes
    if images != keyframes:
        raise KeyframeError(f"{images} images for {keyframes} keyframe positions: give one image for all positions "
                            f"or one image per position")
    return list(range(keyframes))


def frame_mask(frames: int, positions: list[int], strengths: list[float]) -> torch.Tensor:
    """Per-frame noise mask, shape (frames,): 1 = free (the sampler makes it), 1 - strength at each keyframe."""
    mask = torch.ones(frames)
    for index, strength in zip(positions, strengths):
        mask[index] = 1.0 - float(strength)
    return mask


def loop_layout(frames: int, positions: list[int], strengths: list[float]) -> tuple[list[int], list[float]]:
    """A loop of `frames` frames sampled as frames + 1: whatever is pinned at frame 0 is pinned at frame `frames`
    too, so the clip's last frame leads into a copy of its first; that extra frame is dropped after sampling."""
    if 0 not in positions:
        raise KeyframeError(f"a loop pins its first frame at both ends of the clip ({frames} frames): give a keyframe "
                            f"at 'first' (frame 0)")
    first = positions.index(0)
    return positions + [frames], strengths + [strengths[first]]


def nearest(index: int, positions: list[int]) -> int:
    """The keyframe (its number in `positions`) nearest to frame `index`; the earlier one on a tie."""
    return min(range(len(positions)), key=lambda k: (abs(positions[k] - index), positions[k]))


def pinned_latent(keyframe_latents: torch.Tensor, frames: int, positions: list[int], strengths: list[float],
                  init: str = "noise") -> torch.Tensor:
    """The latent a pinned clip starts from, (frames, C, h, w). keyframe_latents: one latent per keyframe, in
    `positions` order. init "noise": keyframes with strength > 0 hold their latent, the rest are zeros (the sampler
    adds the noise; a strength-0 keyframe leaves its frame as a plain text-to-video run would). init "image": every
    frame starts from its nearest keyframe's latent (for denoise < 1)."""
    if init not in ("noise", "image"):
        raise KeyframeError(f"init must be 'noise' or 'image', got '{init}'")
    samples = torch.zeros((frames,) + tuple(keyframe_latents.shape[1:]), dtype=keyframe_latents.dtype)
    if init == "image":
        for index in range(frames):
            samples[index] = keyframe_latents[nearest(index, positions)]
        return samples
    for k, (index, strength) in enumerate(zip(positions, strengths)):
        if strength > 0:
            samples[index] = keyframe_latents[k]
    return samples


def spatial_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The per-frame mask as a LATENT noise_mask, (frames, 1, h, w) at the latent's own size: core resizes a mask to
    the latent with bilinear interpolation, which is exact at the same size."""
    return mask.reshape(-1, 1, 1, 1).expand(-1, 1, height, width).contiguous()


def keep_pinned(out: torch.Tensor, latent: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The sampled latent with every fully pinned element (mask exactly 0) set to the source latent.

    Core's last Euler step lands there only to float rounding: x - (x - latent) with |x| as large as the first
    sigma times the noise (about 1e-5 after the latent format's scaling at 1 step from sigma 25), so this makes
    strength 1 mean the source latent bit for bit. Only a mask at the latent's own size (what the pack's keyframe
    nodes make) is used; any other mask, or none, leaves `out` as it is."""
    if mask is None or mask.ndim != out.ndim or mask.shape[-2:] != out.shape[-2:] \
            or mask.shape[0] not in (1, out.shape[0]) or mask.shape[1] not in (1, out.shape[1]):
        return out
    pinned = (mask == 0).to(out.device).expand_as(out)
    if not pinned.any():
        return out
    return torch.where(pinned, latent.to(out.device, out.dtype).expand_as(out), out)


# --- extend -------------------------------------------------------------------------------------------------------

EXTEND_INITS = ("noise", "last_frame")


def check_extend(video_frames: int | None, overlap: int, frames: int) -> None:
    if overlap < 1:
        raise KeyframeError(f"overlap {overlap}: pin at least 1 frame of the previous chunk")
    if overlap >= frames:
        raise KeyframeError(f"overlap {overlap} leaves no new frames in a chunk of {frames} frames: make the overlap "
                            f"smaller than the chunk")
    if video_frames is not None and overlap > video_frames:
        raise KeyframeError(f"overlap {overlap} is more than the video's {video_frames} frames")


def extend_latent(video: torch.Tensor, overlap: int, frames: int, init: str = "noise",
                  strength: float = 1.0) -> torch.Tensor:
    """The next chunk's start latent: its first `overlap` frames are the video's last `overlap`, the rest zeros
    (init "noise") or copies of the video's last frame (init "last_frame", for denoise < 1). At strength 0 with init
    "noise" the overlap frames are zeros too (no effect, as in a plain text-to-video chunk; see pinned_latent)."""
    check_extend(video.shape[0], overlap, frames)
    if init not in EXTEND_INITS:
        raise KeyframeError(f"init must be one of {', '.join(EXTEND_INITS)}, got '{init}'")
    samples = torch.zeros((frames,) + tuple(video.shape[1:]), dtype=video.dtype)
    if strength > 0 or init != "noise":
        samples[:overlap] = video[-overlap:]
    if init == "last_frame":
        samples[overlap:] = video[-1:]
    return samples


def chunk_batch_index(first_frame: int, video_frames: int, overlap: int, frames: int) -> list[int]:
    """Where the new chunk's frames sit in the whole clip: from first_frame + video_frames - overlap on, so that
    core's prepare_noise gives each frame the noise of its place in the whole clip (same seed)."""
    start = first_frame + video_frames - overlap
    return list(range(start, start + frames))


# --- reference sampler --------------------------------------------------------------------------------------------

def euler_reference(denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor,
                    sigmas: torch.Tensor, latent: torch.Tensor, mask: torch.Tensor | None = None,
                    sigma_max: float | None = None, scale: float = 1.0) -> torch.Tensor:
    """Euler sampling of an eps-prediction model with core's per-step pinning, in plain torch (what ComfyUI 0.14.1 /
    0.30.0 do for sample_custom(..., noise_mask=mask) with the "euler" sampler; comfy/samplers.py KSAMPLER.sample,
    KSamplerX0Inpaint, k_diffusion sample_euler, model_sampling EPS.noise_scaling).

    denoise(x, sigma) -> the model's denoised prediction. mask: per frame (frames,) or broadcastable to x, 1 = free.
    sigma_max: the model's largest sigma (start noise scaled by sqrt(1 + sigma^2) when the schedule starts there, as
    core's max_denoise). scale: the latent format's scale factor (core scales a non-empty latent in, and the result
    out).
    """
    if latent.count_nonzero() > 0:
        latent = latent * scale
    s0 = float(sigmas[0])
    max_denoise = sigma_max is not None and (math.isclose(sigma_max, s0, rel_tol=1e-05) or s0 > sigma_max)
    x = noise * (torch.sqrt(1.0 + sigmas[0] ** 2.0) if max_denoise else sigmas[0]) + latent
    m = None
    if mask is not None:
        m = mask.reshape(-1, *([1] * (x.ndim - 1))) if mask.ndim == 1 else mask
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i]
        seen = x   # the model sees x with the pinned part replaced; Euler's own x stays as it was (as in core)
        if m is not None:
            seen = x * m + (noise * sigma + latent) * (1.0 - m)
        denoised = denoise(seen, sigma)
        if m is not None:
            denoised = denoised * m + latent * (1.0 - m)
        d = (x - denoised) / sigma
        x = x + d * (sigmas[i + 1] - sigma)
    return x / scale
