"""Pure-torch frame utilities for the video nodes: decoding (and encoding) long clips a few frames at a time."""
