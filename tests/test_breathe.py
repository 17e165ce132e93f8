"""Breathing steps: phases on their planned samples (measured in the decoded MP3), tones that rise and fall,
words in the first rounds, a chapter per step, variants that scale rounds; and the loader's located errors."""

import json

import numpy as np
import pytest
import yaml

from audiogen.audio.tones import HIGH_HZ, LOW_HZ, pace_tone
from audiogen.build import BuildOptions, build
from audiogen.plan.planner import SPEECH_LEAD_MS, plan_routine
from audiogen.plan.variants import fit_length, scale_routine
from audiogen.routine.errors import RoutineError
from audiogen.routine.loader import parse_routine
from audiogen.routine.model import routine_schema

from conftest import RATE, decode, window

jsonschema = pytest.importorskip("jsonschema")

IN, HOLD, OUT, AFTER = 2000, 500, 2500, 0
ROUNDS = 20
TONES_ROUTINE = f"""\
title: Paced breathing
voice: {{engine: espeak}}
cue: none
intro: Follow the tones.
steps:
  - title: Breathe
    breathe: {{in: {IN}ms, hold: {HOLD}ms, out: {OUT}ms, hold_after: {AFTER}ms, rounds: {ROUNDS}, tones: true,
              words: false}}
outro: Done.
"""


def speech(text: str) -> int:
    return 300 + 60 * len(text)


def sound(name: str) -> int:
    return 700


def plan_of(text: str):
    return plan_routine(parse_routine(text, "r.yaml"), speech, sound)


def step(body: str) -> str:
    return f"title: t\ncue: none\nsteps:\n  - title: b\n    {body}\n"


# -- planner ----------------------------------------------------------------------------------------
def test_phases_start_on_their_planned_ms():
    plan = plan_of(step("say: Ready.\n    breathe: {in: 4s, hold: 4s, out: 6s, hold_after: 2s, rounds: 3, "
                        "tones: true}"))
    tones = [e for e in plan.events if e.role == "tone"]
    words = [e for e in plan.events if e.role == "breathe"]
    t0 = tones[0].start_ms
    assert [(e.start_ms - t0, e.length_ms, e.sound.split(":")[1]) for e in tones] == [
        (r * 16000 + off, ms, kind) for r in range(3) for off, ms, kind in ((0, 4000, "rise"), (8000, 6000, "fall"))]
    starts = [t0 + r * 16000 + off for r in range(3) for off in (0, 4000, 8000, 14000)]
    assert [e.start_ms + SPEECH_LEAD_MS for e in words] == starts
    assert [e.text for e in words[:4]] == ["Breathe in.", "Hold.", "Breathe out.", "Hold."]
    assert plan.chapters[0].end_ms == t0 + 3 * 16000 + 3000  # the last phase ends, then the tail


def test_zero_phases_are_left_out():
    plan = plan_of(step("breathe: {in: 3s, hold: 0, out: 3s, rounds: 2}"))
    assert [e.text for e in plan.events if e.role == "breathe"] == ["Breathe in.", "Breathe out."] * 2


@pytest.mark.parametrize("words, spoken", [("first", 2), ("3", 3), ("0", 0), ("false", 0), ("true", 5)])
def test_words_first_rounds(words, spoken):
    plan = plan_of(step(f"breathe: {{in: 3s, out: 3s, rounds: 5, words: {words}, tones: true}}"))
    assert len([e for e in plan.events if e.role == "breathe"]) == 2 * spoken
    assert len([e for e in plan.events if e.role == "tone"]) == 10


def test_phrases_replace_the_phase_words():
    text = step("breathe: {in: 3s, hold: 1s, out: 3s, hold_after: 1s, rounds: 1}") + (
        "phrases: {breathe_in: Einatmen., breathe_hold: Halten., breathe_out: Ausatmen.}\n")
    plan = plan_of(text)
    assert [e.text for e in plan.events if e.role == "breathe"] == ["Einatmen.", "Halten.", "Ausatmen.", "Halten."]


def test_a_word_longer_than_its_phase_warns():
    plan = plan_of(step("breathe: {in: 500ms, out: 3s, rounds: 4}"))
    assert any("longer than its 0.5s in phase" in w.message or "in phase" in w.message for w in plan.warnings)


def test_one_chapter_per_breathing_step_and_side():
    plan = plan_of(step("breathe: {in: 2s, out: 2s, rounds: 2}\n    sides: [left, right]"))
    assert [c.title for c in plan.chapters] == ["b (left)", "b (right)"]


