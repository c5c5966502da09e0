"""The route table of the running ComfyUI server, for the pack's pages and routes.

Custom routes go on PromptServer.instance.routes (ComfyUI's public way for custom nodes to add routes) while the pack
is imported: ComfyUI (0.14.1 and 0.30.0 alike) creates the server before it loads custom nodes and adds the route table
to its app after (server.add_routes, which also mounts each route under /api).
"""
from __future__ import annotations

import logging


def server_routes(what: str):
    """The server's RouteTableDef, or None (logged, naming `what`) when the pack is imported without a ComfyUI server:
    scripts, some test runners."""
    try:
        from server import PromptServer
        return PromptServer.instance.routes
    except (ImportError, AttributeError):
        logging.info("[AnimateDiff-Lightning] no ComfyUI server: %s not served", what)
        return None
