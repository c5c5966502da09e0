"""Keyframe pinning nodes: start from an image, loop, extend a clip. They only build a LATENT (samples + a per-frame
noise_mask, + batch_index for chunks); core's sampler does the per-step pinning (samplers/keyframes.py)."""
import torch
from comfy_api.latest import io

from ..samplers import keyframes as kf
from .types import CATEGORY

MAX_FRAMES = 4096

FRAMES_TOOLTIP = "Frames in the clip (16 is what Lightning was trained on; more need context windows on the sampler)."
POSITIONS_TOOLTIP = ("Where the keyframes go, comma-separated: a frame index (0 = first; -1 = last, counted from the "
                     "end), a percentage of the clip ('50%'), 'first' or 'last'. One image for every position, or "
                     "one image per position (in the batch's order).")
STRENGTHS_TOOLTIP = ("How firmly each keyframe holds, comma-separated (one value for all, or one per position): 1 = "
                     "the frame is the image, lower lets the sampler move away from it, 0 = no effect.")
INIT_TOOLTIP = ("noise: the free frames start from noise (text-to-video around the keyframes; use denoise 1.0). "
                "image: every frame starts from its nearest keyframe; use the sampler's denoise below 1.0 (it stays "
                "on Lightning's trailing grid), lower keeps more of the image in every frame.")
LOOP_TOOLTIP = ("Make the last frame lead into the first: the keyframe at 'first' is pinned again one frame after "
                "the end, so the LATENT has frames + 1 frames; drop that extra frame after sampling (Latent From "
                "Batch, batch_index 0, length = frames) so the clip plays in a loop with no jump.")


def _encode(vae, image: torch.Tensor) -> torch.Tensor:
    """One latent per image. Core's VAE.encode crops the image to a multiple of 8 px (centred) and drops alpha, as
    its VAE Encode node does; an image under 8 px a side would encode to nothing, so it is refused here."""
    if image.shape[1] < 8 or image.shape[2] < 8:
        raise kf.KeyframeError(f"a keyframe image of {image.shape[2]}x{image.shape[1]} px is smaller than one "
                               f"latent pixel (8x8)")
    return vae.encode(image)


def _check(text, frames, strengths):
    positions = kf.parse_positions(text, frames)
    kf.parse_strengths(strengths, len(positions))
    return positions


class PinFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_PinFrames",
            display_name="AnimateDiff-Lightning Pin Frames",
            category=CATEGORY,
            description="Keyframes for the Lightning sampler: the images are encoded and pinned at their frames at "
                        "every sampler step (core's noise mask), the motion module fills the frames between. Image "
                        "to video (one image at 'first'), a loop, or several keyframes. The clip takes the image's "
                        "size (cropped to a multiple of 8 px).",
            inputs=[
                io.Vae.Input("vae", tooltip="The checkpoint's VAE (encodes the keyframe images)."),
                io.Image.Input("image", tooltip="One keyframe image, or a batch with one image per position."),
                io.Int.Input("frames", default=16, min=1, max=MAX_FRAMES, tooltip=FRAMES_TOOLTIP),
                io.String.Input("positions", default="first", tooltip=POSITIONS_TOOLTIP),
                io.String.Input("strengths", default="1.0", tooltip=STRENGTHS_TOOLTIP),
                io.Combo.Input("init", options=["noise", "image"], default="noise", tooltip=INIT_TOOLTIP),
                io.Boolean.Input("loop", default=False, tooltip=LOOP_TOOLTIP),
            ],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def validate_inputs(cls, frames=None, positions=None, strengths=None):
        # Checked when the prompt is queued, so a keyframe past the clip is named before any model loads. Only these
        # three are named: ComfyUI skips its own checks for every input named here (all of them with **kwargs).
        if isinstance(frames, int) and isinstance(positions, str) and isinstance(strengths, str):
            if not 1 <= frames <= MAX_FRAMES:
                return f"frames {frames} is outside 1-{MAX_FRAMES}"
            try:
                _check(positions, frames, strengths)
            except kf.KeyframeError as error:
                return str(error)
        return True

    @classmethod
    def execute(cls, vae, image, frames, positions, strengths, init, loop) -> io.NodeOutput:
        where = kf.parse_positions(positions, frames)
        how = kf.parse_strengths(strengths, len(where))
        which = kf.image_for_keyframe(image.shape[0], len(where))
        if loop:
            where, how = kf.loop_layout(frames, where, how)
            which = which + [which[where.index(0)]]
        encoded = _encode(vae, image).float().cpu()
        keys = encoded[which]
        total = frames + 1 if loop else frames
        samples = kf.pinned_latent(keys, total, where, how, init)
        mask = kf.spatial_mask(kf.frame_mask(total, where, how), samples.shape[-2], samples.shape[-1])
        return io.NodeOutput({"samples": samples, "noise_mask": mask})


class ExtendVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_ExtendVideo",
            display_name="AnimateDiff-Lightning Extend Video",
            category=CATEGORY,
            description="The next chunk of a clip: its first `overlap` frames are the video's last ones, pinned; the "
                        "sampler makes the rest (same or a new prompt). Memory stays that of one chunk. Join Chunks "
                        "drops the overlap again before decoding.",
            inputs=[
                io.Latent.Input("video", tooltip="The previous chunk's sampled LATENT (e.g. from the sampler, or core "
                                                 "Load Latent of a saved one)."),
                io.Int.Input("overlap", default=4, min=1, max=MAX_FRAMES,
                             tooltip="K: the video's last K frames are pinned at the start of the new chunk (the "
                                     "motion module continues their motion)."),
                io.Int.Input("frames", default=16, min=2, max=MAX_FRAMES,
                             tooltip="The new chunk's length, the overlap included (16 is what Lightning was "
                                     "trained on)."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="How firmly the overlap frames hold: 1 = they are the video's frames."),
                io.Combo.Input("init", options=list(kf.EXTEND_INITS), default="noise",
                               tooltip="noise: the new frames start from noise (denoise 1.0). last_frame: they start "
                                       "from the video's last frame, for the sampler's denoise below 1.0."),
                io.Int.Input("first_frame", default=0, min=0, max=1 << 30,
                             tooltip="Where the video's first frame sits in the whole clip (0 for the first chunk). "
                                     "The new chunk's frames get their places (batch_index), so each gets the noise "
                                     "of its place in the whole clip with the same seed."),
            ],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def validate_inputs(cls, overlap=None, frames=None):
        if isinstance(overlap, int) and isinstance(frames, int):
            try:
                kf.check_extend(None, overlap, frames)
            except kf.KeyframeError as error:
                return str(error)
        return True

    @classmethod
    def execute(cls, video, overlap, frames, strength, init, first_frame) -> io.NodeOutput:
        source = video["samples"]
        samples = kf.extend_latent(source.float().cpu(), overlap, frames, init, strength)
        mask = kf.frame_mask(frames, list(range(overlap)), [strength] * overlap)
        return io.NodeOutput({
            "samples": samples,
            "noise_mask": kf.spatial_mask(mask, samples.shape[-2], samples.shape[-1]),
            "batch_index": kf.chunk_batch_index(first_frame, source.shape[0], overlap, frames),
        })


class JoinChunks(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_JoinChunks",
            display_name="AnimateDiff-Lightning Join Chunks",
            category=CATEGORY,
            description="A sampled chunk without its first `overlap` frames (they repeat the previous chunk), so "
                        "only the new frames are decoded and saved; with `previous`, the previous frames and the new "
                        "ones as one clip.",
            inputs=[
                io.Latent.Input("chunk", tooltip="The sampled chunk (the sampler's LATENT after Extend Video)."),
                io.Int.Input("overlap", default=4, min=0, max=MAX_FRAMES,
                             tooltip="The overlap given to Extend Video: these first frames are dropped."),
                io.Latent.Input("previous", optional=True,
                                tooltip="Optional: the clip so far (e.g. the first chunk's LATENT); the new frames "
                                        "are appended to it."),
            ],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, chunk, overlap, previous=None) -> io.NodeOutput:
        samples = chunk["samples"]
        if overlap >= samples.shape[0]:
            raise kf.KeyframeError(f"overlap {overlap} is the whole chunk ({samples.shape[0]} frames): nothing new "
                                   f"to join")
        new = samples[overlap:]
        if previous is None:
            result = {"samples": new}
            if chunk.get("batch_index") is not None:
                result["batch_index"] = list(chunk["batch_index"])[overlap:]
            return io.NodeOutput(result)
        before = previous["samples"]
        if before.shape[1:] != new.shape[1:]:
            raise kf.KeyframeError(f"previous frames are {tuple(before.shape[1:])}, the chunk's "
                                   f"{tuple(new.shape[1:])}: join chunks of one clip")
        return io.NodeOutput({"samples": torch.cat([before, new.to(before.device, before.dtype)])})
