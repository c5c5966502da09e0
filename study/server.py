"""The A/B study's rating server: a small aiohttp server the organiser starts for a study (tools/study.py serve),
never part of ComfyUI. It serves the rating page (study/page/) and its API, nothing else; the logic is store.py.

    GET  /                               the page: a list of studies, or ?study=ID to rate
    GET  /api/studies                    [{id, pairs, raters, closed}], or {id, error} for a study that is broken
    GET  /api/ID/session?rater=R         the rater's pairs in their order, left/right clip tokens, their votes
    POST /api/ID/vote                    {rater, pair, criterion, choice: left|right|tie}
    POST /api/ID/close                   {organiser: the organiser secret}
    GET  /api/ID/configs                 the configurations (403 until closed)
    GET  /api/ID/report.{json,md,svg}    the report (403 until closed)
    GET  /clip/ID/TOKEN                  a clip by its per-rater token (Range requests answered)

It serves one study folder, or every study folder in a folder of studies. Only clip files the checked manifest
names, inside the study folder, are ever read (manifest.py). Refusals answer {"error": message naming the field}:
400 bad input, 403 not revealed yet / not the organiser / foreign origin or host, 404 no such study or clip,
409 closed, 413 body too large, 415 not JSON, 429 a bound reached. No answer carries a path of this machine, a file
date (no Last-Modified or ETag: clip dates would order the clips), a configuration or a secret before closing.

Writes cannot be forged from another site: POSTs take `application/json` only (a cross-site form or text/plain
"simple" request is refused before it is read), and an `Origin`, when the browser sends one, must be this server as
the request addressed it. The Host must be an IP address, a name of this machine, or one given with --allow-host,
so a foreign name rebound to this address (DNS rebinding) is refused.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import signal
import socket
import stat
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from .manifest import MANIFEST, StudyError, open_clip, study_id_ok
from .store import (DEFAULT_MAX_RATERS, NotOrganiser, NotRevealed, StudyClosed, StudyFull, StudyInputError,
                    StudyStore)
from . import report as study_report

try:
    import fcntl
except ImportError:     # Windows: no advisory lock; one server per study is then the organiser's to keep
    fcntl = None

PAGE = Path(__file__).resolve().parent / "page"
FILES = {"index.html": "text/html; charset=utf-8", "study.js": "text/javascript; charset=utf-8",
         "study_logic.js": "text/javascript; charset=utf-8", "study.css": "text/css; charset=utf-8"}
REPORT_TYPES = {"json": "application/json", "md": "text/markdown; charset=utf-8", "svg": "image/svg+xml"}
VOTE_BODY_MAX = 4096
CLOSE_BODY_MAX = 1024
DEFAULT_PORT = 8190
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}
STATUS = {StudyInputError: 400, NotRevealed: 403, NotOrganiser: 403, StudyClosed: 409, StudyFull: 429}
log = logging.getLogger("adlightning.study")


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={"Cache-Control": "no-store"})


def _json(data) -> web.Response:
    return web.json_response(data, headers={"Cache-Control": "no-store"})


def machine_names() -> set[str]:
    names = set(LOOPBACK_NAMES)
    for name in (socket.gethostname(), socket.getfqdn()):
        if name:
            names |= {name.lower(), f"{name.lower()}.local"}
    return names


def split_host(host: str) -> str:
    """The host name of a Host header (no port, no IPv6 brackets), lower case, without a trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0].rstrip(".") if host.count(":") <= 1 else host


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class StudyServer:
    """The studies of one folder (a study folder, or a folder of study folders) as an aiohttp application."""

    def __init__(self, folder, max_raters: int = DEFAULT_MAX_RATERS, allow_hosts=()):
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise StudyError(f"{folder} is not a folder: give a study folder, or a folder of studies")
        self.single = folder.name if (folder / MANIFEST).exists() else None
        if self.single is not None and not study_id_ok(self.single):
            raise StudyError(f"{folder}: a study folder's name is its id: 1-64 letters, digits, '-' or '_'")
        self.root = folder.parent if self.single else folder
        self.max_raters = max_raters
        self.hosts = machine_names() | {h.lower() for h in allow_hosts}
        self._stores: dict[str, tuple[tuple, StudyStore]] = {}
        self._locks: dict[str, object] = {}

    # --- studies -----------------------------------------------------------------------------------------------
    def study_ids(self) -> list[str]:
        if self.single:
            return [self.single]
        ids = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if study_id_ok(entry.name) and entry.is_dir(follow_symlinks=False) and \
                    os.path.lexists(os.path.join(entry.path, MANIFEST)):
                ids.append(entry.name)
        return ids

    def _folder(self, study_id: str) -> Path:
        if not study_id_ok(study_id) or (self.single and study_id != self.single):
            raise Refused(404, f"no study {study_id[:80]!r}")
        folder = self.root / study_id
        try:
            info = folder.lstat()
        except OSError:
            raise Refused(404, f"no study {study_id!r}") from None
        if not stat.S_ISDIR(info.st_mode):   # a link is not followed out of the studies folder
            raise Refused(404, f"no study {study_id!r}")
        return folder

    def _claim(self, study_id: str, folder: Path) -> None:
        """One rating server per study: two appending to one votes.jsonl would each count only their own."""
        if fcntl is None or study_id in self._locks:
            return
        handle = open(folder / ".server.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StudyError("another rating server is serving this study: stop it, one server per study") from None
        self._locks[study_id] = handle

    def store(self, study_id: str) -> StudyStore:
        """The study's store, reloaded when its manifest changes (the generator extended it)."""
        folder = self._folder(study_id)
        try:
            info = (folder / MANIFEST).lstat()
        except OSError:
            raise Refused(404, f"no study {study_id!r}") from None
        key = (info.st_mtime_ns, info.st_size, info.st_ino)
        cached = self._stores.get(study_id)
        if cached is None or cached[0] != key:
            self._claim(study_id, folder)
            self._stores[study_id] = (key, StudyStore(folder, self.max_raters))
        return self._stores[study_id][1]

    def close(self) -> None:
        for handle in self._locks.values():
            handle.close()
        self._locks.clear()

    # --- requests ----------------------------------------------------------------------------------------------
    def check_request(self, request: web.Request) -> None:
        name = split_host(request.host or "")
        if not (is_ip(name) or name in self.hosts):
            raise Refused(403, f"host: this study server does not answer for {name[:80]!r}; the organiser can allow "
                               f"the name with serve --allow-host")
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None:
                parts = urlsplit(origin)
                if parts.scheme not in ("http", "https") or parts.netloc.lower() != (request.host or "").lower():
                    raise Refused(403, f"Origin: {origin[:80]!r} is not this server; votes are taken from its own "
                                       f"page only")
            if request.content_type != "application/json":
                raise Refused(415, f"Content-Type: {request.content_type!r}: send application/json")
            charset = request.charset
            if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
                raise Refused(400, f"Content-Type: charset {charset[:40]!r}: send UTF-8 JSON")

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        try:
            self.check_request(request)
            response = await handler(request)
        except Refused as e:
            response = _error(e.status, str(e))
        except StudyError as e:
            status = next((code for kind, code in STATUS.items() if isinstance(e, kind)), None)
            # Anything else is a study folder that cannot be used (broken manifest, missing clip): 409, by name.
            response = _error(status or 409, str(e))
        except web.HTTPException as e:
            response = _error(e.status, e.reason)
        except Exception:
            log.exception("study server: %s %s failed", request.method, request.path)
            response = _error(500, "the study server failed on this request (its console has the details)")
        response.headers.update(SECURITY_HEADERS)
        return response

    @staticmethod
    async def body(request: web.Request, limit: int, fields: tuple[str, ...]) -> dict:
        if request.content_length is not None and request.content_length > limit:
            raise Refused(413, f"body: {request.content_length} bytes; at most {limit}")
        raw = await request.content.read(limit + 1)
        if len(raw) > limit:
            raise Refused(413, f"body: more than {limit} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise Refused(400, "body: not UTF-8") from None
        except RecursionError:
            raise Refused(400, "body: JSON nested too deep") from None
        except ValueError as e:
            raise Refused(400, f"body: not JSON ({str(e)[:80]})") from None
        if not isinstance(data, dict):
            raise Refused(400, f"body: must be a JSON object {{{', '.join(fields)}}}")
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise Refused(400, f"{unknown[0][:40]}: unknown field; send {{{', '.join(fields)}}}")
        return data

    async def page(self, request):
        name = request.match_info.get("name", "index.html")
        if name not in FILES:
            raise Refused(404, "no such file")
        return web.Response(body=(PAGE / name).read_bytes(), headers={"Content-Type": FILES[name],
                                                                       "Cache-Control": "no-cache"})

    async def studies(self, request):
        out = []
        for study_id in self.study_ids():
            try:
                out.append(self.store(study_id).summary())
            except (StudyError, Refused) as e:
                out.append({"id": study_id, "error": str(e)})
            except Exception:   # one unreadable study is one broken entry, never a failed list
                log.exception("study server: study %s cannot be loaded", study_id)
                out.append({"id": study_id, "error": "cannot be loaded (the server's console has the details)"})
        return _json(out)

    async def session(self, request):
        return _json(self.store(request.match_info["study"]).session(request.query.get("rater", "")))

    async def vote(self, request):
        body = await self.body(request, VOTE_BODY_MAX, ("rater", "pair", "criterion", "choice"))
        store = self.store(request.match_info["study"])
        row = store.record(body.get("rater"), body.get("pair"), body.get("criterion"), body.get("choice"))
        # Echo only what the page sent: the A/B side stays on the server.
        return _json({"pair": row["pair"], "criterion": row["criterion"], "choice": row["shown"]})

    async def close_study(self, request):
        body = await self.body(request, CLOSE_BODY_MAX, ("organiser",))
        store = self.store(request.match_info["study"])
        store.check_organiser(body.get("organiser"))
        closed = store.close()
        return _json({**closed, "configs": store.configs()})

    async def configs(self, request):
        return _json(self.store(request.match_info["study"]).configs())

    async def report(self, request):
        store = self.store(request.match_info["study"])
        kind = request.match_info["kind"]
        if kind not in REPORT_TYPES:
            raise Refused(404, f"no report.{kind[:20]} (json, md, svg)")
        store.configs()   # raises NotRevealed while the study is open: the report names the configurations
        report = store.report()
        text = {"json": lambda: json.dumps(report, indent=1), "md": lambda: study_report.markdown(report),
                "svg": lambda: study_report.svg(report)}[kind]()
        return web.Response(text=text, headers={"Content-Type": REPORT_TYPES[kind], "Cache-Control": "no-store"})

    async def clip(self, request):
        store = self.store(request.match_info["study"])
        name = store.clip_name(request.match_info["token"])
        if name is None:
            raise Refused(404, "no such clip")
        fd, size = open_clip(store.folder, name)
        with os.fdopen(fd, "rb") as f:
            try:
                wanted = request.http_range
            except ValueError:
                wanted = slice(None, None)
            start, stop = wanted.start, wanted.stop
            if start is None and stop is None:
                start, stop, partial = 0, size, False
            else:
                if start is None:
                    start, stop = 0, size
                elif start < 0:                        # bytes=-N: the last N bytes
                    start, stop = max(0, size + start), size
                stop = size if stop is None else min(stop, size)
                partial = True
                if start >= size or start >= stop:
                    return web.Response(status=416, headers={"Content-Range": f"bytes */{size}",
                                                             "Cache-Control": "no-store"})
            f.seek(start)
            data = f.read(stop - start)
        headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "Cache-Control": "no-store"}
        if partial:
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        return web.Response(status=206 if partial else 200, body=data, headers=headers)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=64 * 1024)
        app.router.add_get("/", self.page)
        app.router.add_get("/api/studies", self.studies)
        app.router.add_get("/api/{study}/session", self.session)
        app.router.add_post("/api/{study}/vote", self.vote)
        app.router.add_post("/api/{study}/close", self.close_study)
        app.router.add_get("/api/{study}/configs", self.configs)
        app.router.add_get("/api/{study}/report.{kind}", self.report)
        app.router.add_get("/clip/{study}/{token}", self.clip)
        app.router.add_get("/{name}", self.page)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _cleanup(self, app) -> None:
        self.close()


def urls(host: str, port: int, study_ids: list[str]) -> list[str]:
    """The lines the organiser needs: where raters go, where the organiser closes."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}/"
    lines = [f"rating page: {base}"]
    for study_id in study_ids:
        lines += [f"  study {study_id}: raters open {base}?study={study_id}",
                  f"  organiser (to close it, with the organiser secret): {base}?study={study_id}&organiser"]
    return lines


async def serve(folder, host: str = "127.0.0.1", port: int = DEFAULT_PORT, max_raters: int = DEFAULT_MAX_RATERS,
                allow_hosts=(), say=print) -> None:
    """Run the rating server until interrupted (Ctrl+C or SIGTERM)."""
    server = StudyServer(folder, max_raters, allow_hosts)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise StudyError(f"cannot listen on {host}:{port}: {e.strerror}; choose another --port") from None
    bound = runner.addresses[0][1] if runner.addresses else port
    say(f"serving {len(server.study_ids())} study(ies) from {server.root if not server.single else server.root / server.single}"
        f" on {host}:{bound} (Ctrl+C to stop)")
    for line in urls(host, bound, server.study_ids()):
        say(line)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
