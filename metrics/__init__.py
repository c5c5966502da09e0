"""Pure-torch clip metrics used by benchmarks and the evaluate tool (nothing here runs in the sampling path).

The pack never imports this folder, so, unlike the product packages, it may import them as top-level packages
(`from upscaling.resize import ...`): tests, benchmarks and tools run with the repo root on the path.
"""
