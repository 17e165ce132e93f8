"""output.split: steps: one file per chapter beside the whole session, tagged, listed, and gapless.

What "joined back they are the session" is checked against:
- exactly, sample for sample: a real session rendered into a lossless FLAC of the whole and FLAC step
  files through the same cut logic (the cuts fall on the samples where the chapters start in the PCM the
  whole file is encoded from), decoded by ffmpeg and joined: identical arrays;
- for the MP3 step files a build writes: ffmpeg decodes each to exactly its span's samples (the LAME/Xing
  header's encoder delay and padding are trimmed), so the joined files are as long as the session and line
  up with the whole MP3 at lag 0. Two lossy encodings of the same PCM are not bit-identical, so the MP3s
  are compared by length and alignment, not by value.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import eyed3
import numpy as np
import pytest

from audiogen.audio.mix import ms_to_samples
from audiogen.audio.session import Outputs, SessionAudio, cue_samples, load_bed, render_outputs
from audiogen.build import BuildOptions, build
from audiogen.dsp.ffmpeg import INTERNAL_RATE, ffmpeg_exe
from audiogen.plan.planner import plan_routine, spoken_texts
from audiogen.publish.split import step_files
from audiogen.routine.library import OutputSettings
from audiogen.routine.loader import parse_routine

from conftest import RATE

ROUTINE = """\
title: Split Session
voice: {engine: espeak}
cue: chime
background: {track: rain, volume: -20 dB}
intro: Welcome to the split test.
steps:
  - title: Warm up
    say: Rub your palms together.
    hold: 2s
  - title: Sweep
    say: Sweep out to the temples.
    duration: 5s
  - title: Sides
    say: Glide from chin to ear.
    duration: 3s
    sides: [left, right]
outro: That is all.
"""


def decode_int16(path: Path) -> np.ndarray:
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(RATE), "-f", "s16le",
                          "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype=np.int16)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    lib = tmp_path_factory.mktemp("split")
    (lib / "r.yaml").write_text(ROUTINE)
    (lib / "audiogen.yaml").write_text("album: Split Library\noutput:\n  split: steps\n")
    out = lib / "out"
    [r] = build([lib], BuildOptions(out_dir=out))
    assert r.status == "built", r.error
    return out


def timeline(out: Path) -> dict:
    return json.loads((out / "split-session.json").read_text("utf-8"))


def test_one_file_per_chapter_named_by_number_and_step(built):
    names = sorted(p.name for p in (built / "split-session").glob("*.mp3"))
    assert names == ["01-intro.mp3", "02-warm-up.mp3", "03-sweep.mp3", "04-sides-left.mp3", "05-sides-right.mp3",
                     "06-outro.mp3"]
    assert [f["name"] for f in timeline(built)["split"]["files"]] == [f"split-session/{n}" for n in names]


def test_step_files_have_their_own_tags(built):
    chapters = timeline(built)["chapters"]
    files = sorted((built / "split-session").glob("*.mp3"))
    for n, (path, chapter) in enumerate(zip(files, chapters, strict=True), start=1):
        tag = eyed3.load(path).tag
        assert tag.title == chapter["title"]
        assert tag.album == "Split Session"
        assert tuple(tag.track_num) == (n, len(files))
        assert tag.images and tag.images[0].image_data == (built / "split-session.png").read_bytes()
        assert not tag.chapters


def test_session_playlist_lists_the_steps_in_order(built):
    lines = (built / "split-session" / "split-session.m3u8").read_text("utf-8").splitlines()
    assert lines[0] == "#EXTM3U"
    entries = [x for x in lines if x and not x.startswith("#")]
    assert entries == sorted(p.name for p in (built / "split-session").glob("*.mp3"))
    for entry in entries:
        assert (built / "split-session" / entry).is_file()
    assert sum(1 for x in lines if x.startswith("#EXTINF:")) == len(entries)


def test_mp3_step_files_decode_to_exactly_their_spans(built):
    """The LAME header's delay and padding let ffmpeg trim each file to the samples it was fed."""
    t = timeline(built)
    spans = step_files([type("C", (), c) for c in t["chapters"]], ms_to_samples(t["length_ms"]), INTERNAL_RATE)
    got = [len(decode_int16(built / f["name"])) for f in t["split"]["files"]]
    assert got == [s.end - s.start for s in spans]
    assert sum(got) == ms_to_samples(t["length_ms"])


