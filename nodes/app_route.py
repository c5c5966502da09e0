"""The prompt-to-clip page (app_page/) on ComfyUI's own server, under the pack's prefix /adlightning/app/.

The routes go on the server's table (server_routes.py; ComfyUI also mounts each under /api). The page is static: its
three files, and the shipped API workflows served from workflows/api/ (the graphs the page queues; no second copy). Everything else it does goes through ComfyUI's own API
from the browser, so nothing here runs while a prompt does and ComfyUI's page is untouched.
"""
from pathlib import Path

from aiohttp import web

from .server_routes import server_routes

PREFIX = "/adlightning/app"
PACK = Path(__file__).resolve().parents[1]
PAGE = PACK / "app_page"
WORKFLOWS = PACK / "workflows" / "api"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json"}


def _file(folder: Path, name: str, suffixes) -> web.FileResponse:
    # Only files that are there by name (no path parts), so a request cannot leave the folder.
    files = {p.name: p for p in folder.iterdir() if p.is_file() and p.suffix in suffixes}
    if name not in files:
        raise web.HTTPNotFound(text=f"{PREFIX}: no file {name!r}")
    return web.FileResponse(files[name], headers={"Content-Type": TYPES[files[name].suffix],
                                                  "Cache-Control": "no-cache"})


async def _redirect(request):
    raise web.HTTPFound(PREFIX + "/")


async def _index(request):
    return _file(PAGE, "index.html", {".html"})


async def _asset(request):
    return _file(PAGE, request.match_info["name"], {".js", ".css"})


async def _workflow(request):
    return _file(WORKFLOWS, request.match_info["name"], {".json"})


def register() -> None:
    routes = server_routes(f"the {PREFIX} page")
    if routes is None:
        return
    routes.get(PREFIX)(_redirect)
    routes.get(PREFIX + "/")(_index)
    routes.get(PREFIX + "/workflows/{name}")(_workflow)
    routes.get(PREFIX + "/{name}")(_asset)
