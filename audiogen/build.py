"""Building sessions: load -> narrate -> plan -> render -> tag, for routine files and library folders.

A build runs in two stages. Stage 1 narrates every routine that needs work, in order, filling the
shared clip cache (a phrase used across the library is synthesised once). Stage 2 renders every
session (routine x length variant) on a thread pool: the heavy part, MP3 encoding, runs in ffmpeg
processes and the numpy mixing releases the GIL, so threads use every core without nesting pools.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from audiogen._version import __version__
from audiogen.audio.session import CachedClips, SessionAudio, cue_ms, cue_samples, load_bed, render_audio
from audiogen.plan.planner import Plan, plan_routine, spoken_texts
from audiogen.plan.variants import fit_length, variant_label
from audiogen.publish.tags import ChapterMark, TagInfo, write_tags
from audiogen.routine.atomic import atomic_path, sweep_orphans, write_text
from audiogen.routine.errors import AudiogenError, OutputError, RoutineError
from audiogen.routine.library import LibraryConfig, OutputSettings, load_library_config, routine_files
from audiogen.routine.loader import load_routine
from audiogen.routine.model import Routine
from audiogen.routine.slug import slugify
from audiogen.routine.soundref import is_builtin, resolve_path
from audiogen.voice.cache import CACHE_FORMAT, ClipCache
from audiogen.voice.narrate import Narration, Narrator

MANIFEST = ".audiogen-manifest.json"
#: Bump when mixing or levels change, so unchanged routines are rebuilt anyway.
RENDER_FORMAT = 7
Progress = Callable[[str, dict], None]


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
    loudness: float | None = None  # integrated LUFS of the written mix
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: AudiogenError | None = None
    synthesized: int = 0
    cache_hits: int = 0


@dataclass
class BuildOptions:
    out_dir: Path | None = None  # overrides the library's output.dir / ./output
    engine: str | None = None
    offline: bool | None = None
    strict: bool = False
    force: bool = False
    dry_run: bool = False
    prune: bool = False
    jobs: int | None = None  # sessions rendered at once (default: the cores)
    base_url: str | None = None
    scheduler: str | None = None  # a Dask scheduler address, or local:N (overrides output.scheduler)
    cache: ClipCache | None = None
    notify: Callable[[str], None] | None = None
    progress: Progress | None = None


@dataclass
class _Job:
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


# -- one session ----------------------------------------------------------------------------------
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
        [__version__, RENDER_FORMAT, CACHE_FORMAT, routine.model_dump(mode="json"), settings.model_dump(mode="json"),
         engine_key, files, extra],
        sort_keys=True, ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _load_manifest(out_dir: Path) -> dict:
    try:
        data = json.loads((out_dir / MANIFEST).read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (FileNotFoundError, ValueError, OSError):
        return {}


# -- building -------------------------------------------------------------------------------------
def build(paths: list[str | Path], options: BuildOptions | None = None) -> list[BuildResult]:
    """Build routine files and library folders; one failure never stops the others."""
    options = options or BuildOptions()
    cache = options.cache or ClipCache()
    narrator = Narrator(cache, engine=options.engine, offline=options.offline, notify=options.notify)
    results: list[BuildResult] = []
    clients: dict[str, object] = {}  # scheduler address -> Dask client, connected before any work
    try:
        for raw in paths:
            results += _build_path(Path(raw), options, narrator, clients)
    finally:
        narrator.close()  # stop the synthesis worker processes (after errors and Ctrl-C too)
        if clients:
            from audiogen.cluster import close

            for client in clients.values():
                close(client)
    return results


def _build_path(p: Path, options: BuildOptions, narrator: Narrator, clients: dict) -> list[BuildResult]:
    """One command-line path: a library folder, or a routine file (its folder's audiogen.yaml applies)."""
    library = p.is_dir()
    base = p if library else p.parent
    try:
        config = load_library_config(base) if base.is_dir() else LibraryConfig()
    except AudiogenError as e:
        return [BuildResult(source=str(p), status="failed", error=e)]
    if library:
        files = routine_files(p)
        if not files:
            return [BuildResult(source=str(p), status="failed",
                                error=RoutineError("no routine files (*.yaml) in this folder", path=str(p)))]
        out_dir = options.out_dir or (p / config.output.dir)
    else:  # a single routine file is written to ./output unless -o says otherwise
        files, out_dir = [p], options.out_dir or Path("output")
    client = None
    scheduler = options.scheduler or config.output.scheduler
    if scheduler and not options.dry_run:
        if scheduler not in clients:
            from audiogen.cluster import connect

            clients[scheduler] = connect(scheduler)  # an unreachable scheduler fails here, before any work
        client = clients[scheduler]
    return build_group(files, out_dir, config, options, narrator, library=library, client=client)


def build_group(files: list[Path], out_dir: Path, config: LibraryConfig, options: BuildOptions,
                narrator: Narrator, *, library: bool, client=None) -> list[BuildResult]:
    """Build routine files that share one output folder and one library configuration."""
    progress = options.progress or (lambda kind, info: None)
    settings = config.output
    sweep_orphans(out_dir)  # temp files of a build that was killed
    manifest = _load_manifest(out_dir)
    jobs, failed = _plan_jobs(files, config, options, narrator, manifest, out_dir, library)
    todo = [j for j in jobs if j.result.status != "skipped"]

    if client is not None and todo:
        _build_on_cluster(client, todo, settings, config, options, narrator, manifest, progress)
        failed += _wrap_up(out_dir, manifest, jobs, config, options, library, True)
        return failed + [j.result for j in jobs]

    # stage 1: narrate each routine that needs work (once for all its variants)
    narrations: dict[Path, Narration | AudiogenError] = {}
    routines_todo = list(dict.fromkeys(j.source for j in todo))
    first = {src: next(j for j in todo if j.source == src) for src in routines_todo}
    texts_of = {src: spoken_texts(job.routine) for src, job in first.items()}
    if len(routines_todo) > 1 and not options.dry_run:
        # every routine's missing clips in one batch, so the synthesis workers stay busy across routines
        try:
            narrator.prefetch([(first[src].routine, texts_of[src]) for src in routines_todo],
                              on_clip=lambda t, hit: progress("clip", {"hit": hit}))
        except AudiogenError:
            pass  # best effort: narrate() below reports errors per routine as before
    for i, src in enumerate(routines_todo, start=1):
        job = first[src]
        texts = texts_of[src]
        progress("narrate", {"title": job.routine.title, "index": i, "total": len(routines_todo),
                             "clips": len(texts)})
        if options.dry_run:
            continue
        try:
            narrations[src] = narrator.narrate(job.routine, texts,
                                               on_clip=lambda t, hit: progress("clip", {"hit": hit}))
        except AudiogenError as e:
            narrations[src] = e

    # stage 2: plan and render every session
    lock = threading.Lock()
    done = [0]
    cancel = threading.Event()  # Ctrl-C: queued sessions do not start, running ones stop between blocks

    def run(job: _Job) -> None:
        if cancel.is_set():
            return
        narration = narrations.get(job.source)
        if isinstance(narration, AudiogenError):
            job.result.status, job.result.error = "failed", narration
        elif options.dry_run:
            job.result.status = "planned"
        else:
            _render_job(job, narration, settings, config, narrator.cache, options, manifest, lock, cancel)
        if cancel.is_set():  # interrupted meanwhile: the one line that follows says so
            return
        with lock:
            done[0] += 1
            progress("session", {"done": done[0], "total": len(todo), "result": job.result})

    workers = max(1, min(options.jobs or os.cpu_count() or 1, len(todo) or 1))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render") if workers > 1 else None
    try:
        if pool is None:
            for job in todo:
                run(job)
        else:
            for f in as_completed([pool.submit(run, j) for j in todo]):
                f.result()
    except BaseException:
        cancel.set()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)  # running sessions stop at their next block
        raise
    if pool is not None:
        pool.shutdown()

    if not options.dry_run:
        failed += _wrap_up(out_dir, manifest, jobs, config, options, library, bool(todo))
    return failed + [j.result for j in jobs]


