"""What a build is asked (BuildOptions), what it reports (BuildResult), and the sessions it plans:
one Job per routine x length variant, skipped when its fingerprint and files are unchanged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from audiogen._version import __version__
from audiogen.audio.session import cue_ms
from audiogen.plan.planner import Plan, plan_routine
from audiogen.plan.variants import fit_length, variant_label
from audiogen.routine.errors import AudiogenError
from audiogen.routine.library import OutputSettings, session_output
from audiogen.routine.loader import load_routine
from audiogen.routine.model import Routine
from audiogen.routine.slug import slugify
from audiogen.routine.soundref import is_builtin, resolve_path
from audiogen.voice.cache import CACHE_FORMAT, ClipCache
from audiogen.voice.narrate import Narration

#: Bump when mixing or levels change, so unchanged routines are rebuilt anyway.
RENDER_FORMAT = 8


@dataclass
class BuildResult:
    """What happened to one session (one routine, or one length variant of it)."""

    source: str
    status: str  # built | skipped | failed | planned
    title: str | None = None
    slug: str | None = None
    variant: str | None = None
    mp3: Path | None = None
    length_ms: int | None = None
    engine: str | None = None
    voice: str | None = None
    loudness: float | None = None  # LUFS as the target measures it (the speech, in speech mode)
    programme_loudness: float | None = None  # integrated LUFS of the whole mix
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: AudiogenError | None = None
    #: Clips of this routine synthesised by this build; made by this build for an earlier routine
    #: (`shared`); already in the clip cache before the build (`cache_hits`).
    synthesized: int = 0
    cache_hits: int = 0
    shared: int = 0
    #: `length_ms` is an estimate (a dry run plans with estimated speech lengths).
    estimated: bool = False
    #: What each stage did, for `build -v`: engine and clips, gains, files written.
    details: list[str] = field(default_factory=list)


@dataclass
class BuildOptions:
    """How to build: every field is optional and mirrors an `audiogen build` option."""

    #: Output folder; overrides the library's `output.dir` (and `./output` for a routine file).
    out_dir: str | Path | None = None
    #: Narrate every routine with this engine (`auto`, `gtts`, `piper`, `espeak`).
    engine: str | None = None
    #: Never contact the network (None: `AUDIOGEN_OFFLINE`).
    offline: bool | None = None
    #: Speech longer than its step is an error, not a warning.
    strict: bool = False
    #: Rebuild unchanged sessions too (from the clip cache).
    force: bool = False
    #: Plan every session; synthesise and write nothing.
    dry_run: bool = False
    #: Remove outputs whose routine was deleted.
    prune: bool = False
    #: Sessions rendered at once (default: the cores).
    jobs: int | None = None
    #: Absolute URL the output folder is published at (for the feed).
    base_url: str | None = None
    #: A Dask scheduler address, or `local:N` (overrides `output.scheduler`).
    scheduler: str | None = None
    #: The clip cache, or its folder (default: `AUDIOGEN_CACHE_DIR` or the user cache folder).
    cache: ClipCache | str | Path | None = None
    #: Called with each note (which engine narrated and why, pruned files).
    notify: Callable[[str], None] | None = None
    #: Called with progress events: ("batch" | "narrate" | "clip" | "narrated" | "session", details). "batch"
    #: comes when several routines' new phrases start synthesising together. "narrated" comes
    #: when a routine's clips are all made: its counts ("synthesized", "shared", "cached") or its "error".
    progress: Progress | None = None

    def __post_init__(self) -> None:
        if self.out_dir is not None:
            self.out_dir = Path(self.out_dir)
        if self.cache is not None and not isinstance(self.cache, ClipCache):
            self.cache = ClipCache(self.cache)


Progress = Callable[[str, dict], None]


@dataclass
class Job:
    """One session to produce."""

    source: Path
    routine: Routine
    slug: str
    title: str
    track: int | None
    track_total: int | None
    target_ms: int | None
    fingerprint: str
    result: BuildResult
    narration: Narration | None = None


def plan_session(routine: Routine, narration: Narration, cues: dict,
                 target_ms: int | None = None) -> tuple[Routine, Plan]:
    """The session's plan from real clip lengths; with `target_ms`, the routine scaled to that length."""
    speech = narration.lengths.__getitem__
    if target_ms is None:
        return routine, plan_routine(routine, speech, cue_ms(cues))
    return fit_length(routine, target_ms, speech, cue_ms(cues))


