"""`check` and `plan`: validate and lay out routines without any engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audiogen.plan.planner import Plan, estimate_speech_ms, plan_routine, spoken_texts
from audiogen.routine.errors import AudiogenError, EngineUnavailable, RoutineError
from audiogen.routine.library import config_for, routine_files
from audiogen.routine.loader import load_routine
from audiogen.routine.model import Routine
from audiogen.routine.phrasebook import phrases_warning
from audiogen.routine.voicing import from_label, routine_in, split


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


def plan_for(routine: Routine, cache=None, target_ms: int | None = None) -> Plan:
    """Plan with the real lengths of cached clips where there are any, estimates for the rest; with
    `target_ms`, the plan of the routine scaled to that length (a length variant)."""
    from audiogen.voice.cache import ClipCache
    from audiogen.voice.narrate import Narrator

    texts = spoken_texts(routine)
    known = Narrator(cache or ClipCache(), offline=True).cached_lengths(routine, texts)
    estimated = len(known) < len(texts)
    def speech(t: str) -> int:
        voice, text = split(t)
        return known.get(t) or estimate_speech_ms(text, from_label(voice).speed if voice else routine.voice.speed)

    if target_ms is not None:
        from audiogen.plan.variants import fit_length

        plan = fit_length(routine, target_ms, speech, _cue_ms(routine))[1]
        plan.estimated = estimated
        return plan
    return plan_routine(routine, speech, _cue_ms(routine), estimated=estimated)


def cover_problem(routine: Routine, source: str | Path) -> RoutineError | None:
    """Why the routine's `cover:` cannot be used (missing, unreadable, not a PNG or JPEG), or None."""
    if not routine.cover:
        return None
    from PIL import Image, UnidentifiedImageError

    from audiogen.routine.soundref import resolve_path

    src = resolve_path(routine.cover, routine.base_dir)
    why = None
    try:
        with Image.open(src) as img:
            fmt = img.format
            img.verify()
        if fmt not in ("PNG", "JPEG"):
            why = f"cover image {src} is a {fmt} image, not a PNG or JPEG"
    except FileNotFoundError:
        why = f"cover image {src} does not exist"
    except UnidentifiedImageError:
        why = f"cover image {src} is not a readable image (PNG or JPEG)"
    except OSError as e:
        why = f"cannot read cover image {src}: {e.strerror or e}"
    except Exception as e:  # noqa: BLE001 - Pillow reports a damaged image in many ways
        why = f"cover image {src} is damaged: {e}"
    if why is None:
        return None
    return RoutineError(why, path=str(source), field="cover",
                        hint="a PNG or JPEG file; a relative path starts at the routine's folder")


def engine_problem(routine: Routine, source: str | Path, narrators) -> AudiogenError | None:
    """Why no engine can narrate the routine (a language none speaks, an engine not installed), found
    without synthesising: each narrator in turn is asked (`Narrator.choose`); None when one can."""
    error: AudiogenError | None = None
    for narrator in narrators:
        try:
            narrator.choose(routine)
            return None
        except EngineUnavailable as e:
            error = e
    if error is not None and error.path is None:
        error.path = str(source)
    return error


def problems_before_synthesis(routine: Routine, source: str | Path, narrators) -> AudiogenError | None:
    """What would fail this routine's build that is knowable before any synthesis (`check` and `build`
    both ask): the cover image, and whether any engine can narrate it (in each of its voices)."""
    narrators = list(narrators)
    problem = cover_problem(routine, source) or engine_problem(routine, source, narrators)
    for label in [] if problem else other_voices(routine):  # a step's or the phrases' own voice
        problem = engine_problem(routine_in(routine, label), source, narrators)
        if problem is not None:
            problem.message = f"{problem.message} (the voice {label} of some steps or phrases)"
            return problem
    return problem


def other_voices(routine: Routine) -> list[str]:
    """The labels of the voices other than the routine's that speak in its session."""
    return [v for v in dict.fromkeys(split(t)[0] for t in spoken_texts(routine)) if v is not None]


def _check_narrators(routine: Routine):
    """Offline first (no network is ever contacted by choosing); gTTS as a build here would see it."""
    from audiogen.voice.cache import ClipCache
    from audiogen.voice.narrate import Narrator

    cache = ClipCache()
    yield Narrator(cache, offline=True)
    as_built = Narrator(cache)
    if not as_built.offline and "gtts" in as_built.candidates(routine):
        yield as_built


def plan_file(path: str | Path) -> Plan:
    """The timeline of one routine file (its folder's audiogen.yaml defaults apply), without synthesis.
    Raises what `check` reports as the file's error (a missing cover, a language no engine speaks)."""
    routine = load_routine(path, defaults=config_for(path).defaults or None)
    plan = plan_for(routine)
    problem = problems_before_synthesis(routine, path, _check_narrators(routine))
    if problem is not None:
        raise problem
    return plan


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
        problem = problems_before_synthesis(routine, path, _check_narrators(routine))
    except AudiogenError as e:
        r.error = e
        return r
    if problem is not None:
        r.title, r.error = routine.title, problem
        return r
    r.title, r.length_ms, r.estimated = routine.title, plan.length_ms, plan.estimated
    from audiogen.audio.checks import overruns

    for f in overruns(plan):  # worded as `build` words it (audio.checks), the time estimated without clips
        est = " (estimated speech length)" if plan.estimated else ""
        r.warnings.append(f.format() + est)
    english = phrases_warning(routine)
    if english:
        r.warnings.append(english)
    return r
