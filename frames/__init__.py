"""Pure-torch frame utilities for the video nodes: which frames to keep, fitting them to an SD1.5 size, and running
a per-frame model (VAE decode or encode) over a long clip a few frames at a time."""
