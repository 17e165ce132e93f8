"""A feed podcast apps accept: absolute URLs from audiogen.yaml, a clear note when they are relative, stable
ordered pubDates, and publishing options that never re-render audio. Read back with gPodder's podcastparser
and feedparser, which audiogen did not write."""

from __future__ import annotations

import email.utils
import io
import os
import subprocess
import sys

import feedparser
import pytest
from buildkit import make_library

from audiogen.build import BuildOptions, build

podcastparser = pytest.importorskip("podcastparser", reason="pip install -e '.[test]' (podcastparser)")

BASE = "https://example.org/massage/"


def _build(lib, out, **kw):
    notes: list[str] = []
    results = build([lib], BuildOptions(out_dir=out, notify=notes.append, **kw))
    assert not [r for r in results if r.status == "failed"], [r.error for r in results]
    return results, notes


def _mtimes(out):
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A library of three with output.base_url in its audiogen.yaml."""
    tmp = tmp_path_factory.mktemp("feed")
    lib = make_library(tmp / "lib")
    (lib / "audiogen.yaml").write_text(f"album: Feed Test\noutput:\n  base_url: {BASE}\n")
    out = tmp / "out"
    results, notes = _build(lib, out)
    return lib, out, results, notes


def test_base_url_from_the_library_makes_every_feed_url_absolute(published):
    _, out, _, notes = published
    xml = (out / "feed.xml").read_bytes()
    parsed = podcastparser.parse(BASE + "feed.xml", io.BytesIO(xml))
    assert len(parsed["episodes"]) == 3
    for ep in parsed["episodes"]:
        [enclosure] = ep["enclosures"]
        assert enclosure["url"].startswith(BASE) and enclosure["url"].endswith(".mp3")
    assert parsed["cover_url"].startswith(BASE)
    fp = feedparser.parse(xml)
    for entry in fp.entries:
        assert entry.enclosures[0].href.startswith(BASE)
        assert entry["podcast_chapters"]["url"].startswith(BASE) if "podcast_chapters" in entry else True
    assert b'<podcast:chapters url="' + BASE.encode() in xml
    assert b'rel="self"' in xml and (BASE + "feed.xml").encode() in xml
    assert not [n for n in notes if "relative" in n]


def test_pubdates_follow_the_track_order_and_survive_a_forced_rebuild(published):
    lib, out, _, _ = published
    def dates():
        fp = feedparser.parse((out / "feed.xml").read_bytes())
        return {e.title: email.utils.parsedate_to_datetime(e.published) for e in fp.entries}

    before = dates()
    ordered = [before[f"Routine {n}"] for n in (1, 2, 3)]
    assert ordered == sorted(ordered) and len(set(ordered)) == 3  # apps list the library in order
    _build(lib, out, force=True)
    assert dates() == before


def test_a_feed_without_a_base_url_says_so_once(tmp_path):
    lib = make_library(tmp_path / "lib", numbers=(1, 2))
    _, notes = _build(lib, tmp_path / "out")
    relative = [n for n in notes if "relative" in n]
    assert len(relative) == 1
    assert "base_url" in relative[0] and "--base-url" in relative[0] and "audiogen serve" in relative[0]
    parsed = podcastparser.parse("http://x/feed.xml", (tmp_path / "out" / "feed.xml").open("rb"))
    assert len(parsed["episodes"]) == 2


def test_a_rebuild_answered_from_its_stamp_still_says_the_feed_is_relative(tmp_path):
    """The command line answers an unchanged library from its no-op stamp, without loading it: the note
    about relative URLs must come again on every such build, not only on the first."""
    from buildkit import ROOT

    lib = make_library(tmp_path / "lib", numbers=(1,))
    env = {**os.environ, "AUDIOGEN_OFFLINE": "1", "AUDIOGEN_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT)}
    said = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "audiogen", "build", str(lib), "-o", str(tmp_path / "out")],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr
        said.append(done.stdout + done.stderr)
    assert "unchanged" in said[1]  # the second build was the no-op
    for text in said:
        assert text.count("has relative URLs") == 1, text


def test_changing_the_base_url_renders_nothing_and_rewrites_the_feed(tmp_path):
    lib = make_library(tmp_path / "lib", numbers=(1, 2))
    out = tmp_path / "out"
    _build(lib, out)
    mp3s = _mtimes(out)
    results, _ = _build(lib, out, base_url="https://cdn.example.net/x/")
    assert {r.status for r in results} == {"skipped"}
    assert _mtimes(out) == mp3s  # not one MP3 was encoded or rewritten
    assert b"https://cdn.example.net/x/" in (out / "feed.xml").read_bytes()
    results, _ = _build(lib, out)  # and back: relative again, still nothing rendered
    assert {r.status for r in results} == {"skipped"} and _mtimes(out) == mp3s
    assert b"https://cdn.example.net/" not in (out / "feed.xml").read_bytes()


def test_a_single_routine_gets_a_page_feed_and_playlist(tmp_path):
    lib = make_library(tmp_path / "lib", numbers=(1,))
    out = tmp_path / "out"
    results = build([lib / "r1.yaml"], BuildOptions(out_dir=out))
    assert results[0].status == "built"
    for name in ("index.html", "feed.xml", "playlist.m3u8"):
        assert (out / name).is_file(), name
    assert "Routine 1" in (out / "index.html").read_text("utf-8")
    parsed = podcastparser.parse("http://x/feed.xml", (out / "feed.xml").open("rb"))
    assert [e["title"] for e in parsed["episodes"]] == ["Routine 1"]
