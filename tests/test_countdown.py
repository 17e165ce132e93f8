"""`countdown: N`: the last N seconds of each run counted down (or ticked), each number heard on its second;
reminders are never moved onto it. Planned with injected lengths, built with espeak, measured decoded."""

import json

import numpy as np
import pytest
import yaml

from audiogen.build import BuildOptions, build
from audiogen.plan.planner import REMINDER_GAP_MS, SPEECH_LEAD_MS, plan_routine
from audiogen.routine.errors import RoutineError
from audiogen.routine.loader import parse_routine
from audiogen.routine.model import routine_schema

from conftest import RATE, decode, window

jsonschema = pytest.importorskip("jsonschema")


def routine_text(body: str) -> str:
    return f"title: t\ncue: none\nintro: Hi.\nsteps:\n  - title: Plank\n    {body}\noutro: Done.\n"


def plan_of(body: str, speech=lambda t: 400):
    return plan_routine(parse_routine(routine_text(body), "r.yaml"), speech, lambda s: 300)


def run_end(plan, title="Plank"):
    return next(c.end_ms for c in plan.chapters if c.title == title)


def test_numbers_start_on_the_last_seconds():
    plan = plan_of("say: Hold the plank.\n    duration: 20s\n    countdown: 5")
    end = run_end(plan)
    nums = [e for e in plan.events if e.role == "countdown"]
    assert [e.text for e in nums] == ["Five", "Four", "Three", "Two", "One"]
    assert [e.start_ms + SPEECH_LEAD_MS for e in nums] == [end - k * 1000 for k in (5, 4, 3, 2, 1)]
    assert plan.chapters[1].length_ms == 20_000 and not plan.warnings


def test_count_false_ticks_on_the_seconds():
    plan = plan_of("say: Hold.\n    duration: 10s\n    countdown: 3\n    count: false")
    end = run_end(plan)
    ticks = [e for e in plan.events if e.role == "countdown"]
    assert [(e.kind, e.sound, e.start_ms) for e in ticks] == [("cue", "tick", end - k * 1000) for k in (3, 2, 1)]


def test_repeat_ticks_do_not_count_as_the_countdown_for_reminders():
    plan = plan_of("say: Go.\n    duration: 20s\n    repeat: 3\n    count: false\n    countdown: 3\n"
                   "    remind: {halfway: true}")
    [halfway] = [e for e in plan.events if e.role == "reminder"]
    start = plan.chapters[1].start_ms
    assert abs(halfway.start_ms - (start + 10_000)) < 1500  # still near halfway, before the countdown
    assert halfway.end_ms < run_end(plan) - 3000


def test_each_side_counts_down_and_a_hold_step_too():
    plan = plan_of("say: Stretch.\n    hold: 8s\n    countdown: 3\n    sides: [left, right]")
    for side in ("Plank (left)", "Plank (right)"):
        ch = next(c for c in plan.chapters if c.title == side)
        i = plan.chapters.index(ch)
        nums = [e for e in plan.events if e.role == "countdown" and e.chapter == i]
        assert [e.start_ms + SPEECH_LEAD_MS for e in nums] == [ch.end_ms - k * 1000 for k in (3, 2, 1)]


def test_numbers_beyond_the_count_phrases_are_digits():
    text = routine_text("hold: 30s\n    countdown: 3") + "phrases: {counts: [Uno, Dos]}\n"
    plan = plan_routine(parse_routine(text, "r.yaml"), lambda t: 400, lambda s: 300)
    assert [e.text for e in plan.events if e.role == "countdown"] == ["3", "Dos", "Uno"]


@pytest.mark.parametrize("remind", ["{halfway: true}", "{remaining: [8s]}", "{halfway: true, remaining: [7s]}"])
def test_reminders_never_land_on_the_countdown(remind):
    plan = plan_of(f"say: Hold.\n    duration: 10s\n    countdown: 5\n    remind: {remind}",
                   speech=lambda t: 1200 if "left" in t else 500)
    end = run_end(plan)
    assert plan.chapters[1].length_ms == 10_000  # nothing pushed the run longer
    first_number = end - 5000 - SPEECH_LEAD_MS
    reminders = [e for e in plan.events if e.role == "reminder"]
    assert reminders
    for e in reminders:
        assert e.end_ms + REMINDER_GAP_MS <= first_number, e


