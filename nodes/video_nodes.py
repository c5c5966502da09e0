"""Video-to-video glue: read a VIDEO's frames (a start offset, every n-th frame, at most N), fitted to SD1.5 sizes
while decoding, with the matching audio and frame rate; and VAE-encode long clips a few frames at a time.

Core's GetVideoComponents decodes every frame of the file at full resolution before anything can drop or shrink
them (a minute of 1080p is ~27 GB of float frames); here PyAV decodes one frame at a time and only the kept frames,
already fitted, are held. The math is in frames/ (select, fit, slices).
"""
from __future__ import annotations

import io as _io
import logging
import os

import av
import comfy.model_management
import comfy.utils
import numpy as np
import torch
from comfy_api.latest import io

from ..frames.fit import FIT_MODES, MIN_SIDE, FitError, fit_frames, fit_size
from ..frames.select import FrameSelection, SelectError, trim_audio
from ..frames.slices import DEFAULT_FRAMES_PER_BATCH, in_slices
from .types import CATEGORY

log = logging.getLogger("AnimateDiff-Lightning")
DEFAULT_MAX_SIDE = 512


class VideoReadError(ValueError):
    """A video the v2v nodes cannot read; the message names the file and why."""

    __module__ = "builtins"   # shown as its own name, not the pack's folder path (see motion/module.py)


def source_name(source) -> str:
    return os.path.basename(source) if isinstance(source, str) else "the video"


def read_frames(source, selection: FrameSelection, max_side: int, fit: str, pbar=None):
    """(frames (n, H, W, 3) in [0, 1], source fps, source frame count seen) from a path or BytesIO."""
    name = source_name(source)
    kept, size, seen = [], None, 0
    try:
        with av.open(source, mode="r") as container:
            if not container.streams.video:
                raise VideoReadError(f"input 'video': '{name}' has no frames (it holds no video stream); load a "
                                     f"video file (mp4, webm, mov, mkv)")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            for frame in container.decode(stream):
                if seen % 8 == 0:
                    comfy.model_management.throw_exception_if_processing_interrupted()
                index, seen = seen, seen + 1
                if not selection.keeps(index):
                    continue
                image = torch.from_numpy(frame.to_ndarray(format="rgb24")).float().div_(255)[None]
                if size is None:
                    size = fit_size(image.shape[2], image.shape[1], max_side)
                kept.append(fit_frames(image, size[0], size[1], fit)[0])
                if pbar is not None:
                    pbar.update(1)
                if selection.done(len(kept)):
                    break
    except av.FFmpegError as e:
        raise VideoReadError(f"input 'video': '{name}' could not be read as a video ({e}); load a video file "
                             f"(mp4, webm, mov, mkv)") from e
    if not kept:
        if seen == 0:
            raise VideoReadError(f"input 'video': '{name}' has no frames; load a video that has some")
        raise VideoReadError(f"input 'start_frame': {selection.start} is past the end of '{name}', which has {seen} "
                             f"frames; use a start_frame below {seen}")
    if fps <= 0:
        raise VideoReadError(f"input 'video': '{name}' does not say its frame rate; re-encode it (e.g. ffmpeg -i in "
                             f"-r 24 out.mp4)")
    return torch.stack(kept), fps


def read_audio(source):
    """{"waveform": (1, channels, samples), "sample_rate"} of the last audio stream (as core's GetVideoComponents
    picks it), or None when the file has none or it cannot be decoded (the frames still make a clip; logged)."""
    try:
        return _read_audio(source)
    except av.FFmpegError as e:
        log.warning("%s: its audio could not be decoded (%s); the clip is made without audio", source_name(source), e)
        return None


def _read_audio(source):
    with av.open(source, mode="r") as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[-1]
        resampler = av.audio.resampler.AudioResampler(format="fltp")
        chunks = []
        for frame in container.decode(stream):
            chunks += [f.to_ndarray() for f in resampler.resample(frame)]
        chunks += [f.to_ndarray() for f in resampler.resample(None)]
        if not chunks:
            return None
        waveform = torch.from_numpy(np.concatenate(chunks, axis=1)).float().unsqueeze(0)
        return {"waveform": waveform, "sample_rate": int(stream.sample_rate or stream.rate)}


def rewind(source):
    if isinstance(source, _io.BytesIO):
        source.seek(0)
    return source


class LoadVideoFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_LoadVideoFrames",
            display_name="Load Video Frames (v2v)",
            category=CATEGORY,
            description="A VIDEO's frames for video-to-video: pick a start, every n-th frame and at most N frames, "
                        "fitted to an SD1.5 size while decoding (only the kept frames are held), with the audio and "
                        "frame rate that match them.",
            inputs=[
                io.Video.Input("video", tooltip="From core's Load Video (upload a file there)."),
                io.Int.Input("start_frame", default=0, min=0, max=1_000_000,
                             tooltip="First source frame to keep (0 = the first). The audio starts there too."),
                io.Int.Input("every_nth", default=1, min=1, max=100,
                             tooltip="Keep one frame in every n: 2 halves a 24 fps clip to 12 fps, same duration "
                                     "(the output fps is the source's divided by n)."),
                io.Int.Input("max_frames", default=0, min=0, max=100_000,
                             tooltip="At most this many frames (after skipping); 0 = to the end of the video. "
                                     "Clips over 16 frames need context windows on the sampler."),
                io.Int.Input("max_side", default=DEFAULT_MAX_SIDE, min=MIN_SIDE, max=2048, step=8,
                             tooltip="The longer side after fitting, in pixels; both sides end on a multiple of 8. "
                                     "Lightning was trained at 512 (SD1.5); 512x768, 768x512, 384x768 also work."),
                io.Combo.Input("fit", options=list(FIT_MODES), default="crop",
                               tooltip="crop: keep the aspect ratio exactly and cut the few pixels that rounding "
                                       "to multiples of 8 leaves. stretch: resize each side on its own."),
            ],
            outputs=[io.Image.Output(display_name="frames"), io.Audio.Output(display_name="audio"),
                     io.Float.Output(display_name="fps")],
        )

    @classmethod
    def execute(cls, video, start_frame, every_nth, max_frames, max_side, fit) -> io.NodeOutput:
        try:
            selection = FrameSelection(start=start_frame, every_nth=every_nth, max_frames=max_frames)
        except SelectError as e:
            raise ValueError(str(e)) from e
        source = video.get_stream_source()
        pbar = comfy.utils.ProgressBar(max_frames) if max_frames else None
        try:
            frames, source_fps = read_frames(rewind(source), selection, max_side, fit, pbar)
        except FitError as e:
            raise ValueError(f"input 'max_side': {e}") from e
        audio = read_audio(rewind(source))
        if audio is not None:
            start_s, duration_s = selection.span_seconds(frames.shape[0], source_fps)
            audio = {"waveform": trim_audio(audio["waveform"], audio["sample_rate"], start_s, duration_s),
                     "sample_rate": audio["sample_rate"]}
        return io.NodeOutput(frames, audio, selection.fps(source_fps))


class EncodeFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_EncodeFrames",
            display_name="VAE Encode (long clips)",
            category=CATEGORY,
            description="Encodes a clip's frames a few at a time, so memory does not grow with the clip's length. "
                        "Same latents as VAE Encode.",
            inputs=[
                io.Image.Input("pixels", tooltip="The frames, e.g. from Load Video Frames (v2v)."),
                io.Vae.Input("vae", tooltip="The checkpoint's VAE."),
                io.Int.Input("frames_per_batch", default=DEFAULT_FRAMES_PER_BATCH, min=1, max=256,
                             tooltip="Frames encoded together. Fewer frames use less memory; more can be a little "
                                     "faster."),
            ],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, pixels, vae, frames_per_batch) -> io.NodeOutput:
        if pixels.shape[0] < 1:
            raise ValueError("input 'pixels' has no frames")
        height, width = pixels.shape[1], pixels.shape[2]
        if min(width, height) < MIN_SIDE:
            raise ValueError(f"input 'pixels' is {width}x{height}: SD1.5 needs at least {MIN_SIDE} px a side; fit "
                             f"the frames larger (Load Video Frames' max_side, or an upscale)")
        pbar = comfy.utils.ProgressBar(pixels.shape[0])
        latent = in_slices(lambda images: vae.encode(images[..., :3]), pixels, frames_per_batch,
                           comfy.model_management.throw_exception_if_processing_interrupted, pbar.update)
        return io.NodeOutput({"samples": latent})