def _wrap_up(out_dir: Path, manifest: dict, jobs: list[_Job], config: LibraryConfig, options: BuildOptions,
             library: bool, changed: bool) -> list[BuildResult]:
    """Manifest, then (for a library) playlist, feed and page over every built session, skipped ones too.

    Indexes are written under the manifest lock, so two builds at once cannot publish a stale list.
    """
    try:
        _finish(out_dir, manifest, jobs, config, options, library, changed)
        if library:
            from audiogen.publish.indexes import write_indexes

            with _locked(out_dir / (MANIFEST + ".lock")):
                write_indexes(out_dir, config.album, config.author, options.base_url)
    except AudiogenError as e:  # a full disk, say: reported with the sessions, not instead of them
        return [BuildResult(source=str(out_dir), status="failed", error=e)]
    return []


def _build_on_cluster(client, todo: list[_Job], settings: OutputSettings, config: LibraryConfig,
                      options: BuildOptions, narrator: Narrator, manifest: dict, progress: Progress) -> None:
    """The same two stages as a local build, as Dask tasks (clips, then sessions), overlapping: a
    routine's sessions render as soon as its clips are made."""
    from audiogen.cluster import build_on_cluster

    lock = threading.Lock()

    def fail(job: _Job, error: AudiogenError | None) -> None:
        job.result.status = "failed"
        job.result.error = error or RoutineError("not narrated", path=str(job.source))

    build_on_cluster(
        client, narrator, todo,
        prepare=lambda job, narration: _prepare_job(job, narration, settings, config, options),
        complete=lambda job, prep, narration, lufs: _complete_job(job, prep, narration, lufs, config, manifest,
                                                                  lock),
        fail=fail, progress=progress,
    )


