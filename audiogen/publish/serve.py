"""`audiogen serve DIR`: a small read-only web server for a built library, for phones on the LAN.

Serves the folder's files (with byte ranges, which audio players and podcast apps use to seek),
`/` as `index.html`, and `/feed.xml` regenerated with absolute URLs pointing at the address the
phone used, so subscribing to it works. Nothing outside the folder is reachable: `..` segments,
hidden files and symlinks that leave the folder are refused; there are no directory listings.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from audiogen.publish.feed import FEED, INDEX, NS, feed_xml
from audiogen.publish.sessions import collect_sessions
from audiogen.routine.errors import OutputError

CONTENT_TYPES = {
    ".mp3": "audio/mpeg",
    ".m3u8": "audio/x-mpegurl; charset=utf-8",
    ".m3u": "audio/x-mpegurl; charset=utf-8",
    ".xml": "application/rss+xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".lrc": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
_CHUNK = 64 * 1024
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """The inclusive byte span a `Range` header asks for.

    None: no usable range (absent, malformed, several ranges, another unit): send the whole file.
    False: syntactically fine but unsatisfiable (416). Otherwise (first, last), clamped to the file.
    """
    if not header:
        return None
    m = _RANGE.match(header)
    if not m:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            return False
        return max(0, size - n), size - 1
    a = int(first)
    b = int(last) if last else size - 1
    if last and b < a:
        return None  # invalid spec: ignore the header (RFC 9110 14.2)
    if a >= size:
        return False
    return a, min(b, size - 1)


class LibraryServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, root: Path, address: tuple[str, int], *, base_url: str | None = None,
                 log=None) -> None:
        self.root = Path(root).resolve(strict=True)
        self.base_url = base_url.rstrip("/") + "/" if base_url else None
        self.log = log
        super().__init__(address, LibraryHandler)


class LibraryHandler(BaseHTTPRequestHandler):
    server: LibraryServer
    server_version = "audiogen"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # -- plumbing ---------------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        if self.server.log:
            self.server.log(f"{self.client_address[0]} {format % args}")

    def log_request(self, code="-", size="-") -> None:
        code = int(code) if str(code).isdigit() else 0
        if code != HTTPStatus.PARTIAL_CONTENT:  # players send many range requests: only log the rest
            self.log_message('"%s" %s', self.requestline, code)

    def _error(self, status: HTTPStatus, extra: dict[str, str] | None = None) -> None:
        body = f"{status.value} {status.phrase}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    # -- paths ------------------------------------------------------------------------------------
    def _target(self) -> Path | HTTPStatus:
        """The file a request names, or the status to refuse it with."""
        raw = urlsplit(self.path).path
        if not raw.startswith("/"):
            return HTTPStatus.NOT_FOUND
        path = unquote(raw, errors="strict") if "%" in raw else raw
        if "\x00" in path or "\\" in path:
            return HTTPStatus.NOT_FOUND
        parts = path.split("/")[1:]
        if parts == [""]:
            parts = [INDEX]
        if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return HTTPStatus.NOT_FOUND  # `..`, hidden files (manifest, half-written temp files), `a//b`, `dir/`
        candidate = self.server.root.joinpath(*parts)
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return HTTPStatus.NOT_FOUND
        if not resolved.is_relative_to(self.server.root):
            return HTTPStatus.FORBIDDEN  # a symlink that leads out of the folder
        if not resolved.is_file():
            return HTTPStatus.NOT_FOUND  # no directory listings
        return resolved

    def _base_url(self) -> str:
        if self.server.base_url:
            return self.server.base_url
        host = (self.headers.get("Host") or "").strip()
        if not _HOST.match(host):
            h, port = self.server.server_address[:2]
            if h in ("0.0.0.0", "::"):
                h = self.connection.getsockname()[0]
            host = f"[{h}]:{port}" if ":" in h else f"{h}:{port}"
        return f"http://{host}/"

    # -- responses --------------------------------------------------------------------------------
    def _serve(self, head: bool) -> None:
        try:
            target = self._target()
        except UnicodeDecodeError:
            target = HTTPStatus.NOT_FOUND
        if isinstance(target, HTTPStatus):
            self._error(target)
            return
        if target == self.server.root / FEED:
            self._send_feed(head)
            return
        self._send_file(target, head)

    def _send_feed(self, head: bool) -> None:
        root = self.server.root
        album, author = _feed_meta(root / FEED)
        body = feed_xml(collect_sessions(root), album, author, self._base_url()).encode("utf-8")
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type(FEED))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_file(self, path: Path, head: bool) -> None:
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            self._error(HTTPStatus.NOT_FOUND)
            return
        with f:
            st = os.fstat(f.fileno())
            size = st.st_size
            etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
            last_modified = formatdate(st.st_mtime, usegmt=True)
            span = parse_range(self.headers.get("Range"), size)
            if span is not None and not _if_range_ok(self.headers.get("If-Range"), etag, st.st_mtime):
                span = None
            common = {"Accept-Ranges": "bytes", "ETag": etag, "Last-Modified": last_modified}
            if span is False:
                self._error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                            {"Content-Range": f"bytes */{size}", **common})
                return
            if span is None:
                status, first, length = HTTPStatus.OK, 0, size
            else:
                status, first, length = HTTPStatus.PARTIAL_CONTENT, span[0], span[1] - span[0] + 1
            self.send_response(status)
            self.send_header("Content-Type", content_type(path.name))
            self.send_header("Content-Length", str(length))
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {first}-{first + length - 1}/{size}")
            for k, v in common.items():
                self.send_header(k, v)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if head:
                return
            f.seek(first)
            remaining = length
            try:
                while remaining > 0:
                    chunk = f.read(min(_CHUNK, remaining))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):  # players drop connections when they seek
                self.close_connection = True


def _if_range_ok(value: str | None, etag: str, mtime: float) -> bool:
    """Honour the Range only if If-Range (when sent) still matches the file."""
    if not value:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    try:
        return int(parsedate_to_datetime(value).timestamp()) >= int(mtime)
    except (TypeError, ValueError):
        return False


def _feed_meta(feed: Path) -> tuple[str | None, str | None]:
    """Album and author as the build wrote them into feed.xml (None: take them from the sidecars)."""
    try:
        channel = ET.parse(feed).getroot().find("channel")
    except (OSError, ET.ParseError):
        return None, None
    if channel is None:
        return None, None
    return channel.findtext("title"), channel.findtext(f"{{{NS['itunes']}}}author")


def make_server(root: Path, host: str = "127.0.0.1", port: int = 0, *, base_url: str | None = None,
                log=None) -> LibraryServer:
    """A threading HTTP server for the built library in `root` (not yet serving: call serve_forever).

    `base_url` fixes the address written into the served feed.xml (default: the Host the client used).
    `log` receives one line per request (except partial-content ones); None: silent.
    """
    return LibraryServer(Path(root), (host, port), base_url=base_url, log=log)


def lan_address() -> str | None:
    """This machine's address on the local network, or None.

    A UDP socket "connected" to a private address makes the kernel pick the outgoing interface;
    nothing is sent. Then the host name's address, if it is not a loopback one.
    """
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.254.254.254", 9))
        addr = s.getsockname()[0]
        if _usable(addr):
            return addr
    with contextlib.suppress(OSError):
        addr = socket.gethostbyname(socket.gethostname())
        if _usable(addr):
            return addr
    return None


def _usable(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_unspecified or ip.is_link_local)


def check_library(root: Path) -> Path:
    """`root` if it is a built library folder, else a clear OutputError."""
    if not root.exists():
        raise OutputError("no such folder", path=str(root),
                          hint="run `audiogen build LIBRARY` first, then serve its output folder")
    if not root.is_dir():
        raise OutputError("not a folder", path=str(root), hint="serve the output folder of a built library")
    if not (root / INDEX).is_file():
        raise OutputError(f"no {INDEX} here: not a built library", path=str(root),
                          hint="run `audiogen build LIBRARY` first, then serve its output folder")
    return root


def open_server(root: Path, port: int = 8000, *, lan: bool = False, base_url: str | None = None,
                log: Callable[[str], None] | None = None) -> LibraryServer:
    """A server for the built library `root`, bound (loopback, or every interface with `lan`) but not
    yet serving; a port in use or a folder that is not a library is a clear OutputError."""
    root = check_library(root)
    host = "0.0.0.0" if lan else "127.0.0.1"
    try:
        return make_server(root, host, port, base_url=base_url, log=log)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise OutputError(f"port {port} is already in use",
                              hint="pick another with --port, or --port 0 for any free port") from None
        raise OutputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


@dataclass
class Address:
    """Where a phone should point: the local address, the one to advertise, and whether only this
    computer can reach it (else a QR code of `url` is worth showing)."""

    local: str
    url: str
    loopback_only: bool
    no_lan_address: bool = False


def advertised_address(server: LibraryServer, lan: bool) -> Address:
    bound_host, bound_port = server.server_address[:2]
    local = f"http://{'127.0.0.1' if bound_host == '0.0.0.0' else bound_host}:{bound_port}/"
    url = server.base_url
    missing = False
    if not url and lan:
        address = lan_address()
        missing = address is None
        url = f"http://{address or '127.0.0.1'}:{bound_port}/"
    url = url or local
    return Address(local, url, _is_loopback_url(url), missing)


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
