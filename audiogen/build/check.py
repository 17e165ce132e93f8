"""`check` and `plan`: validate and lay out routines without any engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audiogen.plan.planner import Plan, estimate_speech_ms, plan_routine, spoken_texts
from audiogen.routine.errors import AudiogenError, RoutineError
from audiogen.routine.library import config_for, routine_files
from audiogen.routine.loader import load_routine
from audiogen.routine.model import Routine


@dataclass
class CheckResult:
    source: str
    title: str | None = None
    length_ms: int = 0
    estimated: bool = True
    warnings: list[str] = field(default_factory=list)
    error: AudiogenError | None = None


def _cue_ms(routine: Routine):
    from audiogen.audio.sounds import cue_length_ms
    from audiogen.routine.soundref import is_builtin

    def length(ref: str) -> int:
        if is_builtin(ref, "cue"):
            return cue_length_ms(ref)
        from audiogen.audio.session import load_cue
        from audiogen.dsp.ffmpeg import INTERNAL_RATE

        return int(len(load_cue(ref, routine.base_dir)) * 1000 / INTERNAL_RATE)

    return length


def plan_for(routine: Routine, cache=None) -> Plan:
    """Plan with the real lengths of cached clips where there are any, estimates for the rest."""
    from audiogen.voice.cache import ClipCache
    from audiogen.voice.narrate import Narrator

    texts = spoken_texts(routine)
    known = Narrator(cache or ClipCache(), offline=True).cached_lengths(routine, texts)
    estimated = len(known) < len(texts)
    speed = routine.voice.speed
    return plan_routine(
        routine, lambda t: known.get(t) or estimate_speech_ms(t, speed), _cue_ms(routine), estimated=estimated
    )


def plan_file(path: str | Path) -> Plan:
    """The timeline of one routine file (its folder's audiogen.yaml defaults apply), without synthesis."""
    return plan_for(load_routine(path, defaults=config_for(path).defaults or None))


def check_paths(paths: list[str | Path]) -> list[CheckResult]:
    """Validate routine files and library folders; one result per routine (or per unreadable library)."""
    out: list[CheckResult] = []
    for p in map(Path, paths):
        try:
            defaults = config_for(p).defaults or None
        except AudiogenError as e:
            out.append(CheckResult(str(p), error=e))
            continue
        files = routine_files(p) if p.is_dir() else [p]
        if not files:
            out.append(CheckResult(str(p), error=RoutineError("no routine files (*.yaml)", path=str(p))))
        out += [_check_one(f, defaults) for f in files]
    return out


def _check_one(path: Path, defaults: dict | None) -> CheckResult:
    r = CheckResult(str(path))
    try:
        routine = load_routine(path, defaults=defaults)
        plan = plan_for(routine)
    except AudiogenError as e:
        r.error = e
        return r
    r.title, r.length_ms, r.estimated = routine.title, plan.length_ms, plan.estimated
    for w in plan.warnings:
        est = " (estimated speech length)" if plan.estimated else ""
        r.warnings.append(f"step {w.chapter!r}: {w.message}{est}")
    if not routine.language.lower().startswith("en") and routine.phrases.is_default():
        r.warnings.append(
            f"language is {routine.language!r} but counts and reminders are English: set `phrases:` "
            "(halfway, remaining, counts, side_prompt)"
        )
    return r