def _plan_jobs(files, config, options, narrator, manifest, out_dir, library):
    """Load every routine and list its sessions; unchanged ones are marked skipped."""
    jobs: list[_Job] = []
    failed: list[BuildResult] = []
    used: set[str] = set()
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
        used.add(slug)
        engine_key = narrator.candidates(routine) + [f"offline={narrator.offline}"]
        for target in variants:
            label = variant_label(target) if target else None
            vslug = f"{slug}-{label}" if label else slug
            title = f"{routine.title} ({label.replace('m', ' min') if label.endswith('m') else label})" \
                if label else routine.title
            fp = fingerprint(routine, settings=config.output, engine_key=engine_key,
                             extra={"album": config.album, "author": config.author, "track": i if library else None,
                                    "target": target, "n": n if library else None, "base_url": options.base_url})
            result = BuildResult(source=str(path), status="failed", title=title, slug=vslug, variant=label,
                                 mp3=out_dir / f"{vslug}.mp3")
            entry = manifest.get(vslug) or {}
            if (not options.force and entry.get("fingerprint") == fp and result.mp3.exists()
                    and (out_dir / f"{vslug}.json").exists()):
                result.status = "skipped"
                result.length_ms, result.engine, result.voice, result.loudness = (
                    entry.get("length_ms"), entry.get("engine"), entry.get("voice"), entry.get("loudness"))
            jobs.append(_Job(path, routine, vslug, title, i if library and n > 1 else None,
                             n if library and n > 1 else None, target, fp, result))
    return jobs, failed


@dataclass
class _Prepared:
    """A session planned on the client, ready to render here or on a cluster worker."""

    routine: Routine
    plan: Plan
    audio: SessionAudio  # clips not attached yet
    tags: TagInfo
    files: dict[str, bytes]  # cover and lyrics, written beside the MP3 once it is in place

    def tag(self, mp3: Path) -> None:
        """Title, album, cover and a chapter per step into the rendered (not yet published) MP3."""
        write_tags(mp3, self.tags, [ChapterMark(c.title, c.start_ms, c.end_ms) for c in self.plan.chapters])

    @property
    def extras(self) -> dict:
        names = {Path(n).suffix: n for n in self.files}
        return {"cover": names.get(".png") or names.get(".jpg"), "lrc": names.get(".lrc")}


