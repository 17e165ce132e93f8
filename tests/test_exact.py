"""Exact numbers: the duration formatter never prints `:60`, and length variants hit their target to the ms."""

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from audiogen.plan.planner import plan_routine
from audiogen.plan.variants import _with, fit_length, scale_routine
from audiogen.routine.durations import format_ms, parse_duration
from audiogen.routine.loader import parse_routine

BUDGET = settings(max_examples=300, deadline=None, derandomize=True)


# -- format_ms ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("ms", "shown"), [
    (59_949, "0:59.9"), (59_950, "1:00.0"), (59_960, "1:00.0"), (59_999, "1:00.0"), (60_000, "1:00.0"),
    (119_960, "2:00.0"), (3_599_949, "59:59.9"), (3_599_960, "1:00:00"), (3_600_000, "1:00:00"),
    (3_659_999, "1:01:00"), (3_723_000, "1:02:03"), (90_500, "1:30.5"), (0, "0:00.0"), (-59_960, "-1:00.0"),
])
def test_rounding_carries_into_the_minute(ms, shown):
    assert format_ms(ms) == shown


def _precision(ms: int) -> int:
    """Half the display unit: tenths below an hour, whole seconds from an hour on."""
    return 50 if ms < 3_599_950 else 500


@BUDGET
@given(st.integers(0, 12 * 3_600_000))
def test_format_parses_back_within_its_precision(ms):
    text = format_ms(ms)
    seconds = text.split(":")[-1]
    assert float(seconds) < 60, text
    assert abs(parse_duration(text) - ms) <= _precision(ms), text


@BUDGET
@given(st.integers(0, 12 * 3_600_000), st.integers(0, 200_000))
def test_format_is_monotone(a, gap):
    assert parse_duration(format_ms(a)) <= parse_duration(format_ms(a + gap))


# -- fit_length ----------------------------------------------------------------------------------------------

def speech(text: str) -> int:
    return 400 + 61 * len(text) + (len(text) * 7919) % 97  # odd, uneven lengths like real clips


def sound(name: str) -> int:
    return {"chime": 1733, "bell": 2211, "tick": 91, "gong": 4057}.get(name, 999)


ROUTINE = """\
title: Morning Lift
intro: Welcome. Use light pressure, and skip any irritated skin.
steps:
  - title: Warm up
    say: Rub your palms together until they feel warm. [pause 2s] Now press them gently over your face.
    hold: 20s
  - title: Forehead sweep
    say: Place two fingertips at the centre of your forehead and sweep out to the temples.
    repeat: 6
    every: 5s
  - title: Jawline lift
    say: Make a V with your fingers and glide from chin to ear.
    duration: 1m
    sides: [left, right]
    side_prompt: Now the {side} side.
    remind: {halfway: true, remaining: [10s]}
outro: Finish by pressing your palms over your eyes for three slow breaths.
"""


@pytest.mark.parametrize("target", [300_000, 600_000, 1_200_000, 599_999, 600_001, 123_457])
def test_readme_routine_variants_are_exact(target):
    _, plan = fit_length(parse_routine(ROUTINE, "r.yaml"), target, speech, sound)
    assert plan.length_ms == target


@st.composite
def step_yaml(draw, index: int) -> str:
    kind = draw(st.sampled_from(["hold", "duration", "repeat", "repeat-duration", "sides"]))
    say = draw(st.sampled_from(["Breathe in.", "Press gently and lift away, slowly.", "Glide up. [pause 1.5s] Rest."]))
    lines = [f"  - title: Step {index}", f"    say: {say}"]
    seconds = draw(st.integers(1, 120))
    if kind == "hold":
        lines.append(f"    hold: {seconds}.{draw(st.integers(0, 999)):03d}s")
    elif kind == "duration":
        lines.append(f"    duration: {seconds + 10}s")
        if draw(st.booleans()):
            lines.append("    remind: {halfway: true, remaining: [5s]}")
    elif kind == "repeat":
        lines += [f"    repeat: {draw(st.integers(2, 12))}", f"    every: {draw(st.integers(2000, 9000))}ms",
                  f"    count: {draw(st.sampled_from(['true', 'false']))}"]
    elif kind == "repeat-duration":
        lines += [f"    repeat: {draw(st.integers(2, 8))}", f"    duration: {seconds + 30}s"]
    else:
        lines += [f"    duration: {seconds + 10}s", "    sides: [left, right]"]
    return "\n".join(lines)


@st.composite
def routines(draw) -> str:
    n = draw(st.integers(1, 6))
    steps = [draw(step_yaml(i)) for i in range(n)]
    head = ["title: Variant"]
    if draw(st.booleans()):
        head.append("intro: Welcome. Sit comfortably.")
    head.append(f"cue: {draw(st.sampled_from(['chime', 'none', 'bell']))}")
    tail = ["outro: That is the end."] if draw(st.booleans()) else []
    return "\n".join(head + ["steps:"] + steps + tail) + "\n"


def _unit_silence(routine) -> bool:
    """True when the routine has a silence that lengthens the session 1 ms at a time (a one-run hold or
    duration, not split into repeat slots): then every length from its speech-only floor upwards is reachable.

    A repeat's duration is not one: it is shared among the slots, and while the speech overflows them the
    session grows in jumps (`repeat: 3, duration: 6626ms` of "Breathe in." is 11177 ms long, 6625ms 11175 ms:
    11176 cannot be reached; see the test below)."""
    return any(not s.sides and not s.repeat and (s.hold is not None or s.duration is not None)
               for s in routine.steps)


def test_a_repeats_duration_can_skip_lengths_while_its_speech_overflows():
    """Why `_unit_silence` leaves repeat steps out (found by the test below, whose examples depend on which
    modules are loaded: Hypothesis draws constants from their source)."""
    routine = parse_routine("title: Variant\ncue: chime\nsteps:\n  - title: Step 0\n    say: Breathe in.\n"
                            "    repeat: 3\n    duration: 31s\n", "r.yaml")
    lengths = {plan_routine(_with(routine, 0, "duration", v), speech, sound).length_ms for v in range(1, 8000)}
    floor = plan_routine(scale_routine(routine, 0.0), speech, sound).length_ms
    assert floor in lengths and floor + 1 not in lengths and floor + 2 in lengths
    assert not _unit_silence(routine)
    _, plan = fit_length(routine, floor + 1, speech, sound)
    assert plan.length_ms in (floor, floor + 2)  # as close as it gets


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(routines(), st.integers(0, 40 * 60_000))
def test_variants_hit_every_reachable_target_exactly(text, extra):
    routine = parse_routine(text, "r.yaml")
    assume(_unit_silence(routine))
    floor = plan_routine(scale_routine(routine, 0.0), speech, sound).length_ms
    target = floor + extra
    _, plan = fit_length(routine, target, speech, sound)
    assert plan.length_ms == target, (target, plan.length_ms)
