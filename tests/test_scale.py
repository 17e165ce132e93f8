"""Libraries at scale (issue 16): a build of a library in which one routine changed parses that routine
alone, renders only its sessions, writes the manifest and each index once, and the indexes still list
every session (read back with feedparser and podcastparser), byte for byte what they are rendered afresh.

Counted, never timed: parses by the build's own "loaded" progress event, renders by the "session" events
and the MP3 encoders ffmpeg started (a wrapper around the bundled binary), writes by the files `os.replace`
put in place (every write of audiogen is a temp file renamed over its target).
"""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import feedparser
import podcastparser
import pytest

from audiogen.build.jobs import BuildOptions
from audiogen.build.pipeline import build
from audiogen.publish.feed import feed_xml
from audiogen.publish.page import index_html
from audiogen.publish.sessions import collect_sessions
from audiogen.routine.errors import AudiogenError
from audiogen.routine.loader import load_routine


def make_library(lib: Path, n: int, lengths: str | None = None, cue: str | None = None) -> None:
    lib.mkdir(parents=True, exist_ok=True)
    config = "album: Scale\ndefaults: {voice: {engine: espeak}}\noutput: {bitrate: 32k}\n"
    if lengths:
        config += f"variants: {{lengths: [{lengths}]}}\n"
    (lib / "audiogen.yaml").write_text(config)
    for i in range(n):
        write(lib, i, cue=cue)


def write(lib: Path, i: int, step: str = "Only", seconds: int = 3, cue: str | None = None) -> Path:
    path = lib / f"r{i:03d}.yaml"
    path.write_text(f"title: Routine {i}\n" + (f"cue: {cue}\n" if cue else "")
                    + f"steps:\n  - title: {step}\n    say: Rest {i % 3}.\n    duration: {seconds}s\n")
    return path




@pytest.fixture
def replaced(monkeypatch):
    """Names of the files put in place by `os.replace` since the last call (how often each was written)."""
    names: list[str] = []
    real = os.replace

    def spy(src, dst, *a, **k):
        names.append(Path(dst).name)
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", spy)

    def taken() -> list[str]:
        out = list(names)
        names.clear()
        return out

    return taken


def run(lib: Path, out: Path) -> tuple[list, list]:
    events: list = []
    results = build([lib], BuildOptions(out_dir=out, jobs=1, offline=True,
                                        progress=lambda kind, info: events.append((kind, info))))
    assert not [r for r in results if r.status == "failed"], [r.error.format() for r in results if r.error]
    return results, events


def loaded(events: list) -> list[dict]:
    return [info for kind, info in events if kind == "loaded"]


def fresh_indexes_match(out: Path) -> None:
    """feed.xml and index.html as written (through the index memo) are what rendering every sidecar afresh
    gives."""
    sessions = collect_sessions(out)
    assert (out / "feed.xml").read_text("utf-8") == feed_xml(sessions, "Scale", None, feed=None)
    assert (out / "index.html").read_text("utf-8") == index_html(sessions, "Scale", None, out)


def test_changing_one_routine_parses_renders_and_indexes_it_alone(tmp_path, encodes, replaced):
    lib, out, n = tmp_path / "lib", tmp_path / "out", 12
    make_library(lib, n)
    results, events = run(lib, out)
    assert [r.status for r in results] == ["built"] * n and encodes() == n
    assert loaded(events) == [{"parsed": n, "reused": 0}]
    writes = replaced()
    for name in (".audiogen-manifest.json", "feed.xml", "index.html", "playlist.m3u8", ".audiogen-index.json"):
        assert writes.count(name) == 1, (name, writes.count(name))  # once per build, never per session

    before = json.loads((out / "routine-5.json").read_text("utf-8"))["length_ms"]
    write(lib, 5, step="Longer rest", seconds=4)
    results, events = run(lib, out)
    status = {r.slug: r.status for r in results}
    assert status.pop("routine-5") == "built" and set(status.values()) == {"skipped"}
    assert encodes() == 1 and [kind for kind, _ in events].count("session") == 1
    assert loaded(events) == [{"parsed": 1, "reused": n - 1}]  # the other eleven files were not parsed
    writes = replaced()
    assert writes.count(".audiogen-manifest.json") == 1 and writes.count("feed.xml") == 1
    assert writes.count("index.html") == 1
    assert not [w for w in writes if w.startswith("routine-") and not w.startswith("routine-5.")]  # no other

    titles = [f"Routine {i}" for i in range(n)]
    assert [e.title for e in feedparser.parse((out / "feed.xml").read_bytes()).entries] == titles
    with open(out / "feed.xml", "rb") as f:
        episodes = podcastparser.parse("http://localhost/feed.xml", f)["episodes"]
    assert sorted(e["title"] for e in episodes) == sorted(titles)  # podcastparser sorts by date
    five = next(e for e in episodes if e["title"] == "Routine 5")
    assert [c["title"] for c in five["chapters"]] == ["Longer rest"]  # its Podlove chapters, as changed
    assert {c["title"] for e in episodes if e is not five for c in e["chapters"]} == {"Only"}
    length_ms = json.loads((out / "routine-5.json").read_text("utf-8"))["length_ms"]
    assert five["total_time"] == round(length_ms / 1000) and length_ms > before  # its new, longer length
    fresh_indexes_match(out)

    results, events = run(lib, out)  # and then nothing: nothing parsed, no event at all
    assert {r.status for r in results} == {"skipped"} and encodes() == 0 and not events


