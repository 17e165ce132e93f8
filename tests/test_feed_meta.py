"""The feed's channel settings (`feed:` in audiogen.yaml): owner and e-mail, Apple category, explicit,
copyright, podcast:locked, blocking, podcast:guid, and Podlove Simple Chapters in every item. Read back
with gPodder's podcastparser, feedparser and xml.etree, none of which audiogen wrote."""

from __future__ import annotations

import io
import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import feedparser
import pytest
from buildkit import make_library
from test_indexes import ALBUM, AUTHOR, add_session

from audiogen.build import BuildOptions, build
from audiogen.publish.feed import FEED, feed_xml
from audiogen.publish.indexes import write_indexes
from audiogen.publish.sessions import collect_sessions
from audiogen.routine.errors import RoutineError
from audiogen.routine.library import LIBRARY_FILE, load_library_config

podcastparser = pytest.importorskip("podcastparser", reason="pip install -e '.[test]' (podcastparser)")

BASE = "https://example.org/relax/"
FEED_URL = BASE + "feed.xml"
IT = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
PC = "{https://podcastindex.org/namespace/1.0}"
PSC = "{http://podlove.org/simple-chapters}"
CONFIGURED = """\
album: Test Library
author: Tester
feed:
  owner: Tess Owner
  email: owner@example.org
  category: Health & Fitness > Alternative Health
  explicit: true
  copyright: CC BY 4.0 Tess Owner
  locked: false
  private: true
"""


def _library(out):
    """Two sessions with chapters, written as build writes them (sidecars + MP3s)."""
    add_session(out, "a-evening", "Evening Release", track=2, seconds=3,
                chapters=[("Intro", 0), ("Shoulders", 1234), ("Rest", 2501)])
    add_session(out, "b-morning", "Morning Lift", track=1, seconds=2, freq=330,
                chapters=[("Arrive", 0), ("Forehead & <brow>", 999)])
    return out


def _config(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LIBRARY_FILE).write_text(text, encoding="utf-8")
    return load_library_config(folder)


def _channel(out):
    return ET.parse(out / FEED).getroot().find("channel")


def _npt_ms(value: str) -> float:
    """`HH:MM:SS.mmm` (RFC 2326 normal play time) in milliseconds, parsed here, not by audiogen."""
    h, m, s = value.split(":")
    return (int(h) * 3600 + int(m) * 60 + float(s)) * 1000


@pytest.fixture(scope="module")
def default_feed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("meta-default")
    out = _library(tmp / "out")
    config = _config(tmp / "lib", "album: Test Library\nauthor: Tester\n")
    write_indexes(out, config.album, config.author, BASE, config.feed)
    return out


@pytest.fixture(scope="module")
def configured_feed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("meta-configured")
    out = _library(tmp / "out")
    config = _config(tmp / "lib", CONFIGURED)
    write_indexes(out, config.album, config.author, BASE, config.feed)
    return out


def test_a_library_without_a_feed_section_gets_the_defaults(default_feed):
    ch = _channel(default_feed)
    owner = ch.find(f"{IT}owner")
    assert owner.findtext(f"{IT}name") == AUTHOR
    assert owner.find(f"{IT}email") is None  # no e-mail given: none invented
    cats = ch.findall(f"{IT}category")
    assert [c.get("text") for c in cats] == ["Health & Fitness"] and not list(cats[0])
    assert ch.findtext(f"{IT}explicit") == "false"
    assert {e.findtext(f"{IT}explicit") for e in ch.findall("item")} == {"false"}
    locked = ch.find(f"{PC}locked")
    assert locked.text == "yes" and locked.get("owner") is None
    assert ch.find(f"{IT}block") is None and ch.find(f"{PC}block") is None
    first = min(s.get("first_built") or int(s["mtime"]) for s in collect_sessions(default_feed))
    assert ch.findtext("copyright") == f"\u00a9 {datetime.fromtimestamp(first, UTC).year} {AUTHOR}"

    fp = feedparser.parse((default_feed / FEED).read_bytes())
    assert not fp.bozo, fp.get("bozo_exception")
    assert fp.feed.publisher_detail.get("name") == AUTHOR and "email" not in fp.feed.publisher_detail
    assert fp.feed.tags[0].term == "Health & Fitness"
    parsed = podcastparser.parse(FEED_URL, io.BytesIO((default_feed / FEED).read_bytes()))
    assert parsed["explicit"] is False and {e["explicit"] for e in parsed["episodes"]} == {False}


