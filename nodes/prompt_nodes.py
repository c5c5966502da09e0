"""Prompt travel: a keyframe schedule of prompts -> CONDITIONING with one text embedding per frame.

Each keyframe is encoded exactly as core's CLIPTextEncode does (clip.tokenize + encode_from_tokens_scheduled), so
weighting like "(red:1.3)" and embeddings keep working; samplers/prompt_schedule.py parses and interpolates. The
CONDITIONING is one entry whose tensors have one row per frame; ComfyUI gives the UNet frame k's row for latent k, and
with context windows core's handler cuts the rows to each window's frames (nodes/context_handler.py).
"""
from comfy_api.latest import io

from ..samplers import prompt_schedule as ps
from .types import CATEGORY

SCHEDULE_TOOLTIP = ("One keyframe per line, 'frame: prompt'. The frame is a number from 0 or a percentage of the clip "
                    "(0% = first frame, 100% = last), e.g.\n0: a seed in the soil\n24: a green sprout\n"
                    "100%: a flower in bloom\nFrames before the first keyframe get its prompt, frames after the last "
                    "get the last one; a keyframe past the last frame still pulls the frames before it towards its "
                    "prompt. Blank lines and lines starting with # are skipped; weights like (red:1.3) work as in "
                    "CLIP Text Encode.")


class PromptTravel(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_PromptTravel",
            display_name="AnimateDiff-Lightning Prompt Travel",
            category=CATEGORY,
            description="Prompts that change over the clip: encodes every keyframe's prompt and blends them into one "
                        "text embedding per frame (CONDITIONING for the sampler's positive input). Works with and "
                        "without context windows; the negative prompt can stay a plain CLIP Text Encode.",
            inputs=[
                io.Clip.Input("clip", tooltip="The checkpoint's CLIP."),
                io.String.Input("schedule", multiline=True, default="0: a seed in the soil\n24: a green sprout",
                                tooltip=SCHEDULE_TOOLTIP),
                io.Combo.Input("interpolation", options=list(ps.INTERPOLATIONS), default="linear",
                               tooltip="linear: frames between two keyframes blend their embeddings, so the clip "
                                       "morphs from one prompt to the next. hold: each prompt holds until the next "
                                       "keyframe, then switches."),
                io.Int.Input("frames", default=16, min=1, max=4096,
                             tooltip="Frame count of the clip (percent keyframes are placed on it). Ignored when a "
                                     "latent is connected: then the latent's frame count is used."),
                io.String.Input("prefix", default="", optional=True,
                                tooltip="Text put before every keyframe's prompt (joined with ', '), e.g. the style "
                                        "shared by all keyframes."),
                io.String.Input("suffix", default="", optional=True,
                                tooltip="Text put after every keyframe's prompt (joined with ', ')."),
                io.Latent.Input("latent", optional=True,
                                tooltip="Optional: the sampler's latent, to take the frame count from it (one latent "
                                        "per frame)."),
            ],
            outputs=[io.Conditioning.Output(display_name="CONDITIONING")],
        )

    @classmethod
    def validate_inputs(cls, schedule=None):
        # Checked when the prompt is queued, so a bad line is reported before any model loads. Only `schedule` is
        # named: ComfyUI skips its own checks for every input named here (all of them, with **kwargs), and the
        # interpolation combo and frame range need core's.
        if isinstance(schedule, str):
            try:
                ps.parse(schedule)
            except ps.ScheduleError as error:
                return str(error)
        return True

    @classmethod
    def execute(cls, clip, schedule, interpolation, frames, prefix="", suffix="", latent=None) -> io.NodeOutput:
        if clip is None:
            raise RuntimeError("Prompt Travel: the clip input is empty; connect the checkpoint loader's CLIP")
        if latent is not None:
            frames = int(latent["samples"].shape[0])
        keyframes = ps.resolve(ps.parse(schedule), frames)
        embeddings, pooled, extras = [], [], None
        for _, keyframe in keyframes:
            text = ps.with_prefix_suffix(keyframe.prompt, prefix, suffix)
            encoded = clip.encode_from_tokens_scheduled(clip.tokenize(text))
            if len(encoded) != 1:
                raise RuntimeError("Prompt Travel: this CLIP has scheduled hooks (several encodings per prompt); "
                                   "encode the prompts with CLIP Text Encode instead")
            cond, extra = encoded[0]
            embeddings.append(cond)
            pooled.append(extra.get("pooled_output"))
            extras = extras if extras is not None else extra
        frame_numbers = [frame for frame, _ in keyframes]
        out = dict(extras)
        if all(p is not None for p in pooled):
            out["pooled_output"] = ps.interpolate(pooled, frame_numbers, frames, interpolation)
        cond = ps.interpolate(ps.equal_token_lengths(embeddings), frame_numbers, frames, interpolation)
        return io.NodeOutput([[cond, out]])