def test_variants_scale_rounds_not_phases():
    routine = parse_routine(step("say: Ready.\n    breathe: {in: 4s, hold: 2s, out: 6s, rounds: 6}") + (
        "  - title: rest\n    hold: 10s\n"), "r.yaml")
    double = scale_routine(routine, 2.0).steps[0].breathe
    assert (double.rounds, double.in_, double.hold, double.out) == (12, 4000, 2000, 6000)
    base = plan_routine(routine, speech, sound).length_ms
    scaled, plan = fit_length(routine, base + 60_000, speech, sound)
    assert plan.length_ms == base + 60_000
    b = scaled.steps[0].breathe
    assert (b.in_, b.hold, b.out) == (4000, 2000, 6000) and b.rounds >= 6


# -- loader and schema ------------------------------------------------------------------------------
#: (step body, words of the message, line, whether JSON Schema can refuse it too)
BAD = {
    "all phases 0": ("breathe: {in: 0, out: 0}", "needs some length", 5, False),
    "unknown key": ("breathe: {inn: 3s}", "did you mean 'in'", 5, True),
    "silent": ("breathe: {words: false}", "silent", 5, False),
    "with hold": ("breathe: {in: 3s}\n    hold: 3s", "remove hold", 4, True),
    "with duration": ("breathe: {in: 3s}\n    duration: 30s", "remove duration", 4, True),
    "with countdown": ("breathe: {in: 3s}\n    countdown: 3", "remove countdown", 4, True),
    "rounds 0": ("breathe: {rounds: 0}", "greater than or equal to 1", 5, True),
    "words maybe": ("breathe: {words: maybe}", "words is true, false, first", 5, True),
    "words negative": ("breathe: {words: -1, tones: true}", "words is true, false, first", 5, True),
    "bad phase": ("breathe: {in: long}", "", 5, True),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_breathe_is_located(name):
    body, words, line, schema_too = BAD[name]
    with pytest.raises(RoutineError) as e:
        parse_routine(step(body), "r.yaml")
    assert e.value.line == line and e.value.path == "r.yaml"
    assert words in str(e.value)
    if schema_too:
        validator = jsonschema.Draft202012Validator(routine_schema())
        assert list(validator.iter_errors(yaml.safe_load(step(body)))), f"the schema accepts {name}"


@pytest.mark.parametrize("body", [
    "breathe: {in: 4s, hold: 4s, out: 6s, hold_after: 0s, rounds: 6}",
    "breathe: {in: 4, out: '6s', rounds: '3', tones: yes, words: first}",
    "breathe: {in: 4s, out: 4s, words: 2}", "breathe: {words: FIRST, tones: on}",
    "say: Ready.\n    breathe: {}\n    sides: [a, b]",
])
def test_good_breathe_validates_in_both(body):
    parse_routine(step(body), "r.yaml")
    validator = jsonschema.Draft202012Validator(routine_schema())
    assert [e.message for e in validator.iter_errors(yaml.safe_load(step(body)))] == []


# -- the tone itself --------------------------------------------------------------------------------
def peak_hz(x: np.ndarray, rate: int = RATE) -> float:
    """The strongest frequency of `x` (FFT peak, zero-padded, Hann window)."""
    n = 1 << 18
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n))
    return float(np.argmax(spec) * rate / n)


