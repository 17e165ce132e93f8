"""Building sessions: load -> narrate -> plan -> render -> tag, for routine files and library folders.

A build runs in two stages. Stage 1 narrates every routine that needs work, in order, filling the
shared clip cache (a phrase used across the library is synthesised once). Stage 2 renders every
session (routine x length variant) on a thread pool: the heavy part, MP3 encoding, runs in ffmpeg
processes and the numpy mixing releases the GIL, so threads use every core without nesting pools.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from audiogen.build.check import plan_for, problems_before_synthesis
from audiogen.build.jobs import BuildOptions, BuildResult, Job, Progress, clips_fingerprint, plan_jobs
from audiogen.build.manifest import load_manifest, locked, write_manifest
from audiogen.build.outputs import wants_outputs
from audiogen.build.sessions import complete_job, keep_job, prepare_job, render_job, retag_job
from audiogen.plan.planner import spoken_texts
from audiogen.routine.atomic import sweep_orphans
from audiogen.routine.errors import AudiogenError, OutputError, RoutineError
from audiogen.routine.library import LibraryConfig, OutputSettings, config_for, routine_files
from audiogen.voice.cache import ClipCache
from audiogen.voice.narrate import Narration, Narrator


def build(paths: list[str | Path], options: BuildOptions | None = None) -> list[BuildResult]:
    """Build routine files and library folders; one failure never stops the others."""
    options = options or BuildOptions()
    if options.out_dir is not None:  # one error for every path, before anything is narrated
        problem = output_problem(options.out_dir)
        if problem is not None:
            return [BuildResult(source=str(options.out_dir), status="failed", error=problem)]
    cache = options.cache or ClipCache()
    narrator = Narrator(cache, engine=options.engine, offline=options.offline, notify=options.notify)
    results: list[BuildResult] = []
    clients: dict[str, object] = {}  # scheduler address -> Dask client, connected before any work
    in_use = cache.in_use()  # a `cache prune` meanwhile keeps every clip this build touches
    in_use.__enter__()
    try:
        for raw in paths:
            results += _build_path(Path(raw), options, narrator, clients)
    finally:
        in_use.__exit__(None, None, None)
        narrator.close()  # stop the synthesis worker processes (after errors and Ctrl-C too)
        if clients:
            from audiogen.build.cluster import close

            for client in clients.values():
                close(client)
    return _name_routines(results)


def _name_routines(results: list[BuildResult]) -> list[BuildResult]:
    """Every error in a result names a file: the routine's (or folder's) unless it names another already
    (an engine's error does not know which routine it was narrating)."""
    for r in results:
        for problem in r.error.problems() if r.error is not None else []:
            if problem.path is None:
                problem.path = r.source
    return results


def output_problem(out_dir: str | Path) -> OutputError | None:
    """Why `out_dir` cannot take a build's files (it is a file, or cannot be created or written), or None.
    Checked before any synthesis, and without creating anything (a dry run writes nothing)."""
    out_dir = Path(out_dir)
    hint = "-o (or output.dir) names a folder; a missing one is created"
    if out_dir.exists() and not out_dir.is_dir():
        return OutputError("the output folder is a file, not a folder", path=str(out_dir), hint=hint)
    probe = out_dir
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return OutputError(f"cannot create the output folder: {probe} is a file, not a folder",
                           path=str(out_dir), hint=hint)
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "cannot write to the output folder" if probe == out_dir else \
            f"cannot create the output folder: no permission to write in {probe}"
        return OutputError(what, path=str(out_dir), hint=hint)
    return None


def _build_path(p: Path, options: BuildOptions, narrator: Narrator, clients: dict) -> list[BuildResult]:
    """One command-line path: a library folder, or a routine file (its folder's audiogen.yaml applies)."""
    library = p.is_dir()
    try:
        config = config_for(p)
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
    problem = output_problem(out_dir)
    if problem is not None:
        return [BuildResult(source=str(out_dir), status="failed", error=problem)]
    client = None
    scheduler = options.scheduler or config.output.scheduler
    if scheduler and not options.dry_run:
        if scheduler not in clients:
            from audiogen.build.cluster import connect

            clients[scheduler] = connect(scheduler)  # an unreachable scheduler fails here, before any work
        client = clients[scheduler]
    return build_group(files, out_dir, config, options, narrator, library=library, client=client)


def build_group(files: list[Path], out_dir: Path, config: LibraryConfig, options: BuildOptions,
                narrator: Narrator, *, library: bool, client=None) -> list[BuildResult]:
    """Build routine files that share one output folder and one library configuration."""
    progress = options.progress or (lambda kind, info: None)
    settings = config.output
    sweep_orphans(out_dir)  # temp files of a build that was killed
    manifest = load_manifest(out_dir)
    jobs, failed = plan_jobs(files, config, options, narrator, manifest, out_dir, library)
    retagged = _retag(jobs, settings, config, options, manifest, progress)
    # (an unchanged session --strict fails on its earlier checks has its error already: not rebuilt)
    todo = [j for j in jobs if j.result.status != "skipped" and j.result.error is None
            and not any(j is k for k in retagged)]
    # what would fail a routine anyway (its cover, a language no engine speaks) fails it before any
    # routine is narrated, as `audiogen check` reports it
    blocked: dict[Path, AudiogenError] = {}
    for src in dict.fromkeys(j.source for j in todo):
        routine = next(j.routine for j in todo if j.source == src)
        problem = problems_before_synthesis(routine, src, [narrator])
        if problem is not None:
            blocked[src] = problem
    for j in todo:
        if j.source in blocked:
            j.result.status, j.result.error = "failed", blocked[j.source]
    todo = [j for j in todo if j.source not in blocked]

    if client is not None and todo and wants_outputs(settings):
        if options.notify:  # a cluster worker sends back one MP3; the other outputs are rendered here
            options.notify("output.format, split and stems are built on this machine, not on the cluster")
        client = None
    if client is not None and todo:
        _build_on_cluster(client, todo, settings, config, options, narrator, manifest, progress)
        failed += _wrap_up(out_dir, manifest, jobs, config, options, library, True)
        return _name_routines(failed + [j.result for j in jobs])

    # stage 1: narrate each routine that needs work (once for all its variants)
    narrations: dict[Path, Narration | AudiogenError] = {}
    routines_todo = list(dict.fromkeys(j.source for j in todo))
    first = {src: next(j for j in todo if j.source == src) for src in routines_todo}
    texts_of = {src: spoken_texts(job.routine) for src, job in first.items()}
    # A clip the cache gives back is "shared" when this build made it for an earlier routine, and "from
    # cache" (a cache hit) only when it was there before the build. Exact per routine from the keys its
    # narration used; the live "clip" events go by text (the key is known once the routine is narrated).
    made_texts: set[str] = set()
    made_keys: set[str] = set()
    shared_of: dict[Path, int] = {}

    def clip(text: str, hit: bool, hits: list[str] | None = None) -> None:
        if hit and hits is not None:
            hits.append(text)
        if not hit:
            made_texts.add(text)
        progress("clip", {"hit": hit, "shared": hit and text in made_texts})

    if len(routines_todo) > 1 and not options.dry_run:
        # every routine's missing clips in one batch, so the synthesis workers stay busy across routines
        progress("batch", {"routines": len(routines_todo)})
        try:
            narrator.prefetch([(first[src].routine, texts_of[src]) for src in routines_todo], on_clip=clip)
        except AudiogenError:
            pass  # best effort: narrate() below reports errors per routine as before
    for i, src in enumerate(routines_todo, start=1):
        if options.dry_run:
            break  # nothing is narrated
        job = first[src]
        texts = texts_of[src]
        about = {"title": job.routine.title, "index": i, "total": len(routines_todo), "clips": len(texts)}
        progress("narrate", about)
        hits: list[str] = []
        try:
            narration = narrator.narrate(job.routine, texts, on_clip=lambda t, hit, hits=hits: clip(t, hit, hits))
        except AudiogenError as e:
            narrations[src] = e
            progress("narrated", {**about, "error": e})
            continue
        hit_keys = {narration.keys[t] for t in hits if t in narration.keys}
        shared = len(hit_keys & made_keys)
        made_keys.update(k for t, k in narration.keys.items() if k not in hit_keys)
        narration.cache_hits -= shared
        narrations[src], shared_of[src] = narration, shared
        progress("narrated", {**about, "synthesized": narration.synthesized, "shared": shared,
                              "cached": narration.cache_hits})

    # stage 2: plan and render every session
    lock = threading.Lock()
    done = [0]
    cancel = threading.Event()  # Ctrl-C: queued sessions do not start, running ones stop between blocks

    def run(job: Job) -> None:
        if cancel.is_set():
            return
        narration = narrations.get(job.source)
        if isinstance(narration, AudiogenError):
            job.result.status, job.result.error = "failed", narration
        elif options.dry_run:  # planned with estimated speech lengths (real ones for clips already cached)
            try:
                plan = plan_for(job.routine, narrator.cache, job.target_ms)
                job.result.status, job.result.length_ms, job.result.estimated = "planned", plan.length_ms, \
                    plan.estimated
            except AudiogenError as e:
                job.result.status, job.result.error = "failed", e
        elif (job.previous is not None and clips_fingerprint(narration.keys) == job.previous.get("clips")
              and (keep_job(job, narration, manifest, lock)
                   or retag_job(job, settings, config, manifest, lock, narration))):
            job.result.shared = shared_of.get(job.source, 0)  # narrated to the same clips: the audio is the same
        else:
            render_job(job, narration, settings, config, narrator.cache, options, manifest, lock, cancel)
            job.result.shared = shared_of.get(job.source, 0)
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

    notices: list[str] = []  # the library's own notes (a feed with relative URLs): a no-op rebuild repeats them
    if not options.dry_run:
        def notice(message: str) -> None:
            notices.append(message)
            if options.notify:
                options.notify(message)

        failed += _wrap_up(out_dir, manifest, jobs, config, replace(options, notify=notice), library,
                           bool(todo or retagged))
    from audiogen.build.noop import record

    record(files, out_dir, options, jobs, failed, library, notices=notices)  # what a no-op rebuild is answered from
    return _name_routines(failed + [j.result for j in jobs])


def _retag(jobs: list[Job], settings: OutputSettings, config: LibraryConfig, options: BuildOptions,
           manifest: dict, progress: Progress) -> list[Job]:
    """Retag the sessions whose audio is known unchanged but whose tags are not (before any narration:
    they need none); returns them. A session whose sidecar cannot be used is left to render."""
    done: list[Job] = []
    lock = threading.Lock()
    for job in (j for j in jobs if j.retag):
        if options.dry_run:
            job.result.status = "planned"
            job.result.details.append("audio unchanged: only its tags would be rewritten")
        elif not retag_job(job, settings, config, manifest, lock):
            continue
        else:
            progress("retag", {"result": job.result})
        done.append(job)
    return done


def _wrap_up(out_dir: Path, manifest: dict, jobs: list[Job], config: LibraryConfig, options: BuildOptions,
             library: bool, changed: bool) -> list[BuildResult]:
    """Manifest, then playlist, feed and page over every session in `out_dir`, skipped ones too (a single
    routine's output folder is a library of what was built there).

    Indexes are written under the manifest lock, so two builds at once cannot publish a stale list.
    """
    from audiogen.publish.indexes import write_indexes

    base_url = options.base_url or config.output.base_url
    # routine files that all failed leave the folder as it was (a library's indexes always list what is there)
    indexed = library or any(j.result.status in ("built", "retagged", "skipped") for j in jobs)
    try:
        write_manifest(out_dir, manifest, jobs, config, options, library, changed)
        if indexed:
            with locked(out_dir):
                write_indexes(out_dir, config.album, config.author, base_url, config.feed)
    except AudiogenError as e:  # a full disk, say: reported with the sessions, not instead of them
        return [BuildResult(source=str(out_dir), status="failed", error=e)]
    if indexed and not base_url and options.notify:
        options.notify(f"{out_dir / 'feed.xml'} has relative URLs: fine for `audiogen serve` and this computer, "
                       "but podcast apps need absolute ones. Set output.base_url in audiogen.yaml (or pass "
                       "--base-url URL) to the address this folder is published at.")
    return []


def _build_on_cluster(client, todo: list[Job], settings: OutputSettings, config: LibraryConfig,
                      options: BuildOptions, narrator: Narrator, manifest: dict, progress: Progress) -> None:
    """The same two stages as a local build, as Dask tasks (clips, then sessions), overlapping: a
    routine's sessions render as soon as its clips are made."""
    from audiogen.build.cluster import build_on_cluster

    lock = threading.Lock()

    def fail(job: Job, error: AudiogenError | None) -> None:
        job.result.status = "failed"
        job.result.error = error or RoutineError("not narrated", path=str(job.source))

    build_on_cluster(
        client, narrator, todo,
        prepare=lambda job, narration: prepare_job(job, narration, settings, config, options),
        complete=lambda job, prep, narration, lufs: complete_job(job, prep, narration, lufs, config, manifest,
                                                                  lock),
        fail=fail, progress=progress,
    )


def build_routine(path: str | Path, out_dir: str | Path = "output", options: BuildOptions | None = None
                  ) -> BuildResult:
    """Build one routine file into `out_dir` (its folder's audiogen.yaml applies); the first session's result."""
    options = options or BuildOptions()
    opts = BuildOptions(**{**options.__dict__, "out_dir": Path(out_dir)})
    return build([path], opts)[0]
