"""Library indexes from a hand-made built folder: real MP3s from ffmpeg, sidecars as build writes them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audiogen.dsp.ffmpeg import ffmpeg_exe
from audiogen.publish.cover import make_cover
from audiogen.publish.feed import FEED, INDEX, NS, write_feed
from audiogen.publish.indexes import write_indexes
from audiogen.publish.lyrics import make_lrc
from audiogen.publish.playlist import PLAYLIST
from audiogen.publish.sessions import LIBRARY_COVER, collect_sessions

ITUNES = f"{{{NS['itunes']}}}"
PODCAST = f"{{{NS['podcast']}}}"
ALBUM = "Test Library"
AUTHOR = "Tester"
HOSTILE = '<script>alert("x")</script> & Co'


def make_mp3(path: Path, seconds: float, freq: int = 440) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-f", "lavfi",
         "-i", f"sine=frequency={freq}:sample_rate=22050:duration={seconds}",
         "-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k", str(path)],
        check=True, capture_output=True,
    )


def add_session(out: Path, slug: str, title: str, *, seconds: float = 2, track: int | None = None,
                chapters: list[tuple[str, int]] | None = None, description: str | None = None,
                album: str = ALBUM, artist: str = AUTHOR, cover: bool = True, freq: int = 440) -> dict:
    """Write `<slug>.mp3` (+ .png, .lrc) and the `<slug>.json` sidecar the way build does."""
    out.mkdir(parents=True, exist_ok=True)
    make_mp3(out / f"{slug}.mp3", seconds, freq)
    length_ms = int(seconds * 1000)
    chapters = chapters or [("Intro", 0)]
    chs = []
    for i, (name, start) in enumerate(chapters):
        end = chapters[i + 1][1] if i + 1 < len(chapters) else length_ms
        chs.append({"title": name, "start_ms": start, "end_ms": end, "kind": "step", "step": i})
    events = [{"kind": "speech", "start_ms": c["start_ms"] + 100, "end_ms": c["start_ms"] + 500, "role": "say",
               "text": f"Say {c['title']}", "chapter": i} for i, c in enumerate(chs)]
    timeline = {
        "title": title, "length_ms": length_ms, "estimated": False, "chapters": chs, "events": events,
        "warnings": [], "engine": "espeak", "voice": "en-us", "language": "en", "source": f"{slug}.yaml",
        "audiogen": "0.1.0", "slug": slug, "mp3": f"{slug}.mp3", "description": description,
        "album": album, "artist": artist, "track": track, "cover": f"{slug}.png" if cover else None,
        "lrc": f"{slug}.lrc",
    }
    if cover:
        (out / f"{slug}.png").write_bytes(make_cover(title, album, size=120))
    (out / f"{slug}.lrc").write_text(make_lrc(timeline), encoding="utf-8")
    (out / f"{slug}.json").write_text(json.dumps(timeline, indent=1), encoding="utf-8")
    return timeline


def make_library(out: Path) -> Path:
    """Three sessions whose file names sort differently from their track order, one hostile title."""
    add_session(out, "a-evening", "Evening Release", track=3, seconds=2,
                chapters=[("Intro", 0), ("Shoulders", 1000)], description="Unwind & rest.")
    add_session(out, "b-morning", "Morning Lift", track=1, seconds=3, freq=330,
                chapters=[("Intro", 0), ("Forehead", 1200), ("Outro", 2500)])
    add_session(out, "c-hostile", HOSTILE, track=2, seconds=1.5, freq=550,
                chapters=[("Start <b>bold</b>", 0), ("Jump \"here\" & now", 750)])
    (out / ".audiogen-manifest.json").write_text('{"a-evening": {"fingerprint": "x"}}')
    (out / "broken.json").write_text("{not json")
    (out / "orphan.json").write_text(json.dumps({"title": "Gone", "mp3": "gone.mp3", "length_ms": 1}))
    (out / "escape.json").write_text(json.dumps({"title": "Out", "mp3": "../a-evening.mp3", "length_ms": 1}))
    return out


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    out = make_library(tmp_path_factory.mktemp("lib") / "output")
    write_indexes(out, ALBUM, AUTHOR)
    return out


def items(out: Path) -> list[ET.Element]:
    return ET.parse(out / FEED).getroot().find("channel").findall("item")


def test_collect_sessions_reads_sidecars_in_track_order(library):
    sessions = collect_sessions(library)
    assert [s["slug"] for s in sessions] == ["b-morning", "c-hostile", "a-evening"]
    for s in sessions:
        assert s["size_bytes"] == (library / s["mp3"]).stat().st_size > 0
        assert s["mtime"] == (library / s["mp3"]).stat().st_mtime


def test_sessions_without_track_come_last_and_missing_covers_are_dropped(tmp_path):
    add_session(tmp_path, "zz", "Zed", track=1, seconds=1)
    add_session(tmp_path, "aa", "Alpha", track=None, seconds=1, cover=False)
    add_session(tmp_path, "mm", "mu", track=None, seconds=1)
    (tmp_path / "mm.png").unlink()
    sessions = collect_sessions(tmp_path)
    assert [s["slug"] for s in sessions] == ["zz", "aa", "mm"]
    assert sessions[2]["cover"] is None
    write_indexes(tmp_path, None, None)  # album and author default to the sidecars'
    channel = ET.parse(tmp_path / FEED).getroot().find("channel")
    assert channel.findtext("title") == ALBUM and channel.findtext(f"{ITUNES}author") == AUTHOR
    assert channel.findtext(f"{ITUNES}type") == "episodic"  # not every session has a track
    assert [i.find(f"{ITUNES}image") is not None for i in channel.findall("item")] == [True, False, False]


def test_feed_enclosures_match_the_files(library):
    channel = ET.parse(library / FEED).getroot().find("channel")
    assert channel.findtext("title") == ALBUM
    assert channel.findtext(f"{ITUNES}author") == AUTHOR
    assert channel.find(f"{ITUNES}category").get("text") == "Health & Fitness"
    assert channel.findtext(f"{ITUNES}type") == "serial"
    assert channel.find(f"{ITUNES}image").get("href") == LIBRARY_COVER
    assert (library / LIBRARY_COVER).read_bytes()[:4] == b"\x89PNG"
    found = items(library)
    assert [i.findtext("title") for i in found] == ["Morning Lift", HOSTILE, "Evening Release"]
    sessions = {s["title"]: s for s in collect_sessions(library)}
    for item in found:
        s = sessions[item.findtext("title")]
        enc = item.find("enclosure")
        assert enc.get("type") == "audio/mpeg"
        assert enc.get("url") == s["mp3"]
        assert int(enc.get("length")) == os.path.getsize(library / enc.get("url"))
        assert item.findtext(f"{ITUNES}duration") == str(round(s["length_ms"] / 1000))
        assert item.findtext(f"{ITUNES}episode") == str(s["track"])
        assert item.find(f"{ITUNES}image").get("href") == s["cover"]
        assert item.find("guid").get("isPermaLink") == "false"
        assert re.match(r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]0000$", item.findtext("pubDate"))
        chapters = item.find(f"{PODCAST}chapters")
        assert chapters.get("type") == "application/json+chapters"
        data = json.loads((library / chapters.get("url")).read_text())
        assert data["version"] == "1.2.0"
        assert [(c["title"], c["startTime"]) for c in data["chapters"]] == [
            (c["title"], c["start_ms"] / 1000) for c in s["chapters"]]
    assert "Unwind &amp; rest." in (library / FEED).read_text()


def test_guids_are_unique_and_survive_rebuilds(library, tmp_path):
    before = [i.findtext("guid") for i in items(library)]
    assert len(set(before)) == len(before)
    # "rebuild" one session with different audio: the file changes, its guid does not
    copy = tmp_path / "out"
    copy.mkdir()
    for f in library.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    make_mp3(copy / "b-morning.mp3", 2.5, 600)
    write_feed(copy, collect_sessions(copy), ALBUM, AUTHOR, None)
    after = {i.findtext("title"): (i.findtext("guid"), i.find("enclosure").get("length")) for i in items(copy)}
    assert [after[t][0] for t in ("Morning Lift", HOSTILE, "Evening Release")] == before
    assert int(after["Morning Lift"][1]) == (copy / "b-morning.mp3").stat().st_size
    # another album: other guids (two libraries in one app do not collide)
    write_feed(copy, collect_sessions(copy), "Other", AUTHOR, None)
    assert not set(before) & {i.findtext("guid") for i in items(copy)}


def test_unchanged_rebuild_rewrites_nothing(library):
    names = [FEED, PLAYLIST, INDEX, LIBRARY_COVER, "b-morning.chapters.json"]
    before = {n: ((library / n).read_bytes(), (library / n).stat().st_mtime_ns) for n in names}
    write_indexes(library, ALBUM, AUTHOR)
    assert before == {n: ((library / n).read_bytes(), (library / n).stat().st_mtime_ns) for n in names}
    assert not [p.name for p in library.iterdir() if p.name.endswith(".part")]


def test_feed_with_base_url_has_absolute_quoted_urls(tmp_path):
    add_session(tmp_path, "one", "One", track=1, seconds=1)
    write_feed(tmp_path, collect_sessions(tmp_path), "Lib", "Me", "http://phone.example:8000/sub dir")
    channel = ET.parse(tmp_path / FEED).getroot().find("channel")
    [item] = channel.findall("item")
    assert item.find("enclosure").get("url") == "http://phone.example:8000/sub dir/one.mp3"
    assert item.find(f"{ITUNES}image").get("href") == "http://phone.example:8000/sub dir/one.png"
    assert channel.find(f"{ITUNES}image").get("href") == f"http://phone.example:8000/sub dir/{LIBRARY_COVER}"
    assert channel.find(f"{{{NS['atom']}}}link").get("href") == "http://phone.example:8000/sub dir/feed.xml"


def test_feedparser_reads_the_feed(library):
    feedparser = pytest.importorskip("feedparser", reason="pip install feedparser to cross-check the feed")
    d = feedparser.parse((library / FEED).read_bytes())
    assert not d.bozo, d.get("bozo_exception")
    assert d.feed.title == ALBUM and d.feed.author == AUTHOR
    assert d.feed.image.href == LIBRARY_COVER
    assert [e.title for e in d.entries] == ["Morning Lift", HOSTILE, "Evening Release"]
    for e in d.entries:
        [enc] = e.enclosures
        assert enc.type == "audio/mpeg"
        assert int(enc.length) == os.path.getsize(library / enc.href)
        assert e.id.startswith("audiogen:") and e.guidislink is False
        assert int(e.itunes_duration) in (2, 3) and e.published_parsed


def test_m3u8_lists_sessions_in_order_with_durations(library):
    raw = (library / PLAYLIST).read_bytes()
    text = raw.decode("utf-8")
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[1] == f"#PLAYLIST:{ALBUM}"
    entries = list(zip(lines[2::2], lines[3::2], strict=True))
    assert entries == [
        (f"#EXTINF:3,{AUTHOR} - Morning Lift", "b-morning.mp3"),
        (f"#EXTINF:2,{AUTHOR} - {HOSTILE}", "c-hostile.mp3"),  # 1.5 s rounds to 2
        (f"#EXTINF:2,{AUTHOR} - Evening Release", "a-evening.mp3"),
    ]
    for _, name in entries:
        assert (library / name).is_file()


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.scripts += tag == "script"

    def handle_data(self, data):
        self.text.append(data)


def test_index_html_plays_every_session_and_seeks_chapters(library):
    source = (library / INDEX).read_text("utf-8")
    page = _Page()
    page.feed(source)
    page.close()
    tags = page.tags
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in tags
    audios = [a for t, a in tags if t == "audio"]
    assert [a["src"] for a in audios] == ["b-morning.mp3", "c-hostile.mp3", "a-evening.mp3"]
    assert all(a["preload"] == "metadata" and "controls" in a for a in audios)
    seeks = [a["data-t"] for t, a in tags if t == "button" and "data-t" in a]
    assert seeks == ["0.000", "1.200", "2.500", "0.000", "0.750", "0.000", "1.000"]
    downloads = [a["href"] for t, a in tags if t == "a" and "download" in a]
    assert downloads == ["b-morning.mp3", "c-hostile.mp3", "a-evening.mp3"]
    assert [a["src"] for t, a in tags if t == "img"] == ["b-morning.png", "c-hostile.png", "a-evening.png"]
    # hostile titles are text, not markup: one script (ours), the title readable as written
    assert page.scripts == 1
    assert "<script>alert" not in source and "<b>bold" not in source
    text = "".join(page.text)
    assert HOSTILE in text and 'Jump "here" & now' in text and "Start <b>bold</b>" in text
    # self-contained: nothing is loaded from another site
    assert not re.search(r'(src|href)="(https?:)?//', source)


def test_the_card_shows_the_length_the_player_shows(tmp_path):
    """Players show whole seconds, truncated: a 2.8 s session is 0:02 on its card too, not 0:03."""
    out = tmp_path / "out"
    add_session(out, "short", "Short", seconds=2.8)
    write_indexes(out, ALBUM, AUTHOR)
    page = (out / "index.html").read_text("utf-8")
    card = page[page.index('id="short"'):]
    assert '<p class="meta">0:02' in card and "0:03" not in card[: card.index("</article>")]