def test_tone_is_exactly_its_phase_long_and_glides():
    x = pace_tone("rise", 4000)
    assert len(x) == 4000 * RATE // 1000
    assert peak_hz(x[: RATE // 4]) < LOW_HZ * 1.05 and peak_hz(x[-RATE // 2 : -RATE // 4]) > HIGH_HZ * 0.9


# -- built and decoded ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("breathe")
    src = tmp / "breathe.yaml"
    src.write_text(TONES_ROUTINE)
    [r] = build([src], BuildOptions(out_dir=tmp / "out"))
    assert r.status == "built", r.error
    timeline = json.loads((tmp / "out" / f"{r.mp3.stem}.json").read_text())
    return r, decode(r.mp3), timeline


def onset_ms(x: np.ndarray, planned_ms: int, fraction: float = 0.1) -> float:
    """Where the sound near `planned_ms` starts: the first sample over `fraction` of its peak, searched from
    40 ms before."""
    region = window(x, planned_ms - 40, planned_ms + 300)
    level = fraction * float(np.max(np.abs(region)))
    first = int(np.flatnonzero(np.abs(region) > level)[0])
    return planned_ms - 40 + first * 1000 / RATE


def test_phase_boundaries_land_within_10ms_over_20_rounds(built):
    _, audio, timeline = built
    tones = [e for e in timeline["events"] if e.get("role") == "tone"]
    assert len(tones) == 2 * ROUNDS
    t0 = tones[0]["start_ms"]
    assert [e["start_ms"] - t0 for e in tones] == [
        r * (IN + HOLD + OUT + AFTER) + off for r in range(ROUNDS) for off in (0, IN + HOLD)]
    misses = [onset_ms(audio, e["start_ms"]) - e["start_ms"] for e in tones]
    print(f"tone onsets vs plan: {min(misses):+.1f} to {max(misses):+.1f} ms over {len(misses)} phases")
    assert max(abs(m) for m in misses) <= 10, misses


def test_tones_rise_through_inhales_and_fall_through_exhales(built):
    _, audio, timeline = built
    tones = [e for e in timeline["events"] if e.get("role") == "tone"]
    for e in tones:
        s, end = e["start_ms"], e["end_ms"]
        first, last = peak_hz(window(audio, s + 30, s + 330)), peak_hz(window(audio, end - 600, end - 300))
        if e is tones[0] or e is tones[1]:
            print(f"{e['sound']}: {first:.0f} Hz -> {last:.0f} Hz")
        if e["sound"].startswith("tone:rise"):
            assert first < 240 < 280 < last, (e, first, last)
        else:
            assert first > 300 > 260 > last, (e, first, last)


def test_the_holds_are_quiet_and_the_step_is_a_chapter(built):
    _, audio, timeline = built
    tones = [e for e in timeline["events"] if e.get("role") == "tone" and e["sound"].startswith("tone:rise")]
    for e in tones:  # the hold after the inhale: the tone has faded out, nothing plays
        hold = window(audio, e["end_ms"] + 20, e["end_ms"] + HOLD - 20)
        assert float(np.max(np.abs(hold))) < 0.003
    assert [c["title"] for c in timeline["chapters"]] == ["Intro", "Breathe", "Outro"]


WORDS_ROUTINE = """\
title: Spoken breathing
voice: {engine: espeak}
cue: none
intro: Breathe with me.
steps:
  - title: Breathe
    breathe: {in: 3s, hold: 1500ms, out: 3500ms, hold_after: 1s, rounds: 4, words: first}
outro: Done.
"""


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("breathe-words")
    src = tmp / "words.yaml"
    src.write_text(WORDS_ROUTINE)
    [r] = build([src], BuildOptions(out_dir=tmp / "out"))
    assert r.status == "built", r.error
    return r, decode(r.mp3), json.loads((tmp / "out" / f"{r.mp3.stem}.json").read_text())


def word_onset_ms(x: np.ndarray, at_ms: int) -> float:
    """The first sample within 30 dB of the word's peak, searched from 150 ms before `at_ms`."""
    region = window(x, at_ms - 150, at_ms + 500)
    level = 10 ** (-30 / 20) * float(np.max(np.abs(region)))
    return at_ms - 150 + int(np.flatnonzero(np.abs(region) > level)[0]) * 1000 / RATE


def test_spoken_phase_words_are_heard_on_their_phases_in_the_first_rounds(spoken):
    r, audio, timeline = spoken
    # the silent later rounds, with no bed and no tones, are digital silence: the sound check says so
    assert [c["check"] for c in r.checks] == ["silence"], r.checks
    ch = next(c for c in timeline["chapters"] if c["title"] == "Breathe")
    words = [e for e in timeline["events"] if e.get("role") == "breathe"]
    t0 = words[0]["start_ms"] + SPEECH_LEAD_MS
    phases = [t0 + r * 9000 + off for r in range(4) for off in (0, 3000, 4500, 8000)]
    assert ch["end_ms"] == phases[-1] + 1000  # the last hold_after ends the step
    assert [w["start_ms"] + SPEECH_LEAD_MS for w in words] == phases[:8]  # words: first = 2 rounds
    assert [w["text"] for w in words[:4]] == ["Breathe in.", "Hold.", "Breathe out.", "Hold."]
    misses = [word_onset_ms(audio, p) - p for p in phases[:8]]
    print(f"phase word onsets vs plan: {min(misses):+.1f} to {max(misses):+.1f} ms")
    assert max(abs(m) for m in misses) <= 10, misses
    quiet = window(audio, phases[8] - 200, ch["end_ms"])  # rounds 3 and 4: no words, no tones
    assert float(np.max(np.abs(quiet))) < 0.003
