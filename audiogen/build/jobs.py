"""What a build is asked (BuildOptions), what it reports (BuildResult), and the sessions it plans:
one Job per routine x length variant, skipped when its fingerprints and files are unchanged.

Two fingerprints per session: the audio's (what the samples depend on: the routine's timed content, the
resolved clips, sounds, loudness and encoding settings, the render format) and the tags' (title, album,
artist, track n/total, cover, ID3 version). Only a changed audio fingerprint re-renders; a changed tag
fingerprint alone rewrites the MP3's tags in place (`retag`), and the indexes are rewritten every build
(unchanged ones keep their bytes).
"""

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
from audiogen.routine.phrasebook import phrases_warning
from audiogen.routine.slug import slugify
from audiogen.routine.soundref import is_builtin, resolve_path
from audiogen.voice.cache import CACHE_FORMAT, ClipCache
from audiogen.voice.narrate import Narration

#: Bump when mixing or levels change, so unchanged routines are rebuilt anyway.
RENDER_FORMAT = 8
#: Bump when what goes into a session's tags or side files changes, so unchanged sessions are retagged.
TAG_FORMAT = 1
#: Routine fields that never reach the samples: changing them retags (`voice.engine` chooses the clips,
#: which the audio fingerprint holds by their cache keys).
TAG_ONLY_FIELDS: dict = {"title": True, "description": True, "artist": True, "genre": True, "cover": True,
                         "voice": {"engine"}}


@dataclass
class BuildResult:
    """What happened to one session (one routine, or one length variant of it)."""

    source: str
    status: str  # built | retagged | skipped | failed | planned
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
    #: The sound checks that failed (audio.checks.Finding.to_dict(): check, chapter, at_ms, time, message,
    #: hint, value); each is among `warnings` too. `limiter_db`: the limiter's deepest cut.
    checks: list[dict] = field(default_factory=list)
    limiter_db: float | None = None

    def to_dict(self) -> dict:
        """The result as JSON-ready data (`audiogen build --json`)."""
        from audiogen.build.noop import result_dict

        return result_dict(self)


@dataclass
class BuildOptions:
    """How to build: every field is optional and mirrors an `audiogen build` option."""

    #: Output folder; overrides the library's `output.dir` (and `./output` for a routine file).
    out_dir: str | Path | None = None
    #: Narrate every routine with this engine (`auto`, `gtts`, `piper`, `espeak`).
    engine: str | None = None
    #: Never contact the network (None: `AUDIOGEN_OFFLINE`).
    offline: bool | None = None
    #: Speech longer than its step, and any sound check that fails (audio.checks), is an error, not a warning.
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
    #: "loaded" comes when a library build parsed routine files: how many ("parsed"), and how many it took
    #: unchanged from the last build instead ("reused").
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
    #: What the tags and side files depend on (see module docstring).
    tag_fingerprint: str = ""
    #: The engines tried and the offline flag: when unchanged, the clips are the manifest's.
    choice: list[str] = field(default_factory=list)
    #: The manifest entry of the MP3 in place when its audio fingerprint is this job's (None: render).
    previous: dict | None = None
    #: Only the tags changed: rewrite them in the MP3 in place, render nothing.
    retag: bool = False
    #: When the session was first built (its feed date, its tags' year), None for a new one.
    first_built: int | None = None
    #: Skipped, but its manifest entry changed (the engine choice that gave the same clips): write it.
    refreshed: bool = False


def plan_session(routine: Routine, narration: Narration, cues: dict,
                 target_ms: int | None = None) -> tuple[Routine, Plan]:
    """The session's plan from real clip lengths; with `target_ms`, the routine scaled to that length."""
    speech = narration.lengths.__getitem__
    if target_ms is None:
        return routine, plan_routine(routine, speech, cue_ms(cues))
    return fit_length(routine, target_ms, speech, cue_ms(cues))


