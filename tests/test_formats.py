"""output.format: M4B and Opus beside (or instead of) the MP3, from one render.

Chapters, tags and covers are read back with ffmpeg (its `-f ffmetadata` listing and its attached-picture
stream) and with mutagen (MP4 `chapters` reads the Nero chpl atom; the Opus comments as stored).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from audiogen.audio.session import SessionAudio
from audiogen.build import BuildOptions, build
from audiogen.dsp.ffmpeg import ffmpeg_exe

from conftest import RATE, decode

ROUTINE = """\
title: Morning Lift
description: A short test of every format.
voice: {engine: espeak}
cue: chime
background: {track: rain, volume: -20 dB}
intro: Welcome to the format test.
steps:
  - title: Warm up
    say: Rub your palms together.
    hold: 2s
  - title: Sweep é
    say: Sweep out to the temples.
    duration: 5s
  - title: Jawline
    say: Glide from chin to ear.
    duration: 3s
    sides: [left, right]
outro: That is all.
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    lib = tmp_path_factory.mktemp("formats")
    (lib / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    (lib / "audiogen.yaml").write_text("album: Format Library\noutput:\n  format: [m4b, mp3, opus]\n")
    out = lib / "out"
    [r] = build([lib], BuildOptions(out_dir=out))
    assert r.status == "built", r.error
    return out


def timeline(out: Path) -> dict:
    return json.loads((out / "morning-lift.json").read_text("utf-8"))


def ffmeta_chapters(path: Path) -> list[tuple[str, float]]:
    """(title, start in ms) of every [CHAPTER] ffmpeg lists for `path`, in time order."""
    text = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
                          capture_output=True, text=True, check=True).stdout
    chapters = []
    for block in text.split("[CHAPTER]")[1:]:
        fields = dict(line.split("=", 1) for line in block.strip().splitlines() if "=" in line)
        num, den = (int(x) for x in fields["TIMEBASE"].split("/"))
        chapters.append((fields["title"], int(fields["START"]) * num * 1000 / den))
    return sorted(chapters, key=lambda c: c[1])


def ffmeta_tags(path: Path, stream: bool = False) -> dict[str, str]:
    """The tags ffmpeg reads: the file's, or (Ogg keeps them there) the audio stream's."""
    pick = ["-map_metadata", "0:s:a:0"] if stream else []
    text = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), *pick, "-f", "ffmetadata", "-"],
                          capture_output=True, text=True, check=True).stdout
    head = text.split("[")[0]
    return {k.lower(): v for k, v in (line.split("=", 1) for line in head.splitlines()[1:] if "=" in line)}


def attached_picture(path: Path, tmp: Path) -> bytes:
    """The cover as ffmpeg extracts it (its attached-picture stream), bytes as stored."""
    out = tmp / f"{path.suffix[1:]}-cover.png"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                    "-f", "image2", str(out)], check=True)
    return out.read_bytes()


def expected(out: Path) -> list[tuple[str, int]]:
    return [(c["title"], c["start_ms"]) for c in timeline(out)["chapters"]]


def test_every_format_is_written(built):
    t = timeline(built)
    assert t["files"] == {"m4b": "morning-lift.m4b", "mp3": "morning-lift.mp3", "opus": "morning-lift.opus"}
    assert t["mp3"] == "morning-lift.m4b"  # the file offered first: the first format listed
    for name in t["files"].values():
        assert (built / name).stat().st_size > 10_000
    assert not list(built.glob(".*.part"))


def test_every_format_lasts_the_planned_length(built):
    length = timeline(built)["length_ms"]
    for name in ("morning-lift.m4b", "morning-lift.mp3", "morning-lift.opus"):
        assert abs(len(decode(built / name)) * 1000 / RATE - length) < 25, name


def test_the_formats_carry_the_same_mix(built):
    """One render fed every encoder: the decoded formats agree with each other sample for sample
    (within lossy coding), with no offset between them."""
    ref = decode(built / "morning-lift.mp3")
    for name in ("morning-lift.m4b", "morning-lift.opus"):
        x = decode(built / name)
        n = min(len(x), len(ref)) - 2000
        d = x[:n] - ref[:n]
        snr = 10 * np.log10(np.sum(ref[:n] ** 2) / np.sum(d ** 2))
        assert snr > 10, (name, snr)


def test_m4b_chapters_read_by_ffmpeg(built):
    got = ffmeta_chapters(built / "morning-lift.m4b")
    want = expected(built)
    assert [t for t, _ in got] == [t for t, _ in want]
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert abs(a - b) <= 25


