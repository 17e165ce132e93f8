"""The HTTP rules `audiogen serve` follows, as pure functions: content types, byte ranges, validators
and conditional requests (RFC 9110), CORS for public data, and which Host values name a server."""

from __future__ import annotations

import ipaddress
import os
import re
import time
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import urlsplit

from audiogen.publish.feed import FEED

CONTENT_TYPES = {
    ".mp3": "audio/mpeg",
    ".m4b": "audio/mp4",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".m3u8": "audio/x-mpegurl; charset=utf-8",
    ".m3u": "audio/x-mpegurl; charset=utf-8",
    ".xml": "application/rss+xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".webmanifest": "application/manifest+json; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".lrc": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8",
    ".srt": "application/x-subrip; charset=utf-8",
}
# Read-only public data that web podcast players fetch from their own origin (feed, chapters,
# transcripts). MP3s need no CORS: <audio> plays cross-origin media without it.
CORS_SUFFIXES = (".json", ".vtt", ".srt")
CORS_ALLOWED_HEADERS = "Range, If-None-Match, If-Modified-Since, If-Range"
METHODS = "GET, HEAD, OPTIONS"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
CHUNK = 64 * 1024
RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")
ETAG = re.compile(r'(?:W/)?"[^"]*"')


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """The inclusive byte span a `Range` header asks for.

    None: no usable range (absent, malformed, several ranges, another unit): send the whole file.
    False: syntactically fine but unsatisfiable (416). Otherwise (first, last), clamped to the file.
    """
    if not header:
        return None
    m = RANGE.match(header)
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


def authorities(host: str, port: int, default_port: int = 80) -> set[str]:
    """The Host header values that name `host:port` (lowercase; without the port when it is the default)."""
    host = host.lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return {f"{host}:{port}", host} if port == default_port else {f"{host}:{port}"}


def base_url_authorities(base_url: str) -> set[str]:
    parts = urlsplit(base_url)
    if not parts.hostname:
        return set()
    default = 443 if parts.scheme == "https" else 80
    return authorities(parts.hostname, parts.port or default, default)


def is_loopback_address(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def file_validators(st: os.stat_result, salt: str = "") -> dict[str, str]:
    """Strong ETag (size and mtime in ns, plus `salt` for a body derived from the file) and Last-Modified."""
    tag = f"{st.st_size:x}-{st.st_mtime_ns:x}" + (f"-{salt}" if salt else "")
    return {"ETag": f'"{tag}"', "Last-Modified": formatdate(st.st_mtime, usegmt=True)}


def cors_headers(name: str) -> dict[str, str]:
    public = name == FEED or name.lower().endswith(CORS_SUFFIXES)
    return {"Access-Control-Allow-Origin": "*"} if public else {}


def http_date(value: str | None) -> int | None:
    """An HTTP-date as a POSIX timestamp, or None if absent or invalid."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": GMT all the same
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def opaque_tag(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def client_copy_current(headers, etag: str, mtime: float) -> bool:
    """RFC 9110 13.1.2/13.1.3: If-None-Match by weak comparison (`*` matches any file); If-Modified-Since
    only without it."""
    none_match = headers.get("If-None-Match")
    if none_match is not None:
        if none_match.strip() == "*":
            return True
        return any(opaque_tag(t) == opaque_tag(etag) for t in ETAG.findall(none_match))
    since = http_date(headers.get("If-Modified-Since"))
    return since is not None and int(mtime) <= since


def if_range_ok(value: str | None, etag: str, mtime: float) -> bool:
    """Honour the Range only if If-Range (when sent) still matches the file exactly (RFC 9110 13.1.5):
    an ETag by strong comparison, a date only if it equals Last-Modified."""
    if not value:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag  # a weak tag never matches
    # A Last-Modified less than a second old may hide a second change in the same second (8.8.2.2).
    return http_date(value) == int(mtime) and time.time() - mtime >= 1
