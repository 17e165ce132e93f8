"""Only what changes the audio re-renders: a new track total, base URL, offline flag, album or ID3 version
rewrites tags and indexes alone. Encodes are counted at the ffmpeg process (a wrapper that logs every start
of the bundled binary), the audio frames compared byte for byte, the tags read back with mutagen and eyeD3."""

from __future__ import annotations

import json
import os
from pathlib import Path

import eyed3
import feedparser
import requests
import responses
from buildkit import make_library
from mutagen.id3 import ID3

from audiogen.build.jobs import BuildOptions
from audiogen.build.pipeline import build


def id3v2_size(data: bytes) -> int:
    """Total size of the ID3v2 tag at the start of `data` (header, body and footer), 0 if none."""
    if data[:3] != b"ID3":
        return 0
    size = 0
    for b in data[6:10]:
        size = (size << 7) | (b & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)


def audio_frames(mp3: Path) -> bytes:
    """The MP3's bytes after its ID3v2 tag (audiogen writes no ID3v1 tag): the audio itself."""
    data = mp3.read_bytes()
    assert data[-128:-125] != b"TAG"
    return data[id3v2_size(data):]


def run(lib: Path, out: Path, **kw):
    events: list[str] = []
    results = build([lib], BuildOptions(out_dir=out, progress=lambda kind, info: events.append(kind), **kw))
    assert not [r.error for r in results if r.status == "failed"]
    return {r.slug: r for r in results}, events


def test_adding_a_routine_retags_the_others_and_renders_only_it(tmp_path, encodes):
    lib, out = make_library(tmp_path / "lib", numbers=(1, 2)), tmp_path / "out"
    results, _ = run(lib, out)
    assert {r.status for r in results.values()} == {"built"} and encodes() == 2  # the counter counts
    before = {s: audio_frames(out / f"{s}.mp3") for s in ("routine-1", "routine-2")}
    assert ID3(out / "routine-1.mp3")["TRCK"].text == ["1/2"]

    make_library(lib, numbers=(3,))
    results, events = run(lib, out)
    assert {s: r.status for s, r in results.items()} == {
        "routine-1": "retagged", "routine-2": "retagged", "routine-3": "built"}
    assert encodes() == 1  # routine 3's, and only its
    assert events.count("session") == 1 and events.count("retag") == 2
    assert sum(r.synthesized for r in results.values()) == results["routine-3"].synthesized
    for n, slug in ((1, "routine-1"), (2, "routine-2")):
        mp3 = out / f"{slug}.mp3"
        assert audio_frames(mp3) == before[slug]  # the audio byte for byte
        assert ID3(mp3)["TRCK"].text == [f"{n}/3"]  # mutagen
        assert eyed3.load(str(mp3)).tag.track_num == (n, 3)  # eyeD3
        assert [c.title for c in eyed3.load(str(mp3)).tag.chapters][0] == "Intro"
        assert json.loads((out / f"{slug}.json").read_text("utf-8"))["track"] == n
    assert [e.title for e in feedparser.parse((out / "feed.xml").read_bytes()).entries] == \
        ["Routine 1", "Routine 2", "Routine 3"]
    assert not list(out.glob(".*.part"))

    results, events = run(lib, out)  # and then nothing at all
    assert {r.status for r in results.values()} == {"skipped"} and encodes() == 0 and not events


def test_toggling_the_base_url_or_offline_renders_nothing(tmp_path, encodes):
    lib, out = make_library(tmp_path / "lib", numbers=(1, 2)), tmp_path / "out"
    run(lib, out, offline=True)
    assert encodes() == 2
    frames = {p.name: audio_frames(p) for p in out.glob("*.mp3")}
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")}

    results, events = run(lib, out, offline=True, base_url="https://cdn.example.net/lib/")
    assert {r.status for r in results.values()} == {"skipped"} and encodes() == 0 and not events
    assert "https://cdn.example.net/lib/routine-1.mp3" in (out / "feed.xml").read_text("utf-8")
    # --offline off: espeak narrates these routines either way (and never asks the network)
    with responses.RequestsMock() as rsps:  # any request would fail the test
        results, events = run(lib, out, offline=False)
        assert not rsps.calls
    assert {r.status for r in results.values()} == {"skipped"} and encodes() == 0 and not events
    assert "https://cdn.example.net" not in (out / "feed.xml").read_text("utf-8")
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")} == mtimes
    assert {p.name: audio_frames(p) for p in out.glob("*.mp3")} == frames


AUTO = """\
title: Auto {n}
voice: {{engine: auto}}
cue: none
steps:
  - title: Only
    say: Breathe in, number {n}.
    hold: 1s
"""