def fingerprint(routine: Routine, settings: OutputSettings, extra: dict, dumped: str | None = None) -> str:
    """Everything a session's audio depends on but its clips (`clips_fingerprint`); unchanged fingerprint,
    unchanged clips and existing files = nothing to render. `dumped`: `audio_dump(routine)`, when known."""
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
    # the JSON of the list, element by element (json.dumps joins a list's items with ", "), so a routine's
    # dump is serialised once for all its variants, or kept from the last build (build/memo.py)
    parts = [__version__, RENDER_FORMAT, CACHE_FORMAT, None, settings.audio_key(), files, extra]
    texts = [json.dumps(x, sort_keys=True, ensure_ascii=False) for x in parts]
    texts[3] = dumped if dumped is not None else audio_dump(routine)
    return hashlib.sha256(("[" + ", ".join(texts) + "]").encode()).hexdigest()


def audio_dump(routine: Routine) -> str:
    """The routine's fields that reach the samples, as the JSON its audio fingerprint hashes."""
    return json.dumps(routine.model_dump(mode="json", exclude=TAG_ONLY_FIELDS), sort_keys=True, ensure_ascii=False)


def tag_fingerprint(routine: Routine, settings: OutputSettings, config, title: str, track: int | None,
                    total: int | None) -> str:
    """Everything a session's tags and side files (cover, thumbnail, lyrics, transcripts, sidecar) depend on
    besides its audio."""
    cover = None
    if routine.cover:
        p = resolve_path(routine.cover, routine.base_dir)
        st = p.stat() if p.exists() else None
        cover = [str(p), st.st_size if st else None, st.st_mtime_ns if st else None]
    blob = json.dumps(
        [__version__, TAG_FORMAT, title, routine.description, routine.artist, routine.genre, cover,
         config.album, config.author, track, total, getattr(settings, "id3", None)],
        sort_keys=True, ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def clips_fingerprint(keys: dict[str, str]) -> str:
    """The clips a narration uses (text -> cache key): same keys, same samples."""
    return hashlib.sha256(json.dumps(sorted(keys.items()), ensure_ascii=False).encode()).hexdigest()


def predict_clips(narrator, routine: Routine) -> str | None:
    """The clips fingerprint the narrator's engine choice gives `routine` now, without synthesising or
    contacting the network: the first engine that can narrate it, as `narrate` picks. None when no engine
    can (the narration then reports why)."""
    from audiogen.plan.planner import spoken_texts

    try:
        for _, got in narrator.options(routine, on_error="stop"):
            if isinstance(got, str):
                continue
            engine, voice_id, req = got
            return clips_fingerprint({t: narrator.key(engine, voice_id, req, t) for t in spoken_texts(routine)})
    except AudiogenError:
        return None
    return None


def plan_jobs(files, config, options, narrator, manifest, out_dir, library):
    """Load every routine and list its sessions; unchanged ones are marked skipped."""
    jobs: list[Job] = []
    failed: list[BuildResult] = []
    used: dict[str, Path] = {}  # slug -> the routine file that has it
    variants = [None] + list(config.variants.lengths) if config.variants else [None]
    n = len(files)
    memo = _memo(files, config, narrator) if library else None  # unchanged files are not parsed again
    present = _present(out_dir)  # one listing of the output folder, not three stats per session
    for i, path in enumerate(files, start=1):
        try:
            routine = memo.load(path) if memo else load_routine(path, defaults=config.defaults or None)
        except AudiogenError as e:
            failed.append(BuildResult(source=str(path), status="failed", error=e))
            continue
        derived = memo.derived if memo is not None else (lambda r, name, compute: compute(r))
        base = derived(routine, "slug", lambda r: slugify(r.title))
        dumped = derived(routine, "audio", audio_dump)
        slug, k = base, 2
        while slug in used:
            slug, k = f"{base}-{k}", k + 1
        used[slug] = path
        clash = (f"its file name {base!r} is already {used[base].name}'s, so this session is {slug!r}: give "
                 "one of them another title" if slug != base else None)
        choice = narrator.candidates(routine) + [f"offline={narrator.offline}"]
        predicted: list[str | None] = []  # computed once per routine, when the choice changed
        settings = session_output(config.output, routine)
        track, total = (i, n) if library and n > 1 else (None, None)
        for target in variants:
            label = variant_label(target) if target else None
            vslug = f"{slug}-{label}" if label else slug
            title = f"{routine.title} ({label.replace('m', ' min') if label.endswith('m') else label})" \
                if label else routine.title
            fp = fingerprint(routine, settings=settings, extra={"target": target}, dumped=dumped)
            tfp = tag_fingerprint(routine, settings, config, title, track, total)
            result = BuildResult(source=str(path), status="failed", title=title, slug=vslug, variant=label,
                                 mp3=out_dir / f"{vslug}.mp3", warnings=[clash] if clash else [])
            if english := phrases_warning(routine):  # every build says so, skipped sessions too
                result.warnings.append(english)
            fmts = config.output.format
            if list(fmts) != ["mp3"]:  # the file offered first is the first format's
                result.mp3 = out_dir / f"{vslug}.{fmts[0]}"
            entry = manifest.get(vslug) or {}
            job = Job(path, routine, vslug, title, track, total, target, fp, result, tag_fingerprint=tfp,
                      choice=choice, first_built=entry.get("first_built"))
            if (not options.force and entry.get("fingerprint") == fp and present(result.mp3.name)
                    and all(present(f"{vslug}.{f}") for f in fmts)
                    and (config.output.split == "none" or (out_dir / vslug / f"{vslug}.m3u8").exists())
                    and present(f"{vslug}.json")):
                job.previous = entry  # the audio may be the same: known now, or once narrated
                same = entry.get("choice") == choice
                if not same and entry.get("clips"):
                    if not predicted:
                        predicted.append(predict_clips(narrator, routine))
                    same = predicted[0] == entry["clips"]
                if same:
                    result.length_ms, result.engine, result.voice, result.loudness = (
                        entry.get("length_ms"), entry.get("engine"), entry.get("voice"), entry.get("loudness"))
                    result.programme_loudness = entry.get("programme_loudness")
                    skipped_checks(result, entry.get("checks") or [], options.strict)
                    if result.error is not None:  # --strict, on what its checks found when it was built
                        pass
                    elif entry.get("tags") == tfp:
                        result.status = "skipped"
                    else:
                        job.retag = True
            jobs.append(job)
    if memo is not None:
        memo.save()
        if options.progress and memo.parsed:
            options.progress("loaded", {"parsed": memo.parsed, "reused": memo.reused})
    return jobs, failed


def _present(out_dir: Path) -> Callable[[str], bool]:
    """Whether `out_dir / name` exists (as `Path.exists` says: a symlink only when its target does), from one
    listing of the folder."""
    import os

    names: set[str] = set()
    try:
        with os.scandir(out_dir) as it:
            for e in it:
                if not e.is_symlink() or os.path.exists(e.path):
                    names.add(e.name)
    except OSError:
        pass
    return names.__contains__


def _memo(files: list[Path], config, narrator):
    """The library's kept routines (build/memo.py), in the clip cache folder beside the no-op stamps."""
    import os

    from audiogen.build.memo import RoutineMemo

    folder = Path(os.path.commonpath([os.path.abspath(f) for f in files])) if files else Path(".")
    return RoutineMemo(folder, config.defaults or None, narrator.cache.root)


def skipped_checks(result: BuildResult, checks: list[dict], strict: bool) -> None:
    """An unchanged session keeps what its checks found when it was built; --strict fails it on them."""
    from audiogen.audio.checks import Finding
    from audiogen.routine.errors import RoutineError

    found = [Finding(**{k: c.get(k) for k in ("check", "chapter", "at_ms", "message", "hint", "value")})
             for c in checks if isinstance(c, dict)]
    result.checks = [f.to_dict() for f in found]
    result.warnings += [f.format() for f in found]
    if strict and found:
        result.status = "failed"
        result.error = RoutineError(f"{len(found)} sound check(s) failed (--strict) when it was built: "
                                    + "; ".join(f.format() for f in found), path=result.source,
                                    hint="fix what each one says, or build without --strict")
