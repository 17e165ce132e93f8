"""`audiogen serve DIR`: a small read-only web server for a built library, for phones on the LAN.

Serves the folder's files (with byte ranges, which audio players and podcast apps use to seek),
`/` as `index.html`, and `/feed.xml` regenerated with absolute URLs pointing at the address the
phone used, so subscribing to it works. Nothing outside the folder is reachable: `..` segments,
hidden files and symlinks that leave the folder are refused; there are no directory listings.

Every file carries a strong ETag and Last-Modified and is answered 304 to a matching conditional
request. Only requests whose Host names this server are answered (DNS rebinding), so a client cannot
steer the feed's URLs. The feed, chapters and transcripts may be read from any origin (CORS). Idle
connections are dropped after a timeout, and at most `max_threads` connections are handled at once;
the others wait in the listen backlog.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
import os
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from audiogen.publish.feed import FEED, INDEX, NS, feed_xml
from audiogen.publish.httpspec import (
    CHUNK,
    CORS_ALLOWED_HEADERS,
    HOST,
    LOOPBACK_NAMES,
    METHODS,
    authorities,
    base_url_authorities,
    client_copy_current,
    content_type,
    cors_headers,
    file_validators,
    if_range_ok,
    is_loopback_address,
    parse_range,
)
from audiogen.publish.sessions import collect_sessions
from audiogen.routine.errors import OutputError


class LibraryServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, root: Path, address: tuple[str, int], *, base_url: str | None = None,
                 log=None, idle_timeout: float = 30.0, max_threads: int = 32) -> None:
        self.root = Path(root).resolve(strict=True)
        self.base_url = base_url.rstrip("/") + "/" if base_url else None
        self.log = log
        self.idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(max_threads)
        self._stopping = threading.Event()
        super().__init__(address, LibraryHandler)
        # get_request may wait for a slot after the selector said "readable": never block in accept()
        self.socket.setblocking(False)
        self.allowed_hosts = self._own_authorities()

    def _own_authorities(self) -> set[str]:
        """Host values naming this server, whichever connection they arrive on (see `hosts_for`)."""
        host, port = self.server_address[:2]
        names: set[str] = set()
        if ipaddress.ip_address(host).is_unspecified:  # --lan: also reachable as 127.0.0.1 and the LAN address
            lan = lan_address()
            names |= authorities(lan, port) if lan else set()
            host = "127.0.0.1"
        names |= authorities(host, port)
        if is_loopback_address(host):
            for name in LOOPBACK_NAMES:
                names |= authorities(name, port)
        if self.base_url:
            names |= base_url_authorities(self.base_url)
        return names

    def hosts_for(self, local_address: str) -> set[str]:
        """Allowed Host values on a connection that arrived at `local_address` (one of this machine's
        addresses: an IP literal naming it cannot be a rebound DNS name)."""
        port = self.server_address[1]
        names = self.allowed_hosts | authorities(local_address, port)
        if is_loopback_address(local_address):
            for name in LOOPBACK_NAMES:
                names |= authorities(name, port)
        return names

    # -- a bounded number of handler threads -------------------------------------------------------
    def get_request(self):
        # Take a slot before accepting, so that excess connections wait in the listen backlog.
        while not self._slots.acquire(timeout=0.2):
            if self._stopping.is_set():
                raise OSError("shutting down")  # _handle_request_noblock ignores it; serve_forever ends
        try:
            conn, address = super().get_request()
            conn.settimeout(self.idle_timeout)  # a stalled or idle client is dropped
            return conn, address
        except BaseException:
            self._slots.release()
            raise

    def process_request(self, request, client_address) -> None:
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def shutdown(self) -> None:
        self._stopping.set()
        super().shutdown()


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

    def _send_headers(self, status: HTTPStatus, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def do_OPTIONS(self) -> None:  # noqa: N802
        """A CORS preflight (or a plain OPTIONS): which methods, and for public data, any origin."""
        if not self._host_ok():
            return
        headers = {"Allow": METHODS}
        if self.path != "*":
            target = self._checked_target()
            if target is None:
                return
            headers |= cors_headers(target.name)
            if headers.get("Access-Control-Allow-Origin"):
                headers |= {"Access-Control-Allow-Methods": METHODS,
                            "Access-Control-Allow-Headers": CORS_ALLOWED_HEADERS,
                            "Access-Control-Max-Age": "86400"}
        self._send_headers(HTTPStatus.NO_CONTENT, headers)

    # -- Host, paths ------------------------------------------------------------------------------
    def _host(self) -> str | None:
        """The request's Host, lowercased; None if absent (an HTTP/1.0 client)."""
        values = self.headers.get_all("Host") or []
        return values[0].strip().lower() if len(values) == 1 else ("" if values else None)

    def _host_ok(self) -> bool:
        """Whether the Host names this server (else the refusal is sent): a page on a DNS name rebound
        to this machine sends its own name, so it is refused and never reads the library."""
        host = self._host()
        if host is None and self.request_version == "HTTP/1.0":
            return True
        if not host:  # HTTP/1.1 needs exactly one Host (RFC 9112 3.2)
            self._error(HTTPStatus.BAD_REQUEST)
            return False
        if host not in self.server.hosts_for(self.connection.getsockname()[0]):
            self._error(HTTPStatus.MISDIRECTED_REQUEST)
            return False
        return True

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

    def _checked_target(self) -> Path | None:
        """The file a request names, or None once the refusal is sent."""
        try:
            target = self._target()
        except UnicodeDecodeError:
            target = HTTPStatus.NOT_FOUND
        if isinstance(target, HTTPStatus):
            self._error(target)
            return None
        return target

    def _base_url(self) -> str:
        if self.server.base_url:
            return self.server.base_url
        host = self._host() or ""  # already checked against the server's own names
        if not HOST.match(host):
            h, port = self.server.server_address[:2]
            if h in ("0.0.0.0", "::"):
                h = self.connection.getsockname()[0]
            host = f"[{h}]:{port}" if ":" in h else f"{h}:{port}"
        return f"http://{host}/"

    # -- responses --------------------------------------------------------------------------------
    def _serve(self, head: bool) -> None:
        if not self._host_ok():
            return
        target = self._checked_target()
        if target is None:
            return
        if target == self.server.root / FEED:
            self._send_feed(head)
            return
        self._send_file(target, head)

    def _not_modified(self, validators: dict[str, str], mtime: float) -> bool:
        """Answer 304 if the client's copy is current (RFC 9110 13.2.2: If-None-Match, else
        If-Modified-Since); True if it was sent."""
        if not client_copy_current(self.headers, validators["ETag"], mtime):
            return False
        self._send_headers(HTTPStatus.NOT_MODIFIED, validators)
        return True

    def _send_feed(self, head: bool) -> None:
        root = self.server.root
        base = self._base_url()
        try:
            st = os.stat(root / FEED)
        except OSError:
            self._error(HTTPStatus.NOT_FOUND)
            return
        # The build rewrites feed.xml whenever the sessions it lists change, so its validator stands
        # for the served feed's inputs; the base URL is the only other one.
        salt = hashlib.sha256(base.encode()).hexdigest()[:12]
        validators = {**file_validators(st, salt), "Cache-Control": "no-cache", **cors_headers(FEED)}
        if self._not_modified(validators, st.st_mtime):
            return
        album, author = _feed_meta(root / FEED)
        body = feed_xml(collect_sessions(root), album, author, base, feed=root / FEED).encode("utf-8")
        self._send_headers(HTTPStatus.OK, {"Content-Type": content_type(FEED),
                                           "Content-Length": str(len(body)), **validators})
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
            validators = {**file_validators(st), "Cache-Control": "no-cache", **cors_headers(path.name)}
            if self._not_modified(validators, st.st_mtime):
                return
            span = parse_range(self.headers.get("Range"), size)
            if span is not None and not if_range_ok(self.headers.get("If-Range"), validators["ETag"],
                                                     st.st_mtime):
                span = None
            common = {"Accept-Ranges": "bytes", **validators}
            if span is False:
                self._error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                            {"Content-Range": f"bytes */{size}", **common})
                return
            if span is None:
                status, first, length = HTTPStatus.OK, 0, size
            else:
                status, first, length = HTTPStatus.PARTIAL_CONTENT, span[0], span[1] - span[0] + 1
            headers = {"Content-Type": content_type(path.name), "Content-Length": str(length)}
            if status == HTTPStatus.PARTIAL_CONTENT:
                headers["Content-Range"] = f"bytes {first}-{first + length - 1}/{size}"
            self._send_headers(status, {**headers, **common, "X-Content-Type-Options": "nosniff"})
            if not head:
                self._copy(f, first, length)

    def _copy(self, f, first: int, length: int) -> None:
        f.seek(first)
        remaining = length
        try:
            while remaining > 0:
                chunk = f.read(min(CHUNK, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):  # players drop connections when they seek
            self.close_connection = True


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
                log=None, idle_timeout: float = 30.0, max_threads: int = 32) -> LibraryServer:
    """A threading HTTP server for the built library in `root` (not yet serving: call serve_forever).

    `base_url` fixes the address written into the served feed.xml (default: the Host the client used)
    and its host is accepted in Host headers. `log` receives one line per request (except
    partial-content ones); None: silent. A connection idle for `idle_timeout` seconds is closed; at
    most `max_threads` connections are handled at once, the rest wait in the listen backlog.
    """
    return LibraryServer(Path(root), (host, port), base_url=base_url, log=log,
                         idle_timeout=idle_timeout, max_threads=max_threads)


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
