"""Length variants: stretch or shrink a routine to a target total length (pure, like the planner).

Only silence scales: `hold`, `duration`, `every` (and so the reminders inside them); speech, cues,
markup pauses and the fixed gaps never do. The plan's length is monotonic in the scale factor, so a
bisection finds the factor that hits the target to the millisecond, or says speech alone is too long.
"""

from __future__ import annotations

from collections.abc import Callable

from audiogen.plan.planner import Plan, plan_routine
from audiogen.routine.durations import format_ms
from audiogen.routine.errors import RoutineError
from audiogen.routine.model import Routine


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
        if step.remind is not None and "duration" in update:
            # a reminder "10 s left" only makes sense while it still fits in the shorter step
            kept = [r for r in step.remind.remaining if r < update["duration"]]
            update["remind"] = step.remind.model_copy(update={"remaining": kept})
        steps.append(step.model_copy(update=update))
    scaled = routine.model_copy(update={"steps": steps})
    return scaled


def fit_length(
    routine: Routine,
    target_ms: int,
    speech_ms: Callable[[str], int],
    sound_ms: Callable[[str], int],
) -> tuple[Routine, Plan]:
    """The scaled routine (and its plan) whose length is `target_ms` (within a few ms)."""

    def length(k: float) -> tuple[Routine, Plan]:
        r = scale_routine(routine, k)
        return r, plan_routine(r, speech_ms, sound_ms)

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
    for _ in range(60):
        mid = (lo + hi) / 2
        r, p = length(mid)
        if abs(p.length_ms - target_ms) < abs(best[1].length_ms - target_ms):
            best = (r, p)
        if p.length_ms == target_ms:
            break
        if p.length_ms < target_ms:
            lo = mid
        else:
            hi = mid
    return best


def variant_label(ms: int) -> str:
    """'10m', '1m30s', '45s': short and file-name safe."""
    m, s = divmod(round(ms / 1000), 60)
    return (f"{m}m" if m else "") + (f"{s}s" if s or not m else "")
