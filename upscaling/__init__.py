"""Pure-torch video upscaling: model checks, tiled inference, resizing, temporal stabilisation (no ComfyUI import)."""