def _prepare_job(job: _Job, narration: Narration, settings: OutputSettings, config: LibraryConfig,
                 options: BuildOptions) -> _Prepared:
    """Plan the session, check it, and write its cover and lyrics (on the client)."""
    r = job.result
    routine = job.routine
    r.engine, r.voice = narration.engine, narration.voice
    r.synthesized, r.cache_hits, r.notes = narration.synthesized, narration.cache_hits, list(narration.notes)
    cues = cue_samples(routine)
    routine, plan = plan_session(routine, narration, cues, job.target_ms)
    r.length_ms = plan.length_ms
    r.warnings += [f"step {w.chapter!r}: {w.message}" for w in plan.warnings]
    if options.strict and plan.warnings:
        raise RoutineError(
            f"{len(plan.warnings)} step(s) longer than planned: " + "; ".join(r.warnings),
            path=str(job.source), hint="shorten the text or lengthen the duration (or build without --strict)",
        )
    tags = TagInfo(title=job.title, artist=routine.artist or config.author or "audiogen", album=config.album,
                   track=job.track, track_total=job.track_total, genre=routine.genre or "Guided session",
                   year=str(datetime.date.today().year), comment=routine.description)
    bed = load_bed(routine)  # a background that does not decode fails the session before anything is written
    files = _side_files(job, routine, plan, tags)
    return _Prepared(routine, plan, SessionAudio(plan, None, cues, bed, settings), tags, files)


def _complete_job(job: _Job, prep: _Prepared, narration: Narration, lufs: float | None, config: LibraryConfig,
                  manifest: dict, lock: threading.Lock) -> None:
    """After the MP3 is in place: the loudness check, the sidecar JSON and the manifest entry."""
    r, plan, settings = job.result, prep.plan, prep.audio.settings
    r.loudness = lufs
    if settings.loudness is not None and lufs is not None and abs(lufs - settings.loudness) > 0.5:
        speech = sum(e.length_ms for e in plan.events if e.kind == "speech") / max(1, plan.length_ms)
        r.warnings.append(
            f"loudness {lufs:.1f} LUFS, not the {settings.loudness:g} LUFS target: speech fills only "
            f"{speech:.0%} of the session and the voice cannot get louder without distorting; a louder "
            "background.volume or a shorter session gets closer")
    try:
        _write_session_files(job, prep, narration, lufs, config)
    except BaseException:  # a session is all its files or none: no MP3 without its timeline
        for name in [r.mp3.name, f"{job.slug}.json", *prep.files]:
            (r.mp3.parent / name).unlink(missing_ok=True)
        raise
    with lock:
        manifest[job.slug] = {"fingerprint": job.fingerprint, "source": str(job.source.resolve()),
                              "length_ms": plan.length_ms, "engine": narration.engine,
                              "voice": narration.voice, "loudness": lufs}
    r.status = "built"


def _write_session_files(job: _Job, prep: _Prepared, narration: Narration, lufs: float | None,
                         config: LibraryConfig) -> None:
    from audiogen.routine.atomic import write_bytes

    r, plan, routine = job.result, prep.plan, prep.routine
    for name, data in prep.files.items():
        write_bytes(r.mp3.parent / name, data)
    timeline = plan.to_dict()
    timeline.update({
        "title": job.title, "slug": job.slug, "mp3": r.mp3.name, "description": routine.description,
        "album": config.album, "artist": prep.tags.artist, "track": job.track, "variant": r.variant,
        "engine": narration.engine, "voice": narration.voice, "language": routine.language,
        "loudness_lufs": lufs, "source": job.source.name, "audiogen": __version__, **prep.extras,
    })
    write_text(r.mp3.parent / f"{job.slug}.json", json.dumps(timeline, indent=1, ensure_ascii=False) + "\n")


