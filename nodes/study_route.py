"""The A/B study's rating page and its API on ComfyUI's own server, under /adlightning/study/ (thin: the logic is
study/store.py and study/report.py).

Studies are the folders ComfyUI's output directory holds under adlightning_study/ (tools/study.py generate writes
there when run from the ComfyUI folder, or with --root pointing there), each with its manifest.json.

    GET  /adlightning/study/                       the page (study/page/): a list of studies, or ?study=ID to rate
    GET  /adlightning/study/api/studies            [{id, pairs, raters, closed}]
    GET  /adlightning/study/api/ID/session?rater=R the rater's pairs in their order, left/right clip tokens, votes
    POST /adlightning/study/api/ID/vote            {rater, pair, criterion, choice: left|right|tie}
    POST /adlightning/study/api/ID/close           {confirm: ID}
    GET  /adlightning/study/api/ID/configs         the configurations' names (403 until closed)
    GET  /adlightning/study/api/ID/report.{json,md,svg}  the report (403 until closed)
    GET  /adlightning/study/clip/ID/TOKEN          a clip, by its opaque token (nothing in the URL names A or B)
Refusals answer {"error": message}: 400 bad input, 403 not revealed yet, 404 no such study, 409 closed or broken.
Routes are added like app_route.py's (server_routes.py, before ComfyUI finalises its route table).
"""
from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from .server_routes import server_routes

from ..study import report as study_report
from ..study.generate import StudyError, study_id_ok
from ..study.store import NotRevealed, StudyClosed, StudyInputError, StudyStore

PREFIX = "/adlightning/study"
STUDY_FOLDER = "adlightning_study"
WEB = Path(__file__).resolve().parents[1] / "study" / "page"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
REPORT_TYPES = {"json": "application/json", "md": "text/markdown; charset=utf-8", "svg": "image/svg+xml"}
_stores: dict[str, tuple[float, StudyStore]] = {}


def studies_root() -> Path:
    # folder_paths.get_output_directory is ComfyUI's public accessor (every save node uses it; --output-directory
    # and --base-directory move it), so the studies follow wherever the user's outputs go.
    import folder_paths
    return Path(folder_paths.get_output_directory()) / STUDY_FOLDER


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _store(study_id: str) -> StudyStore:
    """The study's store, reloaded when its manifest changes (the generator extended it)."""
    if not study_id_ok(study_id):
        raise web.HTTPNotFound(text=json.dumps({"error": f"no study {study_id!r}"}), content_type="application/json")
    folder = studies_root() / study_id
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise web.HTTPNotFound(text=json.dumps({"error": f"no study {study_id!r} in {studies_root()}"}),
                               content_type="application/json")
    mtime = manifest.stat().st_mtime
    cached = _stores.get(study_id)
    if cached is None or cached[0] != mtime:
        _stores[study_id] = (mtime, StudyStore(folder))
    return _stores[study_id][1]


def _handle(fn):
    async def handler(request):
        try:
            return await fn(request)
        except StudyInputError as e:
            return _error(400, str(e))
        except NotRevealed as e:
            return _error(403, str(e))
        except StudyClosed as e:
            return _error(409, str(e))
        except StudyError as e:   # a broken study folder (missing clips, unreadable manifest)
            return _error(409, str(e))
    return handler


async def _body(request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise StudyInputError("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise StudyInputError("the request body must be a JSON object")
    return body


async def _redirect(request):
    raise web.HTTPFound(PREFIX + "/")


async def _page(request):
    return web.FileResponse(WEB / "index.html", headers={"Content-Type": "text/html", "Cache-Control": "no-cache"})


async def _asset(request):
    files = {p.name: p for p in WEB.iterdir() if p.is_file() and p.suffix in (".js", ".css")}
    name = request.match_info["name"]
    if name not in files:
        raise web.HTTPNotFound(text=f"{PREFIX}: no file {name!r}")
    return web.FileResponse(files[name], headers={"Content-Type": TYPES[files[name].suffix],
                                                  "Cache-Control": "no-cache"})


@_handle
async def _studies(request):
    root, out = studies_root(), []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if (folder / "manifest.json").is_file() and study_id_ok(folder.name):
            try:
                out.append(_store(folder.name).summary())
            except StudyError as e:
                out.append({"id": folder.name, "error": str(e)})
    return web.json_response(out)


@_handle
async def _session(request):
    return web.json_response(_store(request.match_info["study"]).session(request.query.get("rater", "")))


@_handle
async def _vote(request):
    body = await _body(request)
    store = _store(request.match_info["study"])
    row = store.record(body.get("rater"), body.get("pair"), body.get("criterion"), body.get("choice"))
    # Echo only what the page sent: the A/B side stays on the server.
    return web.json_response({"pair": row["pair"], "criterion": row["criterion"], "choice": row["shown"]})


@_handle
async def _close(request):
    body = await _body(request)
    store = _store(request.match_info["study"])
    if body.get("confirm") != store.id:
        raise StudyInputError(f"to close study {store.id}, send {{\"confirm\": \"{store.id}\"}} (its id): closing "
                              f"ends the voting for everyone")
    closed = store.close()
    study_report.write(store.folder, study_report.build(store.manifest, store.votes()))
    return web.json_response({**closed, "configs": store.configs()})


@_handle
async def _configs(request):
    return web.json_response(_store(request.match_info["study"]).configs())


@_handle
async def _report(request):
    store = _store(request.match_info["study"])
    kind = request.match_info["kind"]
    if kind not in REPORT_TYPES:
        raise web.HTTPNotFound(text=f"{PREFIX}: no report.{kind} (json, md, svg)")
    store.configs()   # raises NotRevealed while the study is open: the report names the configurations
    report = study_report.build(store.manifest, store.votes())
    text = {"json": lambda: json.dumps(report, indent=1), "md": lambda: study_report.markdown(report),
            "svg": lambda: study_report.svg(report)}[kind]()
    return web.Response(text=text, headers={"Content-Type": REPORT_TYPES[kind], "Cache-Control": "no-cache"})


@_handle
async def _clip(request):
    store = _store(request.match_info["study"])
    path = store.clip_path(request.match_info["token"])
    if path is None:
        raise web.HTTPNotFound(text=f"{PREFIX}: no such clip")
    return web.FileResponse(path, headers={"Content-Type": "video/mp4", "Cache-Control": "no-cache"})


def register() -> None:
    routes = server_routes(f"the {PREFIX} page")
    if routes is None:
        return
    routes.get(PREFIX)(_redirect)
    routes.get(PREFIX + "/")(_page)
    routes.get(PREFIX + "/api/studies")(_studies)
    routes.get(PREFIX + "/api/{study}/session")(_session)
    routes.post(PREFIX + "/api/{study}/vote")(_vote)
    routes.post(PREFIX + "/api/{study}/close")(_close)
    routes.get(PREFIX + "/api/{study}/configs")(_configs)
    routes.get(PREFIX + "/api/{study}/report.{kind}")(_report)
    routes.get(PREFIX + "/clip/{study}/{token}")(_clip)
    routes.get(PREFIX + "/{name}")(_asset)