def test_mp3_step_files_joined_line_up_with_the_whole_session(built):
    t = timeline(built)
    whole = decode_int16(built / t["mp3"]).astype(np.float64)
    joined = np.concatenate([decode_int16(built / f["name"]) for f in t["split"]["files"]]).astype(np.float64)
    n = min(len(whole), len(joined)) - 4000

    def snr(lag: int) -> float:
        a, b = whole[max(0, lag):][:n], joined[max(0, -lag):][:n]
        return 10 * np.log10(np.sum(a ** 2) / np.sum((a - b) ** 2))

    at_zero = snr(0)
    assert at_zero > 12
    assert all(snr(lag) < at_zero for lag in (-50, -10, -1, 1, 10, 50))  # no offset anywhere


def test_a_rebuild_replaces_the_step_folder(built, tmp_path):
    lib = built.parent
    (lib / "r.yaml").write_text(ROUTINE.replace("title: Sweep", "title: Sweeping"))
    [r] = build([lib], BuildOptions(out_dir=built))
    assert r.status == "built"
    names = sorted(p.name for p in (built / "split-session").iterdir())
    assert "03-sweeping.mp3" in names and "03-sweep.mp3" not in names
    assert not [p for p in built.iterdir() if p.name.startswith(".split-session.")]
    (lib / "r.yaml").write_text(ROUTINE)


def _session_audio(settings: OutputSettings) -> SessionAudio:
    """A real session (planner, cues, bed) with synthetic speech: a tone burst per phrase, of its own length."""
    routine = parse_routine(ROUTINE)
    clips = {}
    for i, text in enumerate(spoken_texts(routine)):
        n = int(RATE * (0.6 + 0.05 * (i % 7)))
        clips[text] = (np.sin(np.arange(n) * 2 * np.pi * (180 + 20 * i) / RATE) * 12000).astype(np.int16)
    cues = cue_samples(routine)
    plan = plan_routine(routine, lambda t: int(np.ceil(len(clips[t]) * 1000 / RATE)),
                        lambda s: int(np.ceil(len(cues[s]) * 1000 / RATE)))
    return SessionAudio(plan, clips, cues, load_bed(routine), settings)


def test_step_files_joined_are_sample_identical_to_the_whole_session(tmp_path):
    audio = _session_audio(OutputSettings())
    steps = step_files(audio.plan.chapters, ms_to_samples(audio.plan.length_ms), INTERNAL_RATE, ".flac")
    paths = [tmp_path / s.name for s in steps]
    render_outputs(audio, Outputs({"flac": tmp_path / "whole.flac"}, [], ("flac", paths, [s.start for s in steps])))
    whole = decode_int16(tmp_path / "whole.flac")
    parts = [decode_int16(p) for p in paths]
    assert len(whole) == ms_to_samples(audio.plan.length_ms)
    assert [len(p) for p in parts] == [s.end - s.start for s in steps]
    assert np.array_equal(np.concatenate(parts), whole)
    assert np.abs(whole).max() > 1000  # not silence


@pytest.mark.parametrize("n", [156687, 115201, 266320, 500])
def test_an_mp3_decodes_to_exactly_the_samples_it_was_fed(tmp_path, n):
    """Lengths where ffmpeg's muxer alone writes too little padding (156687 decoded as 156719) and where it
    does not; the fixed LAME tag makes every one exact."""
    from audiogen.audio.encode import PcmEncoder, pcm_bytes

    x = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
    enc = PcmEncoder("mp3", tmp_path / "x.mp3")
    enc.feed(pcm_bytes(x))
    enc.finish()
    assert len(decode_int16(tmp_path / "x.mp3")) == n
