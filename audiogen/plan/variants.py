"""Length variants: stretch or shrink a routine to a target total length (pure, like the planner).

Only silence scales: `hold`, `duration`, `every` (and so the reminders inside them), and the number of
breathing rounds (never a breathing phase's length: the pace is the exercise); speech, cues, markup pauses
and the fixed gaps never do. The plan's length is monotonic in the scale factor, so a
bisection finds the factor that comes closest from below (or says speech alone is too long). One factor
alone rarely lands on the millisecond: every scaled value is rounded to whole ms, and a value that plays
several times (each side, each repeat slot, equal holds rounding together) moves the length in jumps of
several ms. So the last few ms are then put into single silences, coarsest first and one-run holds and
durations last, which move the length 1 ms at a time.
"""

from __future__ import annotations

from collections.abc import Callable

from audiogen.plan.planner import Plan, plan_routine
from audiogen.routine.durations import format_ms
from audiogen.routine.errors import RoutineError
from audiogen.routine.model import Routine


def _step_update(step, update: dict):
    if step.remind is not None and "duration" in update:
        # a reminder "10 s left" only makes sense while it still fits in the shorter step
        kept = [r for r in step.remind.remaining if r < update["duration"]]
        update["remind"] = step.remind.model_copy(update={"remaining": kept})
    return step.model_copy(update=update)


def scale_routine(routine: Routine, k: float) -> Routine:
    """A copy of `routine` whose holds, durations and slot lengths are multiplied by `k`."""
    steps = []
    for step in routine.steps:
        update: dict = {}
        if step.hold is not None:
            update["hold"] = round(step.hold * k)
        if step.duration is not None:
            update["duration"] = max(1, round(step.duration * k))
        if step.every is not None:
            update["every"] = max(1, round(step.every * k))
        if step.breathe is not None:  # the breath keeps its pace: more or fewer rounds, never longer phases
            update["breathe"] = step.breathe.model_copy(update={"rounds": max(1, round(step.breathe.rounds * k))})
        steps.append(_step_update(step, update))
    scaled = routine.model_copy(update={"steps": steps})
    return scaled


def _silences(routine: Routine) -> list[tuple[int, int, str]]:
    """(ms of session length per ms of the value, step index, field) for every scalable value, coarsest first."""
    out = []
    for i, step in enumerate(routine.steps):
        runs = len(step.sides or [None])
        out += [(runs, i, f) for f in ("hold", "duration") if getattr(step, f) is not None]
        if step.every is not None:
            out.append((runs * (step.repeat or 1), i, "every"))
    return sorted(out, key=lambda c: -c[0])


def _with(routine: Routine, i: int, field: str, value: int) -> Routine:
    steps = list(routine.steps)
    steps[i] = _step_update(steps[i], {field: value})
    return routine.model_copy(update={"steps": steps})


def _raise_one(routine: Routine, plan: Plan, i: int, field: str, target_ms: int,
               plan_of: Callable[[Routine], Plan]) -> tuple[Routine, Plan]:
    """Lengthen one silence to the largest value whose plan is still not over `target_ms` (the length does
    not fall as a silence grows; it may stand still, e.g. while speech outgrows a duration)."""

    def at(v: int) -> tuple[Routine, Plan]:
        r = _with(routine, i, field, v)
        return r, plan_of(r)

    low_v, low = getattr(routine.steps[i], field), (routine, plan)
    step = max(1, target_ms - plan.length_ms)
    for _ in range(40):  # find a value over the target: the miss, then doubling
        high_v = low_v + step
        r, p = at(high_v)
        if p.length_ms == target_ms:
            return r, p
        if p.length_ms > target_ms:
            break
        low_v, low, step = high_v, (r, p), step * 2
    else:
        return low
    while high_v - low_v > 1:
        mid = (low_v + high_v) // 2
        r, p = at(mid)
        if p.length_ms == target_ms:
            return r, p
        if p.length_ms < target_ms:
            low_v, low = mid, (r, p)
        else:
            high_v = mid
    return low


def _nudge(routine: Routine, plan: Plan, target_ms: int,
           plan_of: Callable[[Routine], Plan]) -> tuple[Routine, Plan]:
    """From a plan not over `target_ms`, lengthen single silences (coarsest first) until it is exactly that."""
    for _weight, i, field in _silences(routine):
        if plan.length_ms == target_ms:
            break
        routine, plan = _raise_one(routine, plan, i, field, target_ms, plan_of)
    return routine, plan


def fit_length(
    routine: Routine,
    target_ms: int,
    speech_ms: Callable[[str], int],
    sound_ms: Callable[[str], int],
) -> tuple[Routine, Plan]:
    """The scaled routine (and its plan) whose length is `target_ms`: to the millisecond whenever some
    setting of its silences reaches it (with a one-run hold, or the duration of a step that is not repeated,
    every length from the speech alone upwards), otherwise as close as it gets. A repeated step's duration
    is shared among its slots, so while its speech overflows them the length moves in jumps (some lengths
    cannot be reached; `tests/test_exact.py` pins one)."""

    def plan_of(r: Routine) -> Plan:
        return plan_routine(r, speech_ms, sound_ms)

    def length(k: float) -> tuple[Routine, Plan]:
        r = scale_routine(routine, k)
        return r, plan_of(r)

    floor_routine, floor_plan = length(0.0)
    if floor_plan.length_ms > target_ms:
        raise RoutineError(
            f"cannot make {routine.title!r} {format_ms(target_ms)} long: its speech alone takes "
            f"{format_ms(floor_plan.length_ms)}",
            path=str(routine.source) if routine.source else None,
            hint="remove that length from variants, or shorten the text",
        )
    lo, hi = 0.0, 1.0
    while length(hi)[1].length_ms < target_ms:
        hi *= 2
        if hi > 1e4:
            raise RoutineError(f"cannot stretch {routine.title!r} to {format_ms(target_ms)}: it has no "
                               "hold, duration or repeat to stretch", hint="add a hold or duration")
    best = length(hi)
    below = (floor_routine, floor_plan)  # the longest plan not over the target: the nudges only lengthen it
    for _ in range(60):
        mid = (lo + hi) / 2
        r, p = length(mid)
        if abs(p.length_ms - target_ms) < abs(best[1].length_ms - target_ms):
            best = (r, p)
        if below[1].length_ms < p.length_ms <= target_ms:
            below = (r, p)
        if p.length_ms == target_ms:
            return r, p
        if p.length_ms < target_ms:
            lo = mid
        else:
            hi = mid
    r, p = _nudge(*below, target_ms, plan_of)
    return (r, p) if abs(p.length_ms - target_ms) <= abs(best[1].length_ms - target_ms) else best


def variant_label(ms: int) -> str:
    """'10m', '1m30s', '45s': short and file-name safe."""
    m, s = divmod(round(ms / 1000), 60)
    return (f"{m}m" if m else "") + (f"{s}s" if s or not m else "")