def test_m4b_chapters_read_by_mutagen_from_nero_chpl(built):
    from mutagen.mp4 import MP4

    got = [(c.title, c.start * 1000) for c in MP4(built / "morning-lift.m4b").chapters]
    want = expected(built)
    assert [t for t, _ in got] == [t for t, _ in want]
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert abs(a - b) <= 25


def test_m4b_has_a_quicktime_chapter_track(built):
    """Players that ignore chpl (Apple's) read a text track the audio track references as `chap`."""
    from mutagen.mp4 import Atoms

    with open(built / "morning-lift.m4b", "rb") as f:
        atoms = Atoms(f)
        traks = list(atoms.path(b"moov")[-1].findall(b"trak"))
        handlers = []
        for trak in traks:
            hdlr = trak[b"mdia", b"hdlr"]
            f.seek(hdlr.offset + 16)
            handlers.append(f.read(4))
        assert b"text" in handlers

        def track_id(trak) -> int:
            tkhd = trak[b"tkhd",]
            f.seek(tkhd.offset + 8)
            version = f.read(1)[0]
            f.seek(tkhd.offset + 8 + (20 if version == 1 else 12))
            return int.from_bytes(f.read(4), "big")

        tref = traks[handlers.index(b"soun")][b"tref",]
        f.seek(tref.offset + 8)
        child = f.read(tref.length - 8)
        assert child[4:8] == b"chap"  # the audio track names its chapter track
        assert int.from_bytes(child[8:12], "big") == track_id(traks[handlers.index(b"text")])
    listing = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(built / "morning-lift.m4b")],
                             capture_output=True, text=True).stderr
    assert "Referenced QT chapter track not found" not in listing


def test_m4b_tags_and_cover(built, tmp_path):
    tags = ffmeta_tags(built / "morning-lift.m4b")
    assert tags["title"] == "Morning Lift"
    assert tags["album"] == "Format Library"
    assert tags["artist"]
    assert tags["media_type"] == "2"  # audiobook
    assert attached_picture(built / "morning-lift.m4b", tmp_path) == (built / "morning-lift.png").read_bytes()


def test_opus_chapters_read_by_mutagen(built):
    from mutagen.oggopus import OggOpus

    tags = OggOpus(built / "morning-lift.opus").tags
    got = []
    n = 1
    while f"CHAPTER{n:03d}" in tags:
        h, m, s = tags[f"CHAPTER{n:03d}"][0].split(":")
        got.append((tags[f"CHAPTER{n:03d}NAME"][0], (int(h) * 3600 + int(m) * 60 + float(s)) * 1000))
        n += 1
    want = expected(built)
    assert [t for t, _ in got] == [t for t, _ in want]
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert abs(a - b) <= 25
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d", tags["CHAPTER002"][0])


def test_opus_chapters_read_by_ffmpeg(built):
    got = ffmeta_chapters(built / "morning-lift.opus")
    want = expected(built)
    assert [t for t, _ in got] == [t for t, _ in want]
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert abs(a - b) <= 25


def test_opus_tags_and_cover(built, tmp_path):
    from mutagen.flac import Picture
    from mutagen.oggopus import OggOpus

    tags = ffmeta_tags(built / "morning-lift.opus", stream=True)
    assert tags["title"] == "Morning Lift"
    assert tags["album"] == "Format Library"
    cover = (built / "morning-lift.png").read_bytes()
    assert attached_picture(built / "morning-lift.opus", tmp_path) == cover
    import base64

    pic = Picture(base64.b64decode(OggOpus(built / "morning-lift.opus").tags["METADATA_BLOCK_PICTURE"][0]))
    assert pic.type == 3 and pic.mime == "image/png" and pic.data == cover


def test_opus_is_ogg_opus_at_48k(built):
    listing = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(built / "morning-lift.opus")],
                             capture_output=True, text=True).stderr
    assert "Input #0, ogg" in listing
    assert re.search(r"Audio: opus, 48000 Hz, mono", listing)


def test_feed_enclosure_is_the_first_format_with_its_type(built):
    import feedparser

    d = feedparser.parse((built / "feed.xml").read_bytes())
    [entry] = d.entries
    [enc] = entry.enclosures
    assert enc.href.endswith("morning-lift.m4b")
    assert enc.type == "audio/mp4"
    assert int(enc.length) == (built / "morning-lift.m4b").stat().st_size


def test_playlist_and_page_offer_what_was_built(built):
    playlist = (built / "playlist.m3u8").read_text("utf-8").splitlines()
    assert "morning-lift.m4b" in playlist
    page = (built / "index.html").read_text("utf-8")
    for name in ("morning-lift.m4b", "morning-lift.mp3", "morning-lift.opus"):
        assert f'href="{name}"' in page
    assert "Download M4B" in page