def test_the_feed_section_sets_owner_category_explicit_copyright_lock_and_block(configured_feed):
    ch = _channel(configured_feed)
    owner = ch.find(f"{IT}owner")
    assert owner.findtext(f"{IT}name") == "Tess Owner"
    assert owner.findtext(f"{IT}email") == "owner@example.org"
    top = ch.find(f"{IT}category")
    assert top.get("text") == "Health & Fitness"
    assert [c.get("text") for c in top.findall(f"{IT}category")] == ["Alternative Health"]
    assert ch.findtext(f"{IT}explicit") == "true"
    assert {e.findtext(f"{IT}explicit") for e in ch.findall("item")} == {"true"}
    assert ch.findtext("copyright") == "CC BY 4.0 Tess Owner"
    locked = ch.find(f"{PC}locked")
    assert locked.text == "no" and locked.get("owner") == "owner@example.org"
    assert ch.findtext(f"{IT}block") == "Yes"
    assert ch.findtext(f"{PC}block") == "yes"

    fp = feedparser.parse((configured_feed / FEED).read_bytes())
    assert not fp.bozo, fp.get("bozo_exception")
    assert fp.feed.publisher_detail == {"name": "Tess Owner", "email": "owner@example.org"}
    assert [t.term for t in fp.feed.tags] == ["Health & Fitness", "Alternative Health"]
    assert fp.feed.rights == "CC BY 4.0 Tess Owner"
    assert fp.feed.itunes_block == 1
    parsed = podcastparser.parse(FEED_URL, io.BytesIO((configured_feed / FEED).read_bytes()))
    # feedparser 6 knows only yes/clean for itunes:explicit; gPodder reads Apple's true/false
    assert parsed["explicit"] is True and [e["explicit"] for e in parsed["episodes"]] == [True, True]


def test_copyright_false_leaves_it_out(tmp_path):
    out = _library(tmp_path / "out")
    config = _config(tmp_path / "lib", "feed:\n  copyright: false\n")
    write_indexes(out, ALBUM, AUTHOR, BASE, config.feed)
    assert _channel(out).find("copyright") is None