def fingerprint(routine: Routine, settings: OutputSettings, engine_key: list[str], extra: dict) -> str:
    """Everything an output depends on; unchanged fingerprint + existing files = nothing to do."""
    files = {}
    refs = [routine.cue] if routine.cue else []
    if routine.background:
        refs.append(routine.background.track)
    for ref in refs:
        if not (is_builtin(ref, "cue") or is_builtin(ref, "ambience")):
            p = resolve_path(ref, routine.base_dir)
            if p.exists():
                st = p.stat()
                files[str(p)] = [st.st_size, st.st_mtime_ns]
    blob = json.dumps(
        [__version__, RENDER_FORMAT, CACHE_FORMAT, routine.model_dump(mode="json"), settings.audio_key(),
         engine_key, files, extra],
        sort_keys=True, ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def plan_jobs(files, config, options, narrator, manifest, out_dir, library):
    """Load every routine and list its sessions; unchanged ones are marked skipped."""
    jobs: list[Job] = []
    failed: list[BuildResult] = []
    used: dict[str, Path] = {}  # slug -> the routine file that has it
    variants = [None] + list(config.variants.lengths) if config.variants else [None]
    n = len(files)
    for i, path in enumerate(files, start=1):
        try:
            routine = load_routine(path, defaults=config.defaults or None)
        except AudiogenError as e:
            failed.append(BuildResult(source=str(path), status="failed", error=e))
            continue
        base = slugify(routine.title)
        slug, k = base, 2
        while slug in used:
            slug, k = f"{base}-{k}", k + 1
        used[slug] = path
        clash = (f"its file name {base!r} is already {used[base].name}'s, so this session is {slug!r}: give "
                 "one of them another title" if slug != base else None)
        engine_key = narrator.candidates(routine) + [f"offline={narrator.offline}"]
        for target in variants:
            label = variant_label(target) if target else None
            vslug = f"{slug}-{label}" if label else slug
            title = f"{routine.title} ({label.replace('m', ' min') if label.endswith('m') else label})" \
                if label else routine.title
            fp = fingerprint(routine, settings=session_output(config.output, routine), engine_key=engine_key,
                             extra={"album": config.album, "author": config.author, "track": i if library else None,
                                    "target": target, "n": n if library else None})
            result = BuildResult(source=str(path), status="failed", title=title, slug=vslug, variant=label,
                                 mp3=out_dir / f"{vslug}.mp3", warnings=[clash] if clash else [])
            fmts = config.output.format
            if list(fmts) != ["mp3"]:  # the file offered first is the first format's
                result.mp3 = out_dir / f"{vslug}.{fmts[0]}"
            entry = manifest.get(vslug) or {}
            if (not options.force and entry.get("fingerprint") == fp and result.mp3.exists()
                    and all((out_dir / f"{vslug}.{f}").exists() for f in fmts)
                    and (config.output.split == "none" or (out_dir / vslug / f"{vslug}.m3u8").exists())
                    and (out_dir / f"{vslug}.json").exists()):
                result.status = "skipped"
                result.length_ms, result.engine, result.voice, result.loudness = (
                    entry.get("length_ms"), entry.get("engine"), entry.get("voice"), entry.get("loudness"))
                result.programme_loudness = entry.get("programme_loudness")
            jobs.append(Job(path, routine, vslug, title, i if library and n > 1 else None,
                             n if library and n > 1 else None, target, fp, result))
    return jobs, failed
