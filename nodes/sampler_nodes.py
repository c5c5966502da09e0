"""Few-step Euler sampling with Lightning's schedule, on ComfyUI's own sampler machinery (CFGGuider + KSAMPLER), so
ControlNets, model LoRAs, previews, the progress bar and Cancel keep working."""
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
from comfy_api.latest import io

from ..motion.module import MotionModuleError
from ..samplers.cond_frames import check_frame_counts
from ..samplers.keyframes import keep_pinned
from ..samplers.schedules import SCHEDULERS, sigmas_for
from ..samplers.windows import DEFAULT_LENGTH
from . import comfy_compat as cc
from . import context_handler, motion_patch
from .types import CATEGORY, ContextOptions

DEFAULT_STEPS = 4

STEPS_TOOLTIP = ("Sampler steps. 0 = the motion module's Lightning step count (4 for the 4-step file), which is what "
                 "each Lightning file was distilled for.")
SCHEDULER_TOOLTIP = ("trailing: the exact timesteps Lightning was distilled on (diffusers 'trailing' spacing). "
                     "sgm_uniform: ComfyUI's evenly spaced timesteps, within 0.4% of trailing.")
DENOISE_TOOLTIP = ("1.0 for text-to-video. Below 1.0 the input latent's content is kept (video-to-video): only the "
                   "last floor(steps x denoise) steps (at least 1) of the steps-step schedule run, so the timesteps "
                   "stay the ones Lightning was distilled on (4 steps at 0.5: timesteps 499, 249, as diffusers' "
                   "strength). With 4 steps the strengths are 0.25/0.5/0.75/1.0; values in between round down. "
                   "More of the input survives the lower the value.")


def resolve_steps(model, steps: int) -> int:
    if steps > 0:
        return steps
    handle = motion_patch.attached_handle(model)
    if handle is not None and handle.info.lightning_steps:
        return handle.info.lightning_steps
    return DEFAULT_STEPS


def lightning_sigmas(model, steps: int, scheduler: str, denoise: float):
    return sigmas_for(scheduler, cc.sigma_table(model), resolve_steps(model, steps), denoise)


def check_position_table(model, frames: int, context_options=None) -> None:
    """Frames beyond the position table need context windows no longer than it; say so before any work is done."""
    handle = motion_patch.attached_handle(model)
    if handle is None:
        return
    core_length = cc.context_length(model)
    length = context_options.length if context_options is not None else core_length
    suggested = min(DEFAULT_LENGTH, handle.info.pe_length)
    if length is not None and min(length, frames) > handle.info.pe_length:
        raise MotionModuleError(
            f"context length {length} is longer than the position table of '{handle.info.name}' "
            f"({handle.info.pe_length} frames); set the context length to {suggested} "
            f"(what Lightning was trained on) or at most {handle.info.pe_length}")
    if frames <= handle.info.pe_length or core_length is not None or context_options is not None:
        return
    raise MotionModuleError(
        f"{frames} frames requested, but '{handle.info.name}' only has positions for {handle.info.pe_length}. "
        f"Attach context windows to the sampler (context length {suggested} is what "
        f"Lightning was trained on) or generate at most {handle.info.pe_length} frames.")


class LightningSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_Sampler",
            display_name="AnimateDiff-Lightning Sampler",
            category=CATEGORY,
            description="Euler sampling with AnimateDiff-Lightning's few-step schedule. Defaults are the model card's: "
                        "the file's step count, cfg 1.0, trailing timesteps.",
            inputs=[
                io.Model.Input("model", tooltip="MODEL from Apply AnimateDiff-Lightning."),
                io.Conditioning.Input("positive", tooltip="What the clip shows."),
                io.Conditioning.Input("negative", tooltip="Only used when cfg > 1.0. At cfg 1.0 (Lightning's "
                                                          "default) the negative prompt is ignored entirely."),
                io.Latent.Input("latent_image", tooltip="One latent per frame, e.g. Empty Latent Image with "
                                                        "batch_size 16 for a 16-frame clip."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Noise seed; the same seed and settings give the same clip."),
                io.Int.Input("steps", default=0, min=0, max=100, tooltip=STEPS_TOOLTIP),
                io.Float.Input("cfg", default=1.0, min=1.0, max=30.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance. Lightning is distilled for 1.0, which also skips "
                                       "the negative pass (half the UNet work). Above 1.0 the negative prompt "
                                       "counts, at twice the cost."),
                io.Combo.Input("scheduler", options=list(SCHEDULERS), default="trailing", tooltip=SCHEDULER_TOOLTIP),
                io.Float.Input("denoise", default=1.0, min=0.01, max=1.0, step=0.01, tooltip=DENOISE_TOOLTIP),
                io.Float.Input("motion_lora_strength", default=1.0, min=0.0, max=2.0, step=0.05, optional=True,
                               tooltip="Multiplies the strength of every Motion LoRA attached to the motion module, "
                                       "for this run only (nothing is reloaded). 1.0 keeps each LoRA's own "
                                       "strength, 0 runs without them. No effect without Motion LoRAs."),
                ContextOptions.Input("context_options", optional=True,
                                     tooltip="From AnimateDiff-Lightning Context Windows: needed for clips longer "
                                             "than the motion module's position table (32 frames), and better than "
                                             "one long window past the 16 frames Lightning was trained on."),
            ],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent_image, seed, steps, cfg, scheduler, denoise,
                motion_lora_strength=1.0, context_options=None) -> io.NodeOutput:
        model = motion_patch.scale_motion_loras(model, motion_lora_strength)
        latent = latent_image
        samples = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
        check_position_table(model, samples.shape[0], context_options)
        check_frame_counts(positive, samples.shape[0], "positive")
        check_frame_counts(negative, samples.shape[0], "negative")
        sigmas = lightning_sigmas(model, steps, scheduler, denoise)
        noise = comfy.sample.prepare_noise(samples, seed, latent.get("batch_index"))
        if context_options is None:
            callback = latent_preview.prepare_callback(model, len(sigmas) - 1)
        else:
            model, noise, callback = context_handler.apply(model, context_options, noise, seed, len(sigmas) - 1,
                                                            cfg)
        out = comfy.sample.sample_custom(
            model, noise, cfg, comfy.samplers.sampler_object("euler"), sigmas, positive, negative, samples,
            noise_mask=latent.get("noise_mask"), callback=callback,
            disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
        # Pinned frames (noise_mask 0, from the keyframe nodes): core's per-step pinning lands on the source latent
        # to float rounding; make strength 1 the source exactly. No mask, or one of another size: unchanged.
        out = keep_pinned(out, samples, latent.get("noise_mask"))
        result = latent.copy()
        result["samples"] = out
        return io.NodeOutput(result)


class LightningSchedule(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_Schedule",
            display_name="AnimateDiff-Lightning Sigmas + Sampler",
            category=CATEGORY,
            description="Lightning's sigmas and the Euler sampler as core SIGMAS / SAMPLER, for SamplerCustom and "
                        "SamplerCustomAdvanced graphs.",
            inputs=[
                io.Model.Input("model", tooltip="MODEL from Apply AnimateDiff-Lightning (its sqrt_linear schedule "
                                                "and step count are used)."),
                io.Int.Input("steps", default=0, min=0, max=100, tooltip=STEPS_TOOLTIP),
                io.Combo.Input("scheduler", options=list(SCHEDULERS), default="trailing", tooltip=SCHEDULER_TOOLTIP),
                io.Float.Input("denoise", default=1.0, min=0.01, max=1.0, step=0.01, tooltip=DENOISE_TOOLTIP),
            ],
            outputs=[io.Sigmas.Output(), io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, model, steps, scheduler, denoise) -> io.NodeOutput:
        return io.NodeOutput(lightning_sigmas(model, steps, scheduler, denoise), comfy.samplers.sampler_object("euler"))
