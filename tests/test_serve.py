"""The library web server over real sockets: ranges, HEAD, content types, refusals, the served feed,
and the `serve` command itself (run as a process and stopped with Ctrl-C)."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from test_indexes import ALBUM, AUTHOR, make_library

from audiogen.cli import cli
from audiogen.publish.indexes import FEED, INDEX, NS, write_indexes
from audiogen.publish.serve import make_server, parse_range

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
    # the phone's Host header decides the address; a bogus one falls back to the server's own
    _, _, body = request(port, "/feed.xml", headers={"Host": "192.168.1.7:8000"})
    assert b'url="http://192.168.1.7:8000/b-morning.mp3"' in body
    _, _, body = request(port, "/feed.xml", headers={"Host": 'x"><evil'})
    assert f'url="http://127.0.0.1:{port}/b-morning.mp3"'.encode() in body and b"evil" not in body


def test_parse_range_edges():
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=9-", 10) == (9, 9)
    assert parse_range("bytes=-10", 10) == (0, 9)
    assert parse_range("bytes=0-", 0) is False
    assert parse_range("bytes=-1", 0) is False


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