def _render_job(job: _Job, narration: Narration, settings: OutputSettings, config: LibraryConfig,
                cache: ClipCache, options: BuildOptions, manifest: dict, lock: threading.Lock,
                cancel: threading.Event | None = None) -> None:
    """Plan, render and write one session on this machine."""
    try:
        prep = _prepare_job(job, narration, settings, config, options)
        prep.audio.clips = CachedClips(cache, narration.keys)
        with atomic_path(job.result.mp3) as tmp:
            lufs = render_audio(prep.audio, tmp, cancel)
            prep.tag(tmp)
        _complete_job(job, prep, narration, lufs, config, manifest, lock)
    except AudiogenError as e:
        job.result.status, job.result.error = "failed", e


def _side_files(job: _Job, routine: Routine, plan: Plan, tags) -> dict[str, bytes]:
    """Cover art (the routine's own image, or one drawn for it) and synced lyrics, as bytes by file name.

    The cover also goes into the MP3's tags, so it is made before rendering; the files are written after.
    """
    from audiogen.publish.cover import make_cover
    from audiogen.publish.lyrics import make_lrc

    if routine.cover:
        src = resolve_path(routine.cover, routine.base_dir)
        try:
            data = src.read_bytes()
        except OSError as e:
            raise RoutineError(f"cannot read cover image {src}: {e.strerror or e}", path=str(job.source),
                               field="cover") from None
        ext = ".jpg" if src.suffix.lower() in (".jpg", ".jpeg") else ".png"
        tags.cover_mime = "image/jpeg" if ext == ".jpg" else "image/png"
    else:
        data, ext = make_cover(job.title, tags.album or tags.artist), ".png"
    tags.cover_png = data
    lyrics = make_lrc({**plan.to_dict(), "title": job.title, "artist": tags.artist, "album": tags.album,
                       "audiogen": __version__})
    return {f"{job.slug}{ext}": data, f"{job.slug}.lrc": lyrics.encode("utf-8")}


def _finish(out_dir: Path, manifest: dict, jobs: list[_Job], config: LibraryConfig, options: BuildOptions,
            library: bool, changed: bool) -> None:
    """Write the manifest; report (and with --prune remove) outputs whose routine is gone."""
    current = {j.slug for j in jobs}
    stale = []
    if library:
        for slug, entry in list(manifest.items()):
            if slug in current:
                continue
            src = Path(entry.get("source", ""))
            if not src.exists() or not any(j.source.resolve() == src for j in jobs):
                stale.append(slug)
    for slug in stale:
        if options.prune:
            for p in out_dir.glob(f"{slug}.*"):
                if p.suffix in (".mp3", ".json", ".lrc", ".png", ".jpg") or p.name.endswith(".chapters.json"):
                    p.unlink(missing_ok=True)
            manifest.pop(slug, None)
            if options.notify:
                options.notify(f"removed {out_dir / (slug + '.mp3')} (its routine is gone)")
        elif options.notify:
            options.notify(f"{out_dir / (slug + '.mp3')} has no routine any more (--prune removes it)")
    if changed or (stale and options.prune):
        built = {j.slug: manifest[j.slug] for j in jobs if j.result.status == "built" and j.slug in manifest}
        pruned = set(stale) if options.prune else set()
        with _locked(out_dir / (MANIFEST + ".lock")):
            # another build may have written the manifest since we read it: merge, never overwrite
            current = _load_manifest(out_dir)
            current.update(built)
            for slug in pruned:
                current.pop(slug, None)
            write_text(out_dir / MANIFEST, json.dumps(current, indent=1, sort_keys=True) + "\n")


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock (flock) held for the duration of the block."""
    import fcntl

    from audiogen.routine.atomic import _hint

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+")  # noqa: SIM115 - closed by the with below
    except OSError as e:
        raise OutputError(f"cannot write to {path.parent}: {e.strerror or e}", path=str(path.parent),
                          hint=_hint(e)) from None
    with f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def build_routine(path: str | Path, out_dir: str | Path = "output", options: BuildOptions | None = None
                  ) -> BuildResult:
    """Build one routine file into `out_dir` (its folder's audiogen.yaml applies); the first session's result."""
    options = options or BuildOptions()
    opts = BuildOptions(**{**options.__dict__, "out_dir": Path(out_dir)})
    return build([path], opts)[0]
