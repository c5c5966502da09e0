"""Pure-torch AnimateDiff motion modules: the network, file formats, loading and Motion LoRA math.

Nothing in this package imports ComfyUI, so it is tested on its own (tests/unit).
"""
