"""The editor's local server: one page, a small JSON API, loopback only, a per-session token.

Hardening, as `audiogen serve` does it and more, since this server can write: it binds to 127.0.0.1; a
request whose Host does not name it is refused with 421 (DNS rebinding); a request carrying a foreign Origin
(or `Sec-Fetch-Site: cross-site`) with 403; every request, the page included, needs the session's random
token (`?token=` or the `X-Audiogen-Token` header) or gets 403. Only `*.yaml` routine files inside the
routine's folder are read or written; everything the server makes (previews, builds) lives in its own
temporary folder. Idle connections are dropped after a timeout and request bodies are bounded.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import shutil
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from audiogen.edit import work
from audiogen.publish.httpspec import LOOPBACK_NAMES, authorities, content_type, parse_range
from audiogen.routine.atomic import write_text
from audiogen.routine.errors import AudiogenError, OutputError
from audiogen.routine.loader import read_text
from audiogen.routine.model import routine_schema

MAX_BODY = 2 * 1024 * 1024
STATIC = {"/editor.css": "editor.css", "/editor.js": "editor.js"}
# Scripts only from this server (no inline script, no eval); inline style attributes place the timeline's blocks.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _template(name: str) -> str:
    return resources.files("audiogen.edit").joinpath("templates", name).read_text("utf-8")


class EditServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, target: Path, port: int = 0, *, cache=None, offline: bool | None = None,
                 idle_timeout: float = 30.0, log=None) -> None:
        target = Path(target)
        new_file = not target.exists() and target.suffix.lower() in (".yaml", ".yml") and target.parent.is_dir()
        if not target.exists() and not new_file:
            raise OutputError("no such file or folder", path=str(target),
                              hint="give a routine file (.yaml) or a library folder; `audiogen new` makes one")
        folder = target.is_dir()
        self.root = (target if folder else target.parent).resolve()
        self.shown_root = target if folder else target.parent  # paths as `check` would print them
        self.first = None if folder else target.name  # a new file is written on the first save
        self.token = secrets.token_urlsafe(24)
        self.cache = cache
        self.offline = offline
        self.idle_timeout = idle_timeout
        self.log = log
        self.jobs = work.Jobs()
        self.workdir = Path(tempfile.mkdtemp(prefix="audiogen-edit-"))
        self.lock = threading.Lock()  # saves
        super().__init__(("127.0.0.1", port), EditHandler)
        port = self.server_address[1]
        self.hosts = set()
        for name in LOOPBACK_NAMES:
            self.hosts |= authorities(name, port)
        self.origins = {f"http://{h}" for h in self.hosts}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/?token={self.token}"

    def get_request(self):
        conn, address = super().get_request()
        conn.settimeout(self.idle_timeout)
        return conn, address

    def server_close(self) -> None:
        super().server_close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- files ------------------------------------------------------------------------------------
    def routine_file(self, name: object) -> Path:
        """The routine file `name` (relative to the folder) names, or an OutputError: nothing outside the
        folder, no hidden files, only .yaml/.yml."""
        if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
            raise PermissionError("not a routine file")
        parts = name.split("/")
        if any(p in ("", ".", "..") or p.startswith(".") for p in parts) or Path(name).is_absolute():
            raise PermissionError("outside the routine's folder")
        if Path(name).suffix.lower() not in (".yaml", ".yml") or parts[-1] == "audiogen.yaml":
            raise PermissionError("not a routine file")
        candidate = self.root.joinpath(*parts)
        resolved = candidate.resolve()
        if not resolved.is_relative_to(self.root):
            raise PermissionError("outside the routine's folder")  # a symlink that leads out
        return resolved

    def shown(self, file: Path) -> str:
        return str(self.shown_root / file.relative_to(self.root))

    def files(self) -> list[str]:
        from audiogen.routine.library import routine_files

        return [str(p.resolve().relative_to(self.root)) for p in routine_files(self.root)]

    def narrators(self, routine):
        from audiogen.voice.narrate import Narrator

        cache = self.clip_cache()
        yield Narrator(cache, offline=True)
        as_built = Narrator(cache, offline=self.offline)
        if not as_built.offline and "gtts" in as_built.candidates(routine):
            yield as_built

    def clip_cache(self):
        """The clip cache previews and plans use (the user's, unless the server was given another)."""
        from audiogen.voice.cache import ClipCache

        if self.cache is None or isinstance(self.cache, ClipCache):
            return self.cache or ClipCache()
        return ClipCache(self.cache)


class EditHandler(BaseHTTPRequestHandler):
    server: EditServer
    server_version = "audiogen-edit"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if self.server.log:
            self.server.log(f"{self.address_string()} {format % args}")

    # -- answers ----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", CSP)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: dict, status: int = 200) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _refuse(self, status: HTTPStatus, why: str = "") -> None:
        self.close_connection = True
        self._json({"error": why or status.phrase}, status.value)

    # -- the gate every request passes ---------------------------------------------------------------
    def _allowed(self) -> bool:
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1:
            self._refuse(HTTPStatus.BAD_REQUEST, "exactly one Host header")
            return False
        if hosts[0].strip().lower() not in self.server.hosts:
            self._refuse(HTTPStatus.MISDIRECTED_REQUEST, "this server answers only to its loopback address")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin.strip().lower() not in self.server.origins:
            self._refuse(HTTPStatus.FORBIDDEN, "foreign origin")
            return False
        if (self.headers.get("Sec-Fetch-Site") or "").lower() == "cross-site":
            self._refuse(HTTPStatus.FORBIDDEN, "cross-site request")
            return False
        query = parse_qs(urlsplit(self.path).query)
        given = self.headers.get("X-Audiogen-Token") or (query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            self._refuse(HTTPStatus.FORBIDDEN, "missing or wrong token: open the URL audiogen edit printed")
            return False
        return True

    def _query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _body(self) -> dict | None:
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return None
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":  # a form post from another page cannot send this without CORS
            self._refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")
            return None
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, UnicodeDecodeError):
            self._refuse(HTTPStatus.BAD_REQUEST, "not JSON")
            return None
        if not isinstance(data, dict):
            self._refuse(HTTPStatus.BAD_REQUEST, "a JSON object, please")
            return None
        return data

    def _file(self, name: object) -> Path | None:
        try:
            return self.server.routine_file(name)
        except PermissionError as e:
            self._refuse(HTTPStatus.FORBIDDEN, str(e))
            return None

    # -- routes -----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        if path == "/":
            page = _template("editor.html").replace("{{token}}", self.server.token)
            self._send(200, page.encode("utf-8"), "text/html; charset=utf-8")
        elif path in STATIC:
            name = STATIC[path]
            ctype = "text/css; charset=utf-8" if name.endswith(".css") else content_type(name)
            self._send(200, _template(name).encode("utf-8"), ctype)
        elif path == "/api/state":
            from audiogen.routine.scaffold import TEMPLATES

            files = self.server.files()
            first = self.server.first or (files[0] if files else None)
            self._json({"files": files, "first": first, "folder": str(self.server.shown_root),
                        "schema": routine_schema(), "templates": list(TEMPLATES)})
        elif path == "/api/file":
            self._get_file()
        elif path == "/api/template":
            self._get_template()
        elif path == "/api/job":
            job = self.server.jobs.get(self._query().get("id", ""))
            if job is None:
                self._refuse(HTTPStatus.NOT_FOUND, "no such job")
            else:
                self._json(job.to_dict())
        elif path.startswith("/media/"):
            self._media(unquote(path[len("/media/"):]))
        else:
            self._refuse(HTTPStatus.NOT_FOUND)

    do_HEAD = do_GET  # noqa: N815

    def do_POST(self) -> None:  # noqa: N802
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        routes = {"/api/check": self._check, "/api/save": self._save, "/api/preview": self._preview,
                  "/api/build": self._build}
        if path not in routes:
            self._refuse(HTTPStatus.NOT_FOUND)
            return
        data = self._body()
        if data is None:
            return
        file = self._file(data.get("path"))
        if file is None:
            return
        text = data.get("text")
        if text is not None and not isinstance(text, str):
            self._refuse(HTTPStatus.BAD_REQUEST, "text is a string")
            return
        routes[path](file, data)

    def _get_file(self) -> None:
        file = self._file(self._query().get("path"))
        if file is None:
            return
        if not file.exists() and file == self.server.root / (self.server.first or ""):
            self._json({"path": file.name, "shown": self.server.shown(file), "text": "", "hash": None, "new": True})
            return
        try:
            text = read_text(file)
        except AudiogenError as e:
            self._json({"error": e.format()}, 404)
            return
        self._json({"path": str(file.relative_to(self.server.root)), "shown": self.server.shown(file),
                    "text": text, "hash": work.text_hash(text)})

    def _get_template(self) -> None:
        from audiogen.routine.scaffold import TEMPLATES, template_text

        q = self._query()
        if q.get("name") not in TEMPLATES:
            self._refuse(HTTPStatus.NOT_FOUND, "no such template")
            return
        self._json({"text": template_text(q["name"], q.get("title") or "My routine", q.get("file") or "routine.yaml")})

    def _check(self, file: Path, data: dict) -> None:
        self._json(work.check_text(data.get("text") or "", file, self.server.shown(file), self.server.clip_cache(),
                                   self.server.narrators))

    def _save(self, file: Path, data: dict) -> None:
        text = data.get("text")
        if text is None:
            self._refuse(HTTPStatus.BAD_REQUEST, "no text")
            return
        with self.server.lock:
            try:
                disk = file.read_text("utf-8") if file.exists() else None
            except (OSError, UnicodeDecodeError) as e:
                self._json({"error": f"cannot read {file.name}: {e}"}, 409)
                return
            opened = data.get("hash")
            if disk is not None and work.text_hash(disk) != opened and not data.get("overwrite"):
                self._json({"error": f"{file.name} changed on disk since it was opened: not saved",
                            "diff": work.unified_diff(text, disk, file.name), "disk_hash": work.text_hash(disk),
                            "disk_text": disk}, 409)
                return
            try:
                write_text(file, text)  # verbatim: comments, order and formatting are the user's
            except AudiogenError as e:
                self._json({"error": e.format()}, 500)
                return
        self._json({"saved": str(file.relative_to(self.server.root)), "hash": work.text_hash(text)})

    def _preview(self, file: Path, data: dict) -> None:
        server = self.server
        text, chapter, selection = data.get("text") or "", data.get("chapter"), data.get("selection")
        wants_selection = isinstance(selection, str)
        wants_chapter = selection is None and isinstance(chapter, int) and not isinstance(chapter, bool)
        if not (wants_selection or wants_chapter):
            self._refuse(HTTPStatus.BAD_REQUEST, "give a chapter number or a selection")
            return
        shown = server.shown(file)

        def run(job: work.Job) -> dict:
            from audiogen.dsp.ffmpeg import INTERNAL_RATE
            from audiogen.voice.narrate import Narrator

            routine = work.parse(text, file, shown)
            cache = server.clip_cache()
            items = work.preview_texts(routine, cache, chapter, selection)
            if not items:
                return {"url": None, "length_ms": 0, "texts": []}
            job.total, job.message = len(items), "synthesising"

            def on_clip(_text: str, _hit: bool) -> None:
                job.done += 1

            with Narrator(cache, offline=server.offline, workers=1) as narrator:
                narration = narrator.narrate(routine, [t for t, _ in items], on_clip=on_clip)
            job.done = job.total
            parts = [(cache.load(narration.keys[t]), gap) for t, gap in items]
            name = f"preview-{job.id}.wav"
            ms = work.write_preview(server.workdir / name, parts, INTERNAL_RATE)
            return {"url": f"/media/{name}?token={server.token}", "length_ms": ms, "engine": narration.engine,
                    "voice": narration.voice, "texts": [t for t, _ in items],
                    "clips": [str(cache.path(narration.keys[t])) for t, _ in items],
                    "cached": narration.cache_hits}

        self._json(server.jobs.start("preview", run).to_dict(), 202)

    def _build(self, file: Path, data: dict) -> None:
        server = self.server

        def run(job: work.Job) -> dict:
            from audiogen.build.jobs import BuildOptions
            from audiogen.build.pipeline import build_routine

            out = server.workdir / f"build-{job.id}"

            def progress(kind: str, info: dict) -> None:
                if kind == "narrate":
                    job.message = f"narrating {info.get('title', '')}"
                elif kind == "clip":
                    job.done += 1
                    job.message = f"narrating: {job.done} clips"
                elif kind == "narrated":
                    job.message = "rendering the session"

            r = build_routine(file, out, BuildOptions(cache=server.clip_cache(), offline=server.offline, force=True,
                                                     progress=progress, jobs=1))
            if r.status == "failed" and r.error is not None:
                raise r.error
            if r.mp3 is None:
                raise OutputError(f"the build made no session ({r.status})")
            timeline = json.loads((r.mp3.with_suffix(".json")).read_text("utf-8"))
            rel = r.mp3.relative_to(server.workdir).as_posix()
            return {"url": f"/media/{rel}?token={server.token}", "title": r.title, "length_ms": r.length_ms,
                    "chapters": timeline.get("chapters", []), "warnings": r.warnings, "checks": r.checks}

        self._json(server.jobs.start("build", run).to_dict(), 202)

    def _media(self, rel: str) -> None:
        root = self.server.workdir.resolve()
        parts = rel.split("/")
        if any(p in ("", ".", "..") or p.startswith(".") for p in parts) or "\x00" in rel:
            self._refuse(HTTPStatus.FORBIDDEN, "outside the editor's work folder")
            return
        target = root.joinpath(*parts).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            self._refuse(HTTPStatus.NOT_FOUND)
            return
        size = target.stat().st_size
        span = parse_range(self.headers.get("Range"), size)
        ctype = "audio/wav" if target.suffix == ".wav" else content_type(target.name)
        if span is False:
            self._send(416, b"", ctype, {"Content-Range": f"bytes */{size}"})
            return
        first, last = (0, size - 1) if span is None else span
        with open(target, "rb") as f:
            f.seek(first)
            body = f.read(last - first + 1)
        extra = {"Accept-Ranges": "bytes"}
        if span is not None:
            extra["Content-Range"] = f"bytes {first}-{last}/{size}"
        self._send(206 if span is not None else 200, body, ctype, extra)


def open_editor(target: str | os.PathLike, port: int = 0, *, cache=None, offline: bool | None = None,
                log=None) -> EditServer:
    """A bound (not yet serving) editor server for a routine file or a library folder."""
    try:
        return EditServer(Path(target), port, cache=cache, offline=offline, log=log)
    except OSError as e:
        raise OutputError(f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}",
                          hint="pick another port, or 0 for any free one") from None