def test_toggling_offline_under_auto_renders_nothing_when_the_same_clips_narrate(tmp_path, encodes, monkeypatch):
    """Offline, auto narrates with the offline voice; online, gTTS is asked first and (here) cannot be
    reached, so the same voice narrates the same clips: nothing is rendered, and the next online build
    knows it without asking the network again."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    (lib / "a.yaml").write_text(AUTO.format(n=1))
    results, _ = run(lib, out, offline=True)
    assert encodes() == 1
    engine = results["auto-1"].engine
    assert engine != "gtts"
    frames = audio_frames(out / "auto-1.mp3")
    mtime = (out / "auto-1.mp3").stat().st_mtime_ns

    monkeypatch.setenv("AUDIOGEN_OFFLINE", "0")  # the network is allowed: gTTS asks it (and is refused)
    refused = requests.exceptions.ConnectionError("no route to host")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.POST, "https://translate.google.com/_/TranslateWebserverUi/data/batchexecute",
                 body=refused)
        results, events = run(lib, out, offline=False)
        asked = len(rsps.calls)
    assert asked >= 1  # gTTS was tried: the clips that narrate were only known after that
    r = results["auto-1"]
    assert r.status == "skipped" and r.engine == engine and "narrated" in events
    assert encodes() == 0 and (out / "auto-1.mp3").stat().st_mtime_ns == mtime
    assert audio_frames(out / "auto-1.mp3") == frames

    with responses.RequestsMock() as rsps:  # the same choice again: no request at all
        results, _ = run(lib, out, offline=False)
        assert not rsps.calls
    assert results["auto-1"].status == "skipped" and encodes() == 0
    results, _ = run(lib, out, offline=True)  # and back offline: the clips predicted, nothing narrated
    assert results["auto-1"].status == "skipped" and results["auto-1"].synthesized == 0 and encodes() == 0


def test_a_new_album_retags_and_redraws_the_cover_without_rendering(tmp_path, encodes):
    lib, out = make_library(tmp_path / "lib", numbers=(1, 2)), tmp_path / "out"
    (lib / "audiogen.yaml").write_text("album: First Album\n")
    run(lib, out)
    encodes()
    frames = audio_frames(out / "routine-1.mp3")
    cover = (out / "routine-1.png").read_bytes()
    (lib / "audiogen.yaml").write_text("album: Second Album\nauthor: Someone\n")
    results, _ = run(lib, out)
    assert {r.status for r in results.values()} == {"retagged"} and encodes() == 0
    tag = ID3(out / "routine-1.mp3")
    assert tag["TALB"].text == ["Second Album"] and tag["TPE1"].text == ["Someone"]
    assert tag.getall("APIC")[0].data == (out / "routine-1.png").read_bytes() != cover
    assert audio_frames(out / "routine-1.mp3") == frames
    assert json.loads((out / "routine-1.json").read_text("utf-8"))["album"] == "Second Album"
    assert "Second Album" in (out / "index.html").read_text("utf-8")


def test_what_changes_the_audio_still_renders(tmp_path, encodes):
    lib, out = make_library(tmp_path / "lib", numbers=(1, 2)), tmp_path / "out"
    run(lib, out)
    encodes()
    (lib / "r2.yaml").write_text((lib / "r2.yaml").read_text().replace("Rest your hands.", "Rest both hands."))
    (lib / "audiogen.yaml").write_text("album: New\n")  # and a tag change for both
    results, _ = run(lib, out)
    assert results["routine-1"].status == "retagged" and results["routine-2"].status == "built"
    assert encodes() == 1
    (lib / "audiogen.yaml").write_text("album: New\noutput: {bitrate: 64k}\n")
    results, _ = run(lib, out)
    assert {r.status for r in results.values()} == {"built"} and encodes() == 2
    results, _ = run(lib, out, force=True)
    assert {r.status for r in results.values()} == {"built"} and encodes() == 2


def test_a_dry_run_retags_nothing(tmp_path, encodes):
    lib, out = make_library(tmp_path / "lib", numbers=(1,)), tmp_path / "out"
    run(lib, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    make_library(lib, numbers=(2,))
    results, _ = run(lib, out, dry_run=True)
    assert results["routine-1"].status == "planned" and "tags" in " ".join(results["routine-1"].details)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_damaged_sidecar_renders_again_instead_of_retagging(tmp_path, encodes):
    lib, out = make_library(tmp_path / "lib", numbers=(1, 2)), tmp_path / "out"
    run(lib, out)
    encodes()
    (out / "routine-1.json").write_text('{"title": "Routine 1", "mp3": "routine-1.mp3"}')
    make_library(lib, numbers=(3,))
    results, _ = run(lib, out)
    assert results["routine-1"].status == "built" and results["routine-2"].status == "retagged"
    assert encodes() == 2
    assert json.loads((out / "routine-1.json").read_text("utf-8"))["chapters"]


def test_the_command_line_says_what_was_retagged(tmp_path, encodes):
    from click.testing import CliRunner

    from audiogen.cli import cli

    lib, out = make_library(tmp_path / "lib", numbers=(1,)), tmp_path / "out"
    run(lib, out)
    make_library(lib, numbers=(2,))
    res = CliRunner().invoke(cli, ["build", str(lib), "-o", str(out)], env={**os.environ})
    assert res.exit_code == 0, res.output
    assert "1 built, 1 retagged (audio unchanged)" in res.output
    (lib / "audiogen.yaml").write_text("album: Another\n")
    res = CliRunner().invoke(cli, ["build", str(lib), "-o", str(out)], env={**os.environ})
    assert res.exit_code == 0, res.output
    assert "2 retagged (audio unchanged); only tags rewritten: no synthesis, no rendering" in res.output
