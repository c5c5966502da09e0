"""Maintainer tooling, never loaded by ComfyUI: the host-tier harness (harness/), benchmarks (benchmarks/) and the
generators of shipped files (the UI twins of the API workflows, the node dumps the unit tier checks against).

Run its scripts from the repository root as modules, e.g. `python -m dev.benchmarks.e2e --comfyui /path/to/ComfyUI`.
"""
import tools  # noqa: F401  (loads the pack as the package `adlightning`, see tools/__init__.py)