def test_speech_running_into_the_countdown_warns():
    plan = plan_of("say: A very long instruction.\n    duration: 6s\n    countdown: 5", speech=lambda t: 2500)
    assert any("countdown" in w.message for w in plan.warnings)


BAD = {
    "longer than the duration": ("duration: 4s\n    countdown: 5", "does not fit", 5),
    "longer than the hold": ("say: Hi.\n    hold: 3s\n    countdown: 5", "does not fit", 5),
    "a reminder inside it": ("duration: 20s\n    countdown: 5\n    remind: {remaining: [5s]}", "falls in", 5),
    "zero": ("duration: 20s\n    countdown: 0", "greater than or equal to 1", 7),
    "too long": ("duration: 1m\n    countdown: 31", "less than or equal to 30", 7),
    "on a breathe step": ("breathe: {in: 3s}\n    countdown: 3", "remove countdown", 5),
    "nothing to count in": ("say: Hi.\n    countdown: 3", "does not fit", 5),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_countdowns_are_located(name):
    body, words, line = BAD[name]
    with pytest.raises(RoutineError) as e:
        parse_routine(routine_text(body), "r.yaml")
    assert (e.value.path, e.value.line) == ("r.yaml", line) and words in str(e.value)


@pytest.mark.parametrize("name", ["zero", "too long", "on a breathe step", "nothing to count in"])
def test_the_schema_refuses_them_too(name):
    validator = jsonschema.Draft202012Validator(routine_schema())
    assert list(validator.iter_errors(yaml.safe_load(routine_text(BAD[name][0]))))


@pytest.mark.parametrize("body", ["duration: 20s\n    countdown: 5", "hold: 10s\n    countdown: '3'",
                                  "repeat: 4\n    every: 2s\n    countdown: 3\n    count: false"])
def test_good_countdowns_validate_in_both(body):
    parse_routine(routine_text(body), "r.yaml")
    validator = jsonschema.Draft202012Validator(routine_schema())
    assert [e.message for e in validator.iter_errors(yaml.safe_load(routine_text(body)))] == []


# -- built and decoded ------------------------------------------------------------------------------
def onset_ms(x: np.ndarray, around_ms: int, db: float = -40) -> float:
    """Where the word near `around_ms` is first heard: the first sample within `db` of its peak."""
    region = window(x, around_ms - 150, around_ms + 400)
    level = 10 ** (db / 20) * float(np.max(np.abs(region)))
    return around_ms - 150 + int(np.flatnonzero(np.abs(region) > level)[0]) * 1000 / RATE


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("countdown")
    src = tmp / "countdown.yaml"
    body = "say: Hold the plank.\n    duration: 14s\n    countdown: 5\n    remind: {halfway: true}"
    src.write_text(routine_text(body).replace("cue: none", "cue: none\nvoice: {engine: espeak}"))
    [r] = build([src], BuildOptions(out_dir=tmp / "out"))
    assert r.status == "built", r.error
    return r, decode(r.mp3), json.loads((tmp / "out" / f"{r.mp3.stem}.json").read_text())


def test_built_numbers_are_heard_within_10ms_of_their_seconds(built):
    r, audio, timeline = built
    plank = next(c for c in timeline["chapters"] if c["title"] == "Plank")
    assert plank["end_ms"] - plank["start_ms"] == 14_000 and r.warnings == []
    seconds = [plank["end_ms"] - k * 1000 for k in (5, 4, 3, 2, 1)]
    heard = [onset_ms(audio, s) for s in seconds]
    misses = [h - s for h, s in zip(heard, seconds, strict=True)]
    print(f"countdown onsets vs their seconds: {', '.join(f'{m:+.1f}' for m in misses)} ms")
    assert max(abs(m) for m in misses) <= 10, misses
    later = [onset_ms(audio, s, db=-30) - s for s in seconds]  # a stricter ear: still on the second
    print(f"at -30 dB: {', '.join(f'{m:+.1f}' for m in later)} ms")
    assert max(abs(m) for m in later) <= 10, later
    words = [e["text"] for e in timeline["events"] if e.get("role") == "countdown"]
    assert words == ["Five", "Four", "Three", "Two", "One"]
    [halfway] = [e for e in timeline["events"] if e.get("role") == "reminder"]
    assert halfway["end_ms"] < seconds[0] - SPEECH_LEAD_MS
