"""Context-window options for the Lightning sampler (long clips in overlapping windows)."""
from comfy_api.latest import io

from ..samplers import windows as win
from .types import CATEGORY, ContextOptions

SCHEDULE_TOOLTIP = ("uniform: the windows shift by 0, 1/2, 1/4, 3/4 of a stride over the 4 steps, so no seam stays "
                    "in one place (fewest visible seams, about 15% more windows). static: the same evenly spread "
                    "windows at every step (fewest windows). looped: windows wrap around so the last frames blend "
                    "into the first, for clips that loop.")
FUSE_TOOLTIP = ("How overlapping windows are blended. overlap-linear: a linear crossfade over the shared frames "
                "(fewest seams). pyramid: each window trusts its middle frames most. flat: equal weights, which "
                "leaves a visible step where a window ends.")
MODE_TOOLTIP = ("Where the windows go. motion module: the UNet runs once per step on every frame and only the motion "
                "module's attention works in windows (no repeated per-frame work, fewer visible seams; falls back to "
                "whole UNet when all frames at once would not fit in memory). whole UNet: the whole UNet runs once "
                "per window, as in earlier versions of the pack (least memory).")
NOISE_TOOLTIP = ("plain: independent noise for every frame. freenoise: every window starts from the same noise "
                 "frames in a shuffled order (FreeNoise), which keeps windows closer in content.")


class ContextOptionsNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_ContextOptions",
            display_name="AnimateDiff-Lightning Context Windows",
            category=CATEGORY,
            description="Lets the Lightning sampler make clips longer than the motion module's 16-frame training "
                        "length: each step denoises overlapping windows of frames and blends them. Connect to the "
                        "sampler's context_options input.",
            inputs=[
                io.Int.Input("context_length", default=win.DEFAULT_LENGTH, min=2, max=64,
                             tooltip="Frames the motion module sees at once. 16 is what Lightning was trained on; "
                                     "at most the motion module's position table (32 for Lightning)."),
                io.Int.Input("context_overlap", default=win.DEFAULT_OVERLAP, min=0, max=63,
                             tooltip="Frames shared by neighbouring windows, where they are blended (must be below "
                                     "context_length). More overlap hides seams better but runs more windows."),
                io.Combo.Input("schedule", options=list(win.SCHEDULES), default=win.DEFAULT_SCHEDULE,
                               tooltip=SCHEDULE_TOOLTIP),
                io.Combo.Input("fuse_method", options=list(win.FUSE_METHODS), default=win.DEFAULT_FUSE,
                               tooltip=FUSE_TOOLTIP),
                io.Combo.Input("noise", options=list(win.NOISE_TYPES), default=win.DEFAULT_NOISE,
                               tooltip=NOISE_TOOLTIP),
                io.Combo.Input("mode", options=list(win.MODES), default=win.DEFAULT_MODE, optional=True,
                               tooltip=MODE_TOOLTIP),
            ],
            outputs=[ContextOptions.Output(display_name="CONTEXT_OPTIONS")],
        )

    @classmethod
    def validate_inputs(cls, context_length=None, context_overlap=None):
        # Checked when the prompt is queued, so a bad overlap is reported before any model loads. ComfyUI attaches a
        # failure to every input this signature names (a **kwargs would name all five), and skips its own min/max and
        # option checks for exactly those inputs, so name only the two the check concerns.
        if isinstance(context_length, int) and isinstance(context_overlap, int):
            try:
                win.WindowOptions(length=context_length, overlap=context_overlap)
            except win.ContextWindowError as error:
                return str(error)
        return True

    @classmethod
    def execute(cls, context_length, context_overlap, schedule, fuse_method, noise,
                mode=win.DEFAULT_MODE) -> io.NodeOutput:
        return io.NodeOutput(win.WindowOptions(length=context_length, overlap=context_overlap, schedule=schedule,
                                               fuse=fuse_method, noise=noise, mode=mode))