def test_the_kept_routines_follow_the_files_defaults_and_sounds(tmp_path):
    lib, out, n = tmp_path / "lib", tmp_path / "out", 4
    make_library(lib, n, cue="knock.wav")
    cue = lib / "knock.wav"
    with wave.open(str(cue), "wb") as w:  # a 0.2 s click
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(b"".join(int(8000 * (-1) ** (i // 20)).to_bytes(2, "little", signed=True)
                               for i in range(4410)))
    _, events = run(lib, out)
    assert loaded(events) == [{"parsed": n, "reused": 0}]

    # changed defaults: every routine is validated again (they are merged under each one)
    text = (lib / "audiogen.yaml").read_text().replace("engine: espeak}", "engine: espeak, speed: 1.1}")
    (lib / "audiogen.yaml").write_text(text)
    _, events = run(lib, out)
    assert loaded(events) == [{"parsed": n, "reused": 0}]

    # an error in a changed file is located exactly as loading the file says
    bad = lib / "r002.yaml"
    bad.write_text(bad.read_text().replace("duration: 3s", "duration: 3 parsecs"))
    results = build([lib], BuildOptions(out_dir=out, jobs=1, offline=True))
    failed = [r for r in results if r.status == "failed"]
    with pytest.raises(AudiogenError) as direct:
        load_routine(bad, defaults={"voice": {"engine": "espeak", "speed": 1.1}})
    assert [r.error.format() for r in failed] == [direct.value.format()]
    assert "r002.yaml:6:" in direct.value.format()

    # a sound file an unchanged routine names, deleted since: still an error, at its line
    write(lib, 2, cue="knock.wav")
    cue.unlink()
    results = build([lib], BuildOptions(out_dir=out, jobs=1, offline=True))
    assert {r.status for r in results} == {"failed"} and len(results) == n
    assert all(":2:" in r.error.format() and "knock.wav" in r.error.format() for r in results)


def test_a_memo_that_cannot_be_read_is_ignored(tmp_path):
    lib, out, n = tmp_path / "lib", tmp_path / "out", 3
    make_library(lib, n)
    run(lib, out)
    from audiogen.voice.cache import default_cache_dir

    for p in (default_cache_dir() / "builds").glob("routines-*.pickle"):
        p.write_bytes(b"not a pickle")
    (out / ".audiogen-index.json").write_text("{broken")
    write(lib, 1, seconds=4)
    results, events = run(lib, out)
    assert loaded(events) == [{"parsed": n, "reused": 0}]
    assert sorted(r.status for r in results) == ["built", "skipped", "skipped"]
    fresh_indexes_match(out)


@pytest.mark.slow
def test_a_library_with_variants_builds_and_rebuilds_one_routine(tmp_path, encodes):
    """40 routines x 4 lengths = 160 sessions (the bench builds 2,000: scripts/bench.py --scale)."""
    lib, out, n = tmp_path / "lib", tmp_path / "out", 40
    make_library(lib, n, lengths="10s, 15s, 20s")
    results, _ = run(lib, out)
    assert len(results) == 4 * n and {r.status for r in results} == {"built"} and encodes() == 4 * n
    assert sorted({r.length_ms for r in results if r.variant}) == [10000, 15000, 20000]
    entries = feedparser.parse((out / "feed.xml").read_bytes()).entries
    assert len(entries) == 4 * n and len({e.id for e in entries}) == 4 * n

    write(lib, 7, seconds=4)
    results, events = run(lib, out)
    built = sorted(r.slug for r in results if r.status == "built")
    assert built == ["routine-7", "routine-7-10s", "routine-7-15s", "routine-7-20s"] and encodes() == 4
    assert loaded(events) == [{"parsed": 1, "reused": n - 1}]
    assert len(feedparser.parse((out / "feed.xml").read_bytes()).entries) == 4 * n
    fresh_indexes_match(out)
