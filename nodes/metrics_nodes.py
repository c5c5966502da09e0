"""Clip Metrics node: the table of tools/evaluate.py for frames inside a graph (the math is metrics/clip_report.py)."""
import comfy.model_management as mm
import comfy.utils
from comfy_api.latest import io

from ..metrics.clip_report import evaluate_clip, format_table
from .types import CATEGORY


def _frames(images, name: str):
    """ComfyUI IMAGE (N, H, W, C) to the metrics' (N, C, H, W), with the input named in any error."""
    if images.dim() != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Clip Metrics: '{name}' must be IMAGE frames (N, H, W, C), got {tuple(images.shape)}")
    if images.shape[0] < 2:
        raise ValueError(f"Clip Metrics: '{name}' has {images.shape[0]} frame; connect a clip of at least 2 frames "
                         f"(e.g. VAE Decode of an animated latent)")
    return images[..., :3].movedim(-1, 1).float().cpu()


class ClipMetrics(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_ClipMetrics",
            display_name="Clip Metrics",
            category=CATEGORY,
            is_output_node=True,            # runs and shows its table even when nothing consumes the STRING
            description="Measures how steady and how lively a clip is: motion amplitude and warp error from optical "
                        "flow, detail flicker, sharpness; with a reference clip also PSNR/SSIM and how alike they "
                        "move. Shows the table on the node and outputs it as text. Needs OpenCV "
                        "(pip install opencv-python-headless).",
            inputs=[
                io.Image.Input("images", tooltip="The clip's frames in order, e.g. VAE Decode of the sampler's "
                                                 "output. At least 2 frames."),
                io.Image.Input("reference", optional=True,
                               tooltip="Optional: another clip of the same size and frame count (e.g. the same seed "
                                       "with other settings) to compare against: adds PSNR, SSIM, PSNR of the frame "
                                       "changes and the flicker index."),
            ],
            outputs=[io.String.Output(display_name="table", tooltip="The metrics as a fixed-width text table.")],
        )

    @classmethod
    def execute(cls, images, reference=None) -> io.NodeOutput:
        frames = _frames(images, "images")
        ref = _frames(reference, "reference") if reference is not None else None
        pbar = comfy.utils.ProgressBar(frames.shape[0] - 1)

        def on_pair(done, total):
            mm.throw_exception_if_processing_interrupted()
            pbar.update_absolute(done, total)
        table = format_table(evaluate_clip(frames, ref, on_pair=on_pair))
        return io.NodeOutput(table, ui={"text": [table]})
