"""The library web server over real sockets: ranges, HEAD, content types, refusals, the served feed,
and the `serve` command itself (run as a process and stopped with Ctrl-C)."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from test_indexes import ALBUM, AUTHOR, make_library

from audiogen.cli import cli
from audiogen.publish.httpspec import parse_range
from audiogen.publish.indexes import FEED, INDEX, NS, write_indexes
from audiogen.publish.serve import lan_address, make_server

ITUNES = f"{{{NS['itunes']}}}"
PODCAST = f"{{{NS['podcast']}}}"
SECRET = "outside the library: never served"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("serve")
    (base / "secret.txt").write_text(SECRET)
    root = make_library(base / "output")
    write_indexes(root, ALBUM, AUTHOR)
    (root / "leak.txt").symlink_to(base / "secret.txt")
    (root / "inside.lrc").symlink_to(root / "b-morning.lrc")
    (root / "sub").mkdir()
    (root / "sub" / "x.png").write_bytes(b"\x89PNG")
    (root / "b-morning.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nBreathe in\n")
    (root / "b-morning.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nBreathe in\n")
    server = make_server(root, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, server.server_address[1]
    server.shutdown()
    server.server_close()


def request(port: int, path: str, method: str = "GET", headers: dict | None = None):
    """Send `path` exactly as given (no client-side normalisation); return (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        hdrs = {"Host": f"127.0.0.1:{port}", **(headers or {})}
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_root_is_the_index_page(served):
    root, port = served
    status, headers, body = request(port, "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert body == (root / INDEX).read_bytes()


@pytest.mark.parametrize("name, ctype", [
    ("b-morning.mp3", "audio/mpeg"), ("playlist.m3u8", "audio/x-mpegurl; charset=utf-8"),
    ("b-morning.json", "application/json"), ("b-morning.png", "image/png"),
    ("b-morning.lrc", "text/plain; charset=utf-8"), ("index.html", "text/html; charset=utf-8"),
    ("b-morning.chapters.json", "application/json"), ("inside.lrc", "text/plain; charset=utf-8"),
])
def test_files_are_served_whole_with_their_type(served, name, ctype):
    root, port = served
    status, headers, body = request(port, "/" + name)
    assert status == 200, name
    assert headers["content-type"] == ctype
    assert headers["accept-ranges"] == "bytes"
    assert body == (root / name).read_bytes()
    assert int(headers["content-length"]) == len(body)


def test_byte_ranges(served):
    root, port = served
    data = (root / "b-morning.mp3").read_bytes()
    size = len(data)

    def get(spec):
        return request(port, "/b-morning.mp3", headers={"Range": spec})

    status, h, body = get("bytes=100-199")
    assert (status, h["content-range"], body) == (206, f"bytes 100-199/{size}", data[100:200])
    assert h["content-length"] == "100"
    status, h, body = get("bytes=1000-")
    assert (status, h["content-range"], body) == (206, f"bytes 1000-{size - 1}/{size}", data[1000:])
    status, h, body = get("bytes=-500")
    assert (status, h["content-range"], body) == (206, f"bytes {size - 500}-{size - 1}/{size}", data[-500:])
    status, h, body = get(f"bytes=10-{size * 5}")  # past the end: clamped
    assert (status, h["content-range"], body) == (206, f"bytes 10-{size - 1}/{size}", data[10:])
    status, h, body = get(f"bytes=-{size * 2}")  # longer suffix than the file: all of it
    assert (status, body) == (206, data)
    for bad in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        status, h, _ = get(bad)
        assert status == 416 and h["content-range"] == f"bytes */{size}", bad
    for ignored in ("bytes=5-1", "items=0-1", "bytes=0-1,5-6", "bytes=x-"):  # not a usable range: whole file
        status, h, body = get(ignored)
        assert (status, body) == (200, data), ignored
    # If-Range with a stale validator: the whole (new) file instead of a mismatched piece
    status, h, _ = get("bytes=0-9")
    status2, _, body = request(port, "/b-morning.mp3", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert (status2, body) == (200, data)
    status3, _, body = request(port, "/b-morning.mp3", headers={"Range": "bytes=0-9", "If-Range": h["etag"]})
    assert (status3, body) == (206, data[:10])


def test_head_sends_headers_only(served):
    root, port = served
    size = (root / "a-evening.mp3").stat().st_size
    status, h, body = request(port, "/a-evening.mp3", "HEAD")
    assert (status, h["content-length"], h["content-type"], body) == (200, str(size), "audio/mpeg", b"")
    status, h, body = request(port, "/a-evening.mp3", "HEAD", {"Range": "bytes=0-9"})
    assert (status, h["content-length"], h["content-range"], body) == (206, "10", f"bytes 0-9/{size}", b"")


@pytest.mark.parametrize("path", [
    "/../etc/passwd", "/../../../../etc/passwd", "/%2e%2e/x", "/%2E%2E/%2e%2e/etc/passwd", "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt", "/sub/../../secret.txt", "//etc/passwd", "/%2fetc%2fpasswd", "/leak.txt",
    "/.audiogen-manifest.json", "/sub/", "/sub", "/missing.mp3", "/a%00.mp3", "/%ff.mp3",
    "http://127.0.0.1/../secret.txt", "/..\\secret.txt", "/%5c..%5csecret.txt",
])
def test_nothing_outside_the_folder_is_served(served, path):
    _, port = served
    status, _, body = request(port, path)
    assert status in (403, 404), path
    assert SECRET.encode() not in body and b"root:" not in body


def test_symlink_out_of_the_folder_is_forbidden(served):
    _, port = served
    assert request(port, "/leak.txt")[0] == 403


def test_only_get_and_head(served):
    _, port = served
    assert request(port, "/index.html", "POST", {"Content-Length": "0"})[0] == 501
    assert request(port, "/index.html", "PUT", {"Content-Length": "0"})[0] == 501


def test_served_feed_points_at_the_server_and_every_enclosure_downloads(served):
    root, port = served
    status, h, body = request(port, "/feed.xml")
    assert status == 200 and h["content-type"] == "application/rss+xml; charset=utf-8"
    channel = ET.fromstring(body).find("channel")
    assert channel.findtext("title") == ALBUM and channel.findtext(f"{ITUNES}author") == AUTHOR
    base = f"http://127.0.0.1:{port}/"
    urls = [channel.find(f"{ITUNES}image").get("href")]
    items = channel.findall("item")
    assert len(items) == 3
    for item in items:
        enc = item.find("enclosure")
        assert enc.get("url").startswith(base)
        status, h, data = request(port, urlsplit(enc.get("url")).path)
        assert status == 200 and h["content-type"] == enc.get("type") == "audio/mpeg"
        assert len(data) == int(enc.get("length")) == int(h["content-length"])
        urls += [item.find(f"{ITUNES}image").get("href"), item.find(f"{PODCAST}chapters").get("url")]
    for url in urls:
        assert url.startswith(base)
        assert request(port, urlsplit(url).path)[0] == 200, url
    # the guids are those of the feed on disk (one subscription, whichever address it came from)
    on_disk = [i.findtext("guid") for i in ET.parse(root / FEED).getroot().iter("item")]
    assert [i.findtext("guid") for i in items] == on_disk
    # the Host header decides the address, among the server's own names; any other is refused
    _, _, body = request(port, "/feed.xml", headers={"Host": f"localhost:{port}"})
    assert f'url="http://localhost:{port}/b-morning.mp3"'.encode() in body
    for host in ("192.168.1.7:8000", 'x"><evil'):
        status, _, body = request(port, "/feed.xml", headers={"Host": host})
        assert status == 421 and b"url=" not in body and b"evil" not in body


def test_parse_range_edges():
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=9-", 10) == (9, 9)
    assert parse_range("bytes=-10", 10) == (0, 9)
    assert parse_range("bytes=0-", 0) is False
    assert parse_range("bytes=-1", 0) is False


# -- conditional requests ---------------------------------------------------------------------------
HTTP_DATE = "%a, %d %b %Y %H:%M:%S GMT"


def http_date(ts: float) -> str:
    return time.strftime(HTTP_DATE, time.gmtime(ts))


@pytest.mark.parametrize("name", ["b-morning.mp3", "index.html", "b-morning.chapters.json", "b-morning.vtt"])
def test_files_carry_validators_and_answer_304(served, name):
    root, port = served
    st = (root / name).stat()
    path = "/" + name
    status, h, body = request(port, path)
    assert status == 200 and body == (root / name).read_bytes()
    etag = h["etag"]
    assert etag == f'"{st.st_size:x}-{st.st_mtime_ns:x}"'  # strong: no W/
    assert h["last-modified"] == http_date(st.st_mtime)

    def cond(headers, method="GET"):
        return request(port, path, method, headers)

    for inm in (etag, f'"other", {etag}', f"W/{etag}", "*", f' "a" ,W/{etag} '):  # a list, weak comparison
        status, h304, body = cond({"If-None-Match": inm})
        assert (status, body) == (304, b""), inm
        assert h304["etag"] == etag and h304["last-modified"] == h["last-modified"]
        assert "content-length" not in h304
    assert cond({"If-None-Match": etag}, "HEAD")[:1] == (304,)
    assert cond({"If-None-Match": etag, "Range": "bytes=0-1"})[0] == 304  # 304 wins over the range
    for inm in ('"other"', 'W/"other"', f'"{etag}"', ""):
        status, _, body = cond({"If-None-Match": inm})
        assert (status, body) == (200, (root / name).read_bytes()), inm
    later, earlier = http_date(st.st_mtime + 60), http_date(st.st_mtime - 60)
    assert cond({"If-Modified-Since": h["last-modified"]})[0] == 304
    assert cond({"If-Modified-Since": later})[0] == 304
    assert cond({"If-Modified-Since": earlier})[0] == 200
    assert cond({"If-Modified-Since": "yesterday-ish"})[0] == 200  # not a date: ignored
    # If-None-Match decides alone when both are sent (RFC 9110 13.2.2)
    assert cond({"If-None-Match": '"other"', "If-Modified-Since": later})[0] == 200
    assert cond({"If-None-Match": etag, "If-Modified-Since": earlier})[0] == 304


def test_feed_validators_follow_the_file_and_the_base_url(served):
    root, port = served
    feed = root / FEED
    st = feed.stat()
    status, h1, body1 = request(port, "/feed.xml")
    status2, h2, body2 = request(port, "/feed.xml", headers={"Host": f"localhost:{port}"})
    assert status == status2 == 200 and body1 != body2
    assert h1["etag"] != h2["etag"] and not h1["etag"].startswith("W/")
    assert h1["etag"].startswith(f'"{st.st_size:x}-{st.st_mtime_ns:x}-')
    assert h1["last-modified"] == h2["last-modified"] == http_date(st.st_mtime)
    status, h, body = request(port, "/feed.xml", headers={"If-None-Match": h1["etag"]})
    assert (status, body, h["etag"]) == (304, b"", h1["etag"])
    assert h["access-control-allow-origin"] == "*"
    # another base URL's tag does not match this one's body
    assert request(port, "/feed.xml", headers={"If-None-Match": h2["etag"]})[0] == 200
    assert request(port, "/feed.xml", headers={"If-Modified-Since": h1["last-modified"]})[0] == 304
    os.utime(feed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a rebuild rewrote feed.xml
    try:
        status, h, _ = request(port, "/feed.xml", headers={"If-None-Match": h1["etag"]})
        assert status == 200 and h["etag"] != h1["etag"]
    finally:
        os.utime(feed, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_if_range_must_match_exactly(served):
    root, port = served
    path = root / "if-range.mp3"
    data = (root / "b-morning.mp3").read_bytes()
    path.write_bytes(data)
    try:
        h = request(port, "/if-range.mp3")[1]
        # a Last-Modified under a second old is weak (RFC 9110 8.8.2.2): no date can match it
        assert request(port, "/if-range.mp3", headers={"Range": "bytes=0-9", "If-Range": h["last-modified"]})[0] == 200
        past = time.time() - 3600
        os.utime(path, (past, past))
        h = request(port, "/if-range.mp3")[1]
        etag, modified = h["etag"], h["last-modified"]

        def ranged(if_range):
            status, _, body = request(port, "/if-range.mp3", headers={"Range": "bytes=0-9", "If-Range": if_range})
            return status, body

        assert ranged(etag) == (206, data[:10])
        assert ranged(modified) == (206, data[:10])
        assert ranged(http_date(past + 1)) == (200, data)  # later than Last-Modified: not a match
        assert ranged(http_date(past - 1)) == (200, data)
        assert ranged(f"W/{etag}") == (200, data)  # If-Range compares strongly: a weak tag never matches
        assert ranged('"nope"') == (200, data)
        assert ranged("not a date") == (200, data)
    finally:
        path.unlink()


# -- CORS -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, cors", [
    ("feed.xml", True), ("b-morning.chapters.json", True), ("b-morning.json", True), ("b-morning.vtt", True),
    ("b-morning.srt", True), ("b-morning.mp3", False), ("index.html", False), ("b-morning.png", False),
    ("playlist.m3u8", False),
])
def test_public_data_is_readable_from_any_origin(served, name, cors):
    _, port = served
    status, h, _ = request(port, "/" + name, headers={"Origin": "https://player.example"})
    assert status == 200
    assert h.get("access-control-allow-origin") == ("*" if cors else None)
    status, h, body = request(port, "/" + name, "OPTIONS", {
        "Origin": "https://player.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match"})
    assert (status, body) == (204, b"") and h["allow"] == "GET, HEAD, OPTIONS"
    assert "content-length" not in h
    if cors:
        assert h["access-control-allow-origin"] == "*"
        assert h["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
        assert "if-none-match" in h["access-control-allow-headers"].lower()
    else:
        assert not any(k.startswith("access-control-") for k in h)


def test_options_refuses_like_get(served):
    _, port = served
    assert request(port, "/missing.json", "OPTIONS")[0] == 404
    assert request(port, "/../secret.txt", "OPTIONS")[0] == 404
    assert request(port, "/feed.xml", "OPTIONS", {"Host": "evil.example"})[0] == 421
    status, h, _ = request(port, "*", "OPTIONS")
    assert status == 204 and h["allow"] == "GET, HEAD, OPTIONS"


# -- Host checking (DNS rebinding) -------------------------------------------------------------------
@contextlib.contextmanager
def running(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_only_hosts_naming_a_loopback_server_are_answered(served):
    _, port = served
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}", f"[::1]:{port}"):
        assert request(port, "/", headers={"Host": host})[0] == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", "127.0.0.1", "localhost",
                 f"192.168.1.7:{port}", f"127.0.0.1.evil.example:{port}", f"localhost.:{port}"):
        for path in ("/", "/feed.xml", "/b-morning.mp3", "/missing.mp3"):
            status, _, body = request(port, path, headers={"Host": host})
            assert (status, body) == (421, b"421 Misdirected Request\n"), (host, path)
    assert request(port, "/", headers={"Host": ""})[0] == 400


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_host_header_must_be_single_and_http_1_0_may_omit_it(served):
    _, port = served
    twice = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    assert raw(port, twice.encode()).startswith(b"HTTP/1.1 400 ")
    assert raw(port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    reply = raw(port, b"GET /feed.xml HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 ") and f"http://127.0.0.1:{port}/b-morning.mp3".encode() in reply


def test_base_url_host_is_answered(served):
    root, _ = served
    for base, good, bad in [
        ("http://audio.example:8000/", ["audio.example:8000", "AUDIO.example:8000"], ["audio.example"]),
        ("https://audio.example/lib/", ["audio.example", "audio.example:443"], ["audio.example:80", "other.example"]),
    ]:
        with running(make_server(root, "127.0.0.1", 0, base_url=base)) as port:
            for host in good:
                status, _, body = request(port, "/feed.xml", headers={"Host": host})
                assert status == 200 and f'url="{base}b-morning.mp3"'.encode() in body, host
            for host in bad:
                assert request(port, "/feed.xml", headers={"Host": host})[0] == 421, host
            assert request(port, "/", headers={"Host": f"localhost:{port}"})[0] == 200  # still its own names


def test_lan_server_answers_its_lan_and_loopback_names(served):
    root, _ = served
    lan = lan_address()
    with running(make_server(root, "0.0.0.0", 0)) as port:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}") + ((f"{lan}:{port}",) if lan else ()):
            assert request(port, "/", headers={"Host": host})[0] == 200, host
        assert request(port, "/", headers={"Host": f"evil.example:{port}"})[0] == 421
        if lan:  # a phone's view: connected to the LAN address, feed URLs on it
            conn = http.client.HTTPConnection(lan, port, timeout=10)
            conn.request("GET", "/feed.xml")
            resp = conn.getresponse()
            assert resp.status == 200 and f"http://{lan}:{port}/b-morning.mp3".encode() in resp.read()
            conn.close()


# -- stalled clients ----------------------------------------------------------------------------------
def handler_threads() -> int:
    return sum("process_request_thread" in t.name for t in threading.enumerate())


def wait_until(condition, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_stalled_connections_neither_block_others_nor_stay_open(served):
    """100 clients that send nothing or half a request line: a normal GET is still answered within 5 s
    (over 10x the idle timeout), no more than 32 handler threads run, and every stalled connection is
    closed once idle for the timeout."""
    root, _ = served
    idle = 0.4
    wait_until(lambda: handler_threads() == 0)  # earlier tests' connections are gone
    with running(make_server(root, "127.0.0.1", 0, idle_timeout=idle)) as port:
        stalled = []
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                s.sendall(b"GET /index.ht")
            stalled.append(s)
        seen = [handler_threads()]
        while len(seen) < 30 or (seen[-1] < 32 and len(seen) < 500):  # 0.3 s at least, 5 s at most
            time.sleep(0.01)
            seen.append(handler_threads())
        assert max(seen) == 32  # the others wait in the listen backlog
        start = time.monotonic()
        status, _, body = request(port, "/")
        took = time.monotonic() - start
        assert status == 200 and body == (root / INDEX).read_bytes()
        assert took < 5.0, took
        deadline = time.monotonic() + 10
        for s in stalled:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(1024) == b""  # closed by the server (no response to half a request)
            s.close()
        closed = time.monotonic() - start
        print(f"\nGET with 100 stalled connections: {took:.2f} s; all stalled closed after {closed:.2f} s")
        assert handler_threads() <= 32


def test_shutdown_is_prompt_while_every_slot_is_held(served):
    root, _ = served
    wait_until(lambda: handler_threads() == 0)
    server = make_server(root, "127.0.0.1", 0, idle_timeout=30)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
    try:
        wait_until(lambda: handler_threads() >= 32)
        assert handler_threads() == 32
        # the accept loop is waiting for a slot: it must still notice (idle: milliseconds; a loop that
        # waited for a slot would never return, so the bound only has to be finite)
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        stopper.join(30)
        assert not stopper.is_alive(), "shutdown() hung while every handler slot was held"
        thread.join(30)
        assert not thread.is_alive()
    finally:
        server.server_close()
        for s in stalled:
            s.close()


# -- the command ----------------------------------------------------------------------------------
def test_command_refuses_a_folder_that_is_not_a_built_library(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["serve", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no such folder" in result.output and "audiogen build" in result.output
    result = runner.invoke(cli, ["serve", str(tmp_path)])
    assert result.exit_code == 1
    assert "index.html" in result.output and "audiogen build" in result.output


@contextlib.contextmanager
def serving(root: Path, *args: str):
    """`audiogen serve ROOT ARGS` in a child process, yielded with its banner (read up to "Ctrl-C ...");
    killed at the end if the test did not stop it."""
    code = "import sys; from audiogen.cli import cli; cli(['serve', *sys.argv[1:]])"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code, str(root), "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_command_serves_prints_a_qr_code_and_stops_cleanly_on_ctrl_c(served):
    root, _ = served
    with serving(root, "--base-url", "http://192.168.1.50:8000") as (proc, lines):
        out = "".join(lines)
        port = int(re.search(r"on http://127\.0\.0\.1:(\d+)/", out).group(1))
        assert "open:  http://192.168.1.50:8000/\n" in out
        assert "feed:  http://192.168.1.50:8000/feed.xml" in out
        assert sum("█" in ln or "▀" in ln for ln in lines) > 10  # the QR code
        status, _, body = request(port, "/")
        assert status == 200 and body == (root / INDEX).read_bytes()
        _, _, feed = request(port, "/feed.xml")
        assert b'url="http://192.168.1.50:8000/b-morning.mp3"' in feed  # --base-url wins over Host
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert rest.strip() == "stopped serving"
    assert "Traceback" not in err
    assert '"GET / HTTP/1.1" 200' in err  # one log line per request


def test_command_on_localhost_prints_no_qr_code(served):
    root, _ = served
    with serving(root) as (proc, lines):
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    out = "".join(lines)
    assert "add --lan" in out and "█" not in out
    assert proc.returncode == 0


def test_the_served_feed_keeps_the_feed_settings_the_build_wrote(tmp_path):
    """serve regenerates feed.xml for its own address: a private library must stay private there, and the
    owner and category must survive."""
    root = make_library(tmp_path / "output")
    write_indexes(root, ALBUM, AUTHOR, feed={"private": True, "email": "owner@example.org",
                                           "category": "Health & Fitness > Alternative Health"})
    server = make_server(root, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, _, body = request(server.server_address[1], "/feed.xml")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200
    channel = ET.fromstring(body).find("channel")
    assert channel.find(f"{{{NS['itunes']}}}block").text == "Yes"
    assert channel.find(f"{{{NS['itunes']}}}owner/{{{NS['itunes']}}}email").text == "owner@example.org"
    assert channel.find(f"{{{NS['itunes']}}}category").get("text") == "Health & Fitness"
