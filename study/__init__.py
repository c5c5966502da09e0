"""Blind A/B study of two configurations: the statistics of the report (pure Python; no ComfyUI)."""