def test_podcast_guid_is_the_uuidv5_of_the_feed_url(default_feed, tmp_path):
    # Podcasting 2.0: uuidv5(namespace ead4c236-..., feed URL without its scheme and trailing slashes)
    expected = str(uuid.uuid5(uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6"), "example.org/relax/feed.xml"))
    assert _channel(default_feed).findtext(f"{PC}guid") == expected
    sessions = collect_sessions(default_feed)
    for base in ("http://example.org/relax", "https://example.org/relax//"):  # same URL but for scheme, slashes
        again = ET.fromstring(feed_xml(sessions, ALBUM, AUTHOR, base)).find("channel")
        assert again.findtext(f"{PC}guid") == expected
    other = ET.fromstring(feed_xml(sessions, ALBUM, AUTHOR, "https://example.org/other/")).find("channel")
    assert other.findtext(f"{PC}guid") != expected
    relative = ET.fromstring(feed_xml(sessions, ALBUM, AUTHOR)).find("channel")
    assert relative.find(f"{PC}guid") is None  # a relative feed has no URL to derive it from


def test_podlove_chapters_match_the_sidecars(configured_feed):
    sidecars = {s["title"]: s["chapters"] for s in collect_sessions(configured_feed)}
    parsed = podcastparser.parse(FEED_URL, io.BytesIO((configured_feed / FEED).read_bytes()))
    for episode in parsed["episodes"]:
        want = sidecars[episode["title"]]
        got = episode["chapters"]
        assert [c["title"] for c in got] == [c["title"] for c in want]
        # podcastparser keeps whole seconds of `start` (it drops the fraction)
        assert [c["start"] for c in got] == [c["start_ms"] // 1000 for c in want]
    for item in _channel(configured_feed).findall("item"):
        psc = item.find(f"{PSC}chapters")
        assert psc is not None and psc.get("version") == "1.2"
        assert item.find(f"{PC}chapters") is not None  # beside the Podcasting 2.0 JSON chapters
        want = sidecars[item.findtext("title")]
        chapters = psc.findall(f"{PSC}chapter")
        assert [c.get("title") for c in chapters] == [c["title"] for c in want]
        for c, w in zip(chapters, want, strict=True):
            assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d", c.get("start"))
            assert abs(_npt_ms(c.get("start")) - w["start_ms"]) <= 1


def test_a_feed_rendered_again_keeps_the_settings_the_build_wrote(configured_feed):
    """`audiogen serve` renders feed.xml again for the client's base URL; given the built feed's path, the
    settings come back from it."""
    sessions = collect_sessions(configured_feed)
    again = ET.fromstring(feed_xml(sessions, ALBUM, AUTHOR, "http://192.168.1.5:8000/",
                                   feed=configured_feed / FEED)).find("channel")
    built = _channel(configured_feed)
    for tag in (f"{IT}owner/{IT}name", f"{IT}owner/{IT}email", f"{IT}explicit", "copyright", f"{PC}locked",
                f"{IT}block", f"{PC}block"):
        assert again.findtext(tag) == built.findtext(tag), tag
    assert again.find(f"{PC}locked").get("owner") == "owner@example.org"
    assert [c.get("text") for c in again.iter(f"{IT}category")] == ["Health & Fitness", "Alternative Health"]


@pytest.mark.parametrize(("text", "line", "words"), [
    ("feed:\n  category: Helth & Fitness\n", 2, ["not an Apple Podcasts category", "'Health & Fitness'"]),
    ("feed:\n  category: Alternative health\n", 2, ["did you mean 'Health & Fitness > Alternative Health'"]),
    ("album: A\nfeed:\n  category: Health & Fitness > Meditaton\n", 3,
     ["not an Apple Podcasts category", "'Health & Fitness > Medicine'"]),
    ("feed:\n  explicit: false\n  email: owner at example.org\n", 3, ["not an e-mail address"]),
    ("feed:\n  privat: true\n", 2, ["unknown key", "private"]),
    ("feed:\n  locked: maybe\n", 2, ["true or false"]),
    ("feed:\n  copyright: true\n", 2, ["copyright line as text"]),
])
def test_a_bad_feed_setting_is_a_located_error(tmp_path, text, line, words):
    with pytest.raises(RoutineError) as info:
        _config(tmp_path, text)
    err = info.value
    assert err.path == str(tmp_path / LIBRARY_FILE) and err.line == line
    assert err.field and err.field.startswith("feed")
    for word in words:
        assert word in err.format()


def test_a_category_is_accepted_whatever_its_case_and_spacing(tmp_path):
    config = _config(tmp_path, "feed:\n  category: '  religion &  spirituality>spirituality '\n")
    assert config.feed.category == "Religion & Spirituality > Spirituality"


def test_a_build_publishes_the_feed_section(tmp_path):
    """The real pipeline passes audiogen.yaml's feed: section to the feed; changing it renders nothing."""
    lib = make_library(tmp_path / "lib", numbers=(1,))
    (lib / LIBRARY_FILE).write_text(CONFIGURED + f"output:\n  base_url: {BASE}\n", encoding="utf-8")
    out = tmp_path / "out"
    results = build([lib], BuildOptions(out_dir=out))
    assert not [r for r in results if r.status == "failed"], [r.error for r in results]
    ch = _channel(out)
    assert ch.findtext(f"{IT}owner/{IT}email") == "owner@example.org"
    assert ch.findtext(f"{PC}block") == "yes"
    parsed = podcastparser.parse(FEED_URL, io.BytesIO((out / FEED).read_bytes()))
    (episode,) = parsed["episodes"]
    (sidecar,) = collect_sessions(out)
    assert [c["title"] for c in episode["chapters"]] == [c["title"] for c in sidecar["chapters"]]
    mp3s = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")}
    (lib / LIBRARY_FILE).write_text(CONFIGURED.replace("owner@example.org", "new@example.org")
                                    + f"output:\n  base_url: {BASE}\n", encoding="utf-8")
    results = build([lib], BuildOptions(out_dir=out))
    assert {r.status for r in results} == {"skipped"}
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")} == mp3s
    assert _channel(out).findtext(f"{IT}owner/{IT}email") == "new@example.org"
