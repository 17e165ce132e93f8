"""End to end with real espeak-ng and real ffmpeg: decode what was written and measure it."""

import json

import eyed3
import numpy as np
import pytest
from click.testing import CliRunner

from audiogen.build import BuildOptions, build
from audiogen.cli import cli

from conftest import RATE, decode, offline_engine, rms_db, window

ROUTINE = """\
title: "Test Session: Ünïcode/../"
description: A short test session.
voice: {engine: espeak}
cue: none
intro: Welcome to the test.
steps:
  - title: Speak then hold
    say: Press your palms gently over your face.
    hold: 4s
  - title: Fixed
    say: Sweep out to the temples.
    duration: 12s
    remind: {halfway: true}
  - title: Sides
    say: Glide from chin to ear.
    duration: 6s
    sides: [left, right]
outro: That is all.
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("built")
    src = tmp / "routine.yaml"
    src.write_text(ROUTINE)
    out = tmp / "out"
    [r] = build([src], BuildOptions(out_dir=out))
    assert r.status == "built", r.error
    timeline = json.loads((out / f"{r.mp3.stem}.json").read_text())
    return r, decode(r.mp3), timeline


def test_slug_is_a_safe_file_name(built):
    r, _, _ = built
    assert r.mp3.name == "test-session-unicode.mp3"


def test_length_matches_plan(built):
    r, audio, timeline = built
    assert abs(len(audio) * 1000 / RATE - timeline["length_ms"]) < 50


def test_duration_steps_last_their_length(built):
    r, audio, timeline = built
    ch = {c["title"]: c for c in timeline["chapters"]}
    assert ch["Fixed"]["end_ms"] - ch["Fixed"]["start_ms"] == 12000
    assert ch["Sides (left)"]["end_ms"] - ch["Sides (left)"]["start_ms"] == 6000


def test_speech_where_planned_and_silence_in_holds(built):
    r, audio, timeline = built
    speech = [e for e in timeline["events"] if e["kind"] == "speech"]
    assert speech, "no speech planned"
    for e in speech:
        assert rms_db(window(audio, e["start_ms"], e["end_ms"])) > -40, e
    silences = [e for e in timeline["events"] if e["kind"] == "silence" and e["end_ms"] - e["start_ms"] > 1500]
    assert silences
    for e in silences:  # no background: digital silence, allowing the encoder's ringing near the edges
        assert rms_db(window(audio, e["start_ms"] + 200, e["end_ms"] - 200)) < -70, e


def test_engine_is_recorded(built):
    r, _, timeline = built
    assert r.engine == "espeak" and r.voice == "en-us"
    assert timeline["engine"] == "espeak"


def test_tags_and_chapters_read_by_eyed3(built):
    r, _, timeline = built
    tag = eyed3.load(str(r.mp3)).tag
    assert tag.version == (2, 3, 0)  # output.id3 defaults to 2.3 (what id3lib and car stereos read)
    assert tag.title == "Test Session: Ünïcode/../"
    chapters = sorted(tag.chapters, key=lambda c: c.times[0])
    assert [c.title for c in chapters] == ["Intro", "Speak then hold", "Fixed", "Sides (left)", "Sides (right)",
                                          "Outro"]
    assert [list(c.times) for c in chapters] == [[c["start_ms"], c["end_ms"]] for c in timeline["chapters"]]
    toc = list(tag.table_of_contents)[0]
    assert toc.toplevel and toc.ordered and len(toc.child_ids) == 6


def test_background_bed_plays_ducks_and_fades(tmp_path, write_routine):
    # loudness normalisation off, so the bed's level can be read against the -20 dBFS reference
    (tmp_path / "audiogen.yaml").write_text("output: {loudness: null}\n")
    src = write_routine("""
        title: Bed
        voice: {engine: espeak}
        cue: none
        background: {track: pink-noise, volume: -12 dB, duck: -10 dB, fade_in: 2s, fade_out: 2s}
        steps:
          - title: A
            hold: 6s
          - title: B
            say: Now breathe in slowly and let the shoulders drop.
            hold: 6s
    """)
    [r] = build([src], BuildOptions(out_dir=tmp_path / "out"))
    assert r.status == "built", r.error
    audio = decode(r.mp3)
    timeline = json.loads(r.mp3.with_suffix(".json").read_text())
    speech = next(e for e in timeline["events"] if e["kind"] == "speech")
    free = rms_db(window(audio, 3000, 6000))  # bed alone, fade-in done
    assert -40 < free < -25  # -20 dBFS reference, 12 dB down
    assert rms_db(window(audio, 0, 200)) < free - 15  # fading in
    end = timeline["length_ms"]
    assert rms_db(window(audio, end - 150, end)) < free - 15  # faded out
    # during speech the bed is ducked ~10 dB: measure a gap between words? use the spectrum above speech:
    # pink noise extends above 8 kHz where espeak has little energy
    from numpy.fft import rfft, rfftfreq

    def hf_db(x):
        spec = np.abs(rfft(x * np.hanning(len(x)))) ** 2
        f = rfftfreq(len(x), 1 / RATE)
        return 10 * np.log10(spec[(f > 12000) & (f < 16000)].mean())

    mid = (speech["start_ms"] + speech["end_ms"]) / 2
    ducked = hf_db(window(audio, mid - 400, mid + 400))
    open_ = hf_db(window(audio, 3600, 4400))
    assert 6 < open_ - ducked < 14


def test_cli_build_prints_engine_and_skips_unchanged(tmp_path, write_routine):
    src = write_routine("title: Tiny\nvoice: {engine: espeak}\ncue: tick\nsteps:\n  - title: A\n    say: Hello.\n")
    out = tmp_path / "o"
    res = CliRunner().invoke(cli, ["build", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "tiny.mp3" in res.output and "espeak (en-us)  built" in res.output
    res2 = CliRunner().invoke(cli, ["build", str(src), "-o", str(out)])
    assert res2.exit_code == 0
    assert "1 unchanged (skipped); nothing to do: no synthesis, no rendering" in res2.output
    res3 = CliRunner().invoke(cli, ["build", str(src), "-o", str(out), "--force"])
    assert "1 built" in res3.output


def test_auto_offline_says_which_engine_narrated(tmp_path, write_routine):
    src = write_routine("title: Auto\ncue: none\nsteps:\n  - title: A\n    say: Hello there.\n")
    res = CliRunner().invoke(cli, ["build", str(src), "-o", str(tmp_path / "o"), "--offline"])
    assert res.exit_code == 0, res.output
    assert f"narrated by {offline_engine()} (" in res.output and "because gtts: offline mode" in res.output


def test_explicit_unavailable_engine_is_an_error(tmp_path, write_routine):
    src = write_routine("title: G\nvoice: {engine: gtts}\nsteps:\n  - title: A\n    say: Hello.\n")
    res = CliRunner().invoke(cli, ["build", str(src), "-o", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "engine 'gtts' is not available" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.mp3"))


def test_one_broken_routine_does_not_stop_the_others(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.yaml").write_text("title: A\nvoice: {engine: espeak}\nsteps:\n  - title: x\n    say: Hi.\n")
    (lib / "b.yaml").write_text("title: B\nsteps:\n  - title: x\n    sya: Hi.\n")
    res = CliRunner().invoke(cli, ["build", str(lib)])
    assert res.exit_code == 1
    assert (lib / "output" / "a.mp3").exists() and not (lib / "output" / "b.mp3").exists()
    assert "b.yaml:4:5: unknown key 'sya'" in res.output


def test_speed_changes_tempo(tmp_path, write_routine):
    lengths = {}
    for speed in (1.0, 1.5):
        src = write_routine(f"title: S{speed}\nvoice: {{engine: espeak, speed: {speed}}}\ncue: none\n"
                            "steps:\n  - title: A\n    say: Press gently along the jaw, from the chin to the ear.\n",
                            name=f"s{speed}.yaml")
        [r] = build([src], BuildOptions(out_dir=tmp_path / "o"))
        t = json.loads(r.mp3.with_suffix(".json").read_text())
        lengths[speed] = next(e for e in t["events"] if e["kind"] == "speech")
    slow = lengths[1.0]["end_ms"] - lengths[1.0]["start_ms"]
    fast = lengths[1.5]["end_ms"] - lengths[1.5]["start_ms"]
    assert 1.25 < slow / fast < 1.8
