"""audiogen's Python API: everything the command line does, as functions (the CLI only calls these).

Paths may be given as `str` or `pathlib.Path` everywhere. Errors are `AudiogenError` subclasses that
carry a location and a hint (`str(e)` or `e.format()` is the message `audiogen` prints); a build does not
raise for a routine that fails, it reports it in that routine's `BuildResult`.

    import audiogen
    results = audiogen.build(["examples/facial-massage"], audiogen.BuildOptions(offline=True))
    plan = audiogen.plan_file("examples/facial-massage/01-morning-circulation.yaml")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from audiogen.routine.errors import AudiogenError

if TYPE_CHECKING:
    from audiogen.build.check import CheckResult
    from audiogen.build.jobs import BuildOptions, BuildResult
    from audiogen.build.noop import UnchangedResult
    from audiogen.build.say import Said
    from audiogen.edit.server import EditServer
    from audiogen.plan.planner import Plan, plan_routine
    from audiogen.routine.loader import load_routine, parse_routine
    from audiogen.routine.model import Routine, routine_schema
    from audiogen.voice.cache import PruneResult
    from audiogen.voice.catalogue import InstalledVoice

#: Names imported on first use, so `audiogen build` of an unchanged library loads no numpy, pydantic or
#: render stack (`unchanged` answers it from a stamp); the first use of any of them imports as before.
_LAZY = {
    "CheckResult": "audiogen.build.check", "BuildOptions": "audiogen.build.jobs", "BuildResult": "audiogen.build.jobs",
    "Plan": "audiogen.plan.planner", "plan_routine": "audiogen.plan.planner", "load_routine": "audiogen.routine.loader",
    "parse_routine": "audiogen.routine.loader", "Routine": "audiogen.routine.model",
    "routine_schema": "audiogen.routine.model",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'audiogen.api' has no attribute {name!r}")

__all__ = [
    "AudiogenError", "BuildOptions", "BuildResult", "CheckResult", "Plan", "Routine", "build", "build_routine",
    "available_voices", "check", "install_voice", "load_routine", "new_routine", "open_editor", "parse_routine",
    "plan_file", "plan_routine", "prune_cache", "remove_voice", "routine_schema", "say", "voices",
]

PathLike = str | Path


def _paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    return [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]


def build(paths: PathLike | Iterable[PathLike], options: BuildOptions | None = None) -> list[BuildResult]:
    """Build routine files and library folders into sessions (MP3, cover, lyrics, timeline; for a library
    also playlist, feed and page). One result per session; a routine that fails does not stop the others."""
    from audiogen.build.pipeline import build as _build

    return _build(_paths(paths), options)


def unchanged(paths: PathLike | Iterable[PathLike], options=None) -> list[UnchangedResult] | None:
    """The sessions of `paths` if nothing they depend on changed since their last clean build (each
    "skipped", as `build` would report them), else None: checked from file bytes and stats alone, fast
    enough for a 500-routine library, writing nothing. `options` is a `BuildOptions` or any object with its
    fields (force, dry_run, prune and scheduler always take the full build)."""
    from audiogen.build.noop import unchanged_results

    return unchanged_results(_paths(paths), options)


def build_routine(path: PathLike, out_dir: PathLike = "output", options: BuildOptions | None = None
                  ) -> BuildResult:
    """Build one routine file into `out_dir` (its folder's audiogen.yaml applies); the first session's result."""
    from audiogen.build.pipeline import build_routine as _build_routine

    return _build_routine(Path(path), Path(out_dir), options)


def check(paths: PathLike | Iterable[PathLike]) -> list[CheckResult]:
    """Validate routine files and library folders without synthesising: errors, warnings, planned lengths."""
    from audiogen.build.check import check_paths

    return check_paths(_paths(paths))


def plan_file(path: PathLike) -> Plan:
    """A routine file's timeline (events and chapters in ms) without synthesising: cached clips give exact
    speech lengths, the rest is estimated (`Plan.estimated`)."""
    from audiogen.build.check import plan_file as _plan_file

    return _plan_file(Path(path))


def voices(language: str = "en", offline: bool | None = None) -> dict:
    """Every engine (available here or not, and why), its languages and voices, and what `auto` picks for
    `language` (offline: as a build with `--offline` would see it). The same report as `audiogen voices --json`."""
    from audiogen.voice.report import engine_report

    return engine_report(language=language, offline=offline)


def available_voices(offline: bool | None = None) -> dict[str, list[dict]]:
    """The Piper voices the catalogue offers (`AUDIOGEN_PIPER_VOICES_URL`, default the official one), by language
    code (`de_DE`): name, quality, download size, whether installed."""
    from audiogen.voice.catalogue import available

    return available(offline=offline)


def install_voice(name: str, *, force: bool = False, offline: bool | None = None,
                  progress: Callable[[int, int], None] | None = None) -> InstalledVoice:
    """Download the Piper voice `name` (`de_DE-thorsten-medium`) from the catalogue, check it and install it
    into the user data folder, where `voice.name: NAME` finds it; `progress(done, total)` gets bytes."""
    from audiogen.voice.catalogue import install

    return install(name, force=force, offline=offline, progress=progress)


def remove_voice(name: str) -> Path:
    """Delete an installed Piper voice; the folder it was in."""
    from audiogen.voice.catalogue import remove

    return remove(name)


def say(text: str, *, routine: PathLike | None = None, voice: str | None = None, speed: float | None = None,
        language: str | None = None, out: PathLike | None = None, play: bool = False,
        offline: bool | None = None) -> Said:
    """Speak one phrase as a build would (the routine's voice and pronounce: rules when `routine` is given):
    `voice` is `engine` or `engine:name` (`espeak:en-gb`, `piper:de_DE-thorsten-medium`). Writes `out`
    (.wav/.mp3) or a temp WAV, and plays it when `play` and a player is on PATH (`Said.played`)."""
    from audiogen.build.say import say as _say

    engine, _, name = (voice or "").partition(":")
    return _say(text, routine_file=Path(routine) if routine else None, engine=engine or None,
                voice_name=name or None, speed=speed, language=language, out=Path(out) if out else None,
                play=play, offline=offline)


def new_routine(name: str, folder: PathLike = ".", *, force: bool = False, template: str = "routine") -> Path:
    """Write a commented routine `<slug>.yaml` titled `name` into `folder`; its path. An existing file is
    an error unless `force` replaces it. `template`: routine (general), breathing, stretch, massage, workout
    or meditation."""
    from audiogen.routine.scaffold import scaffold

    return scaffold(name, Path(folder), force=force, template=template)


def open_editor(path: PathLike, port: int = 0, *, offline: bool | None = None,
                log: Callable[[str], None] | None = None) -> EditServer:
    """`audiogen edit`: a local editor server for a routine file or library folder, bound to 127.0.0.1 but
    not yet serving: call `serve_forever()`, open its `url` (it carries the session's token), and
    `server_close()` at the end."""
    from audiogen.edit.server import open_editor as _open

    return _open(path, port, offline=offline, log=log)


def prune_cache(max_size: str | int, cache_dir: PathLike | None = None) -> PruneResult:
    """Remove the least recently used clips until the clip cache holds at most `max_size` (bytes, or a size
    like "500MB"); a clip a running build uses is kept. Returns a `voice.cache.PruneResult`."""
    from audiogen.voice.cache import ClipCache, parse_size

    limit = max_size if isinstance(max_size, int) else parse_size(max_size)
    return ClipCache(cache_dir).prune(limit)