def test_an_opus_only_library_has_an_ogg_enclosure(tmp_path):
    import feedparser

    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    (tmp_path / "audiogen.yaml").write_text("output:\n  format: opus\n")
    [r] = build([tmp_path], BuildOptions(out_dir=tmp_path / "out"))
    assert r.status == "built", r.error
    assert r.mp3.name == "morning-lift.opus"
    assert not (tmp_path / "out" / "morning-lift.mp3").exists()
    [enc] = feedparser.parse((tmp_path / "out" / "feed.xml").read_bytes()).entries[0].enclosures
    assert enc.type == "audio/ogg" and enc.href.endswith(".opus")
    # unchanged: skipped, since every format's file is there
    [again] = build([tmp_path], BuildOptions(out_dir=tmp_path / "out"))
    assert again.status == "skipped"
    (tmp_path / "out" / "morning-lift.opus").unlink()
    [third] = build([tmp_path], BuildOptions(out_dir=tmp_path / "out"))
    assert third.status == "built"


def test_format_is_validated_with_its_location(tmp_path):
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    (tmp_path / "audiogen.yaml").write_text("output:\n  format: [mp3, wma]\n")
    [r] = build([tmp_path], BuildOptions(out_dir=tmp_path / "out"))
    assert r.status == "failed"
    assert "format" in str(r.error) and "audiogen.yaml" in str(r.error.problems()[0].path)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.mp3"))


def _ffmpeg_children() -> list[int]:
    me = str(os.getpid())
    found = []
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        name, rest = stat.split(" (", 1)[1].split(") ", 1)
        if rest.split()[1] == me and "ffmpeg" in name and rest.split()[0] != "Z":
            found.append(int(d.name))
    return found


def _audio() -> SessionAudio:
    from audiogen.audio.session import cue_samples, load_bed
    from audiogen.plan.planner import plan_routine, spoken_texts
    from audiogen.routine.library import OutputSettings
    from audiogen.routine.loader import parse_routine

    routine = parse_routine(ROUTINE)
    clips = {t: (np.sin(np.arange(RATE) * 0.05) * 9000).astype(np.int16) for t in spoken_texts(routine)}
    cues = cue_samples(routine)
    plan = plan_routine(routine, lambda t: 1000, lambda s: int(np.ceil(len(cues[s]) * 1000 / RATE)))
    return SessionAudio(plan, clips, cues, load_bed(routine), OutputSettings())


def test_an_interrupted_render_stops_every_encoder(tmp_path):
    from audiogen.audio.session import Interrupted, Outputs, render_outputs

    cancel = threading.Event()
    cancel.set()
    outputs = Outputs({f: tmp_path / f"x.{f}" for f in ("mp3", "m4b", "opus")}, [("All", 0, 1000)],
                      ("mp3", [tmp_path / "1.mp3", tmp_path / "2.mp3"], [0, RATE]),
                      {"voice": tmp_path / "v.wav", "bed": tmp_path / "b.wav"})
    with pytest.raises(Interrupted):
        render_outputs(_audio(), outputs, cancel)
    assert _ffmpeg_children() == []


def test_one_failing_encoder_fails_the_render_and_stops_the_others(tmp_path):
    from audiogen.audio.session import Outputs, render_outputs
    from audiogen.routine.errors import AudiogenError

    (tmp_path / "file").write_text("not a folder")
    outputs = Outputs({"mp3": tmp_path / "x.mp3", "opus": tmp_path / "file" / "x.opus"}, [])
    with pytest.raises(AudiogenError) as e:
        render_outputs(_audio(), outputs)
    assert "x.opus" in str(e.value)
    assert _ffmpeg_children() == []


def test_a_session_whose_file_cannot_be_put_in_place_leaves_none_of_its_files(tmp_path):
    """Every format and stem goes in place together, or none stays (here a folder has the Opus file's name)."""
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    (tmp_path / "audiogen.yaml").write_text("output:\n  format: [mp3, opus]\n  split: steps\n  stems: true\n")
    out = tmp_path / "out"
    (out / "morning-lift.opus").mkdir(parents=True)
    [r] = build([tmp_path], BuildOptions(out_dir=out))
    assert r.status == "failed"
    assert "morning-lift.opus" in str(r.error)
    left = sorted(p.name for p in out.iterdir())
    assert not [n for n in left if n.startswith("morning-lift.") and n != "morning-lift.opus" or n.endswith(".part")
                or n.startswith(".morning-lift")]
    assert not (out / "morning-lift").exists()
    assert _ffmpeg_children() == []
