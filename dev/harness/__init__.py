"""Host-tier harness shared by tests/host and dev/benchmarks/: start a real ComfyUI with the pack, make random-weight
model fixtures (cached outside the repo), size and edit API graphs, listen to the websocket. Not imported by the pack.
"""
