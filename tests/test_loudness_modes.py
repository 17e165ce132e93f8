"""The voice at the target, the bed where it was put: speech-gated loudness (the default) against the
old programme model, measured on the decoded MP3 by ffmpeg's ebur128 (not audiogen's meter)."""

from __future__ import annotations

import json

import pytest

from audiogen.build import BuildOptions, build
from audiogen.routine.errors import RoutineError
from audiogen.routine.loader import parse_routine

from conftest import bed_only_spans, loudness, speech_spans, stretches_loudness

#: A session that is about 80% holds under a rain bed written 20 dB under the voice.
HOLDS = """\
title: Long Holds
voice: {engine: espeak}
cue: none
background: {track: rain, volume: -20 dB, fade_in: 2s, fade_out: 2s}
steps:
""" + "".join(f"""  - title: Step {i}
    say: Rest your palms over your eyes, number {i}, and breathe.
    hold: 14s
""" for i in range(1, 6))


def _build(tmp_path, text, library_yaml=None):
    lib = tmp_path / "lib"
    lib.mkdir(parents=True)
    (lib / "r.yaml").write_text(text)
    if library_yaml:
        (lib / "audiogen.yaml").write_text(library_yaml)
    [r] = build([lib], BuildOptions(out_dir=tmp_path / "out"))
    assert r.status == "built", r.error
    return r, json.loads(r.mp3.with_suffix(".json").read_text())


def test_speech_reaches_the_target_and_the_bed_stays_where_it_was_written(tmp_path):
    r, timeline = _build(tmp_path, HOLDS)
    speech_share = sum(b - a for a, b in speech_spans(timeline)) / timeline["length_ms"]
    assert speech_share < 0.25  # the session is mostly holds
    speech = stretches_loudness(r.mp3, speech_spans(timeline), tmp_path)
    bed = stretches_loudness(r.mp3, bed_only_spans(timeline), tmp_path)
    assert abs(speech - (-16.0)) <= 1.0, speech
    assert abs((bed - speech) - (-20.0)) <= 1.5, (bed, speech)  # the written volume, relative to the voice
    assert timeline["loudness_mode"] == "speech"
    assert timeline["loudness_lufs"] == r.loudness and abs(r.loudness - (-16.0)) < 0.2
    programme, peak = loudness(r.mp3)
    assert r.programme_loudness is not None and abs(r.programme_loudness - programme) <= 1.0
    # (the whole programme measures close to the speech: BS.1770's relative gate leaves out a bed 20 dB down)
    assert peak <= -1.0


def test_programme_mode_levels_the_whole_mix_as_before(tmp_path):
    r, timeline = _build(tmp_path, HOLDS, "output: {loudness_mode: programme}\n")
    integrated, peak = loudness(r.mp3)
    assert abs(integrated - (-16.0)) <= 1.0, integrated
    assert peak <= -1.0
    speech = stretches_loudness(r.mp3, speech_spans(timeline), tmp_path)
    bed = stretches_loudness(r.mp3, bed_only_spans(timeline), tmp_path)
    assert bed - speech > -10  # the bed was raised far above where it was written
    assert timeline["loudness_mode"] == "programme"


def test_a_routine_file_may_set_its_own_loudness(tmp_path):
    r, timeline = _build(tmp_path, HOLDS.replace("cue: none\n", "cue: none\nloudness: -20\n"))
    speech = stretches_loudness(r.mp3, speech_spans(timeline), tmp_path)
    assert abs(speech - (-20.0)) <= 1.0, speech
    r2, _ = _build(tmp_path / "off", HOLDS.replace("cue: none\n", "cue: none\nloudness: null\n"))
    assert r2.loudness is not None and r2.loudness < -17  # not levelled: speech clips sit at -20 LUFS


def test_a_routine_loudness_out_of_range_is_a_located_error():
    with pytest.raises(RoutineError) as e:
        parse_routine(HOLDS.replace("cue: none\n", "cue: none\nloudness: 3\n"), "r.yaml")
    assert e.value.format().startswith("r.yaml:4:")
