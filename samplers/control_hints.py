"""Which ControlNet hint frames a context window gets: pure index math, shared by the ComfyUI glue and its tests."""
from __future__ import annotations


def window_hint_indices(frame_indices: list[int], hint_frames: int) -> list[int]:
    """Hint frame for each latent frame the window feeds to the model.

    Frame i gets hint frame i mod hint_frames: for a hint with one frame per latent frame that is frame i itself, and
    a shorter hint repeats, which is exactly what core's ControlNet gives frame i when it sees the whole batch at once
    (comfy.controlnet.broadcast_image_to), so windows change nothing but which frames each window is guided by.
    """
    if hint_frames < 1:
        raise ValueError(f"a ControlNet hint needs at least one frame, got {hint_frames}")
    return [int(i) % hint_frames for i in frame_indices]
