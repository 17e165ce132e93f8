"""Building sessions: load -> narrate -> plan -> render -> tag, for one routine or a whole library."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .atomic import atomic_path, write_text
from .cache import ClipCache
from .errors import AudiogenError, RoutineError
from .library import LibraryConfig, OutputSettings, load_library_config, routine_files  # noqa: F401
from .loader import load_routine
from .model import Routine
from .narrate import SPEECH_RMS_DBFS, Narration, Narrator
from .planner import Event, Plan, plan_routine, sound_refs, spoken_texts
from .render import Bed, encode_mp3, mix_blocks
from .slug import slugify
from .soundref import is_builtin, resolve_path

MANIFEST = ".audiogen-manifest.json"
#: Cue sounds peak here, a little under the voice's peaks.
CUE_PEAK = 10 ** (-6 / 20)

Progress = Callable[[str, dict], None]


@dataclass
class BuildResult:
    """What happened to one routine."""

    source: str
    status: str  # built | skipped | failed | checked
    title: str | None = None
    mp3: Path | None = None
    length_ms: int | None = None
    engine: str | None = None
    voice: str | None = None
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
    cache: ClipCache | None = None
    notify: Callable[[str], None] | None = None
    progress: Progress | None = None


# -- sounds ---------------------------------------------------------------------------------------
def load_cue(ref: str, base_dir: Path | None) -> np.ndarray:
    from . import sounds

    x = sounds.cue(ref) if is_builtin(ref, "cue") else sounds.load_sound_file(resolve_path(ref, base_dir))
    x = np.asarray(x, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return x * (CUE_PEAK / peak) if peak > 0 else x


def load_bed(routine: Routine) -> Bed | None:
    from . import sounds

    bg = routine.background
    if bg is None:
        return None
    ref = bg.track
    if is_builtin(ref, "ambience"):
        loop = sounds.ambience(ref)  # generated to loop exactly, at the reference level
    else:  # a user's file: level it, then crossfade its seam
        raw = sounds.load_sound_file(resolve_path(ref, routine.base_dir))
        loop = sounds.make_loop(sounds.normalize_rms(raw, SPEECH_RMS_DBFS))
    return Bed(loop, bg.volume, bg.duck, bg.fade_in, bg.fade_out)


def cue_lengths(routine: Routine) -> dict[str, np.ndarray]:
    return {ref: load_cue(ref, routine.base_dir) for ref in sound_refs(routine)}


# -- one session ----------------------------------------------------------------------------------
def plan_session(routine: Routine, narration: Narration, cues: dict[str, np.ndarray]) -> Plan:
    from .ffmpeg import INTERNAL_RATE

    return plan_routine(
        routine,
        lambda t: narration.lengths[t],
        lambda s: int(np.ceil(len(cues[s]) * 1000 / INTERNAL_RATE)),
    )


def render_session(routine: Routine, plan: Plan, narration: Narration, cues: dict[str, np.ndarray],
                   cache: ClipCache, mp3_path: Path, settings: OutputSettings, tags) -> None:
    """Mix and encode the session into `mp3_path` atomically, with tags and chapters."""
    from .tags import ChapterMark, write_tags

    def load(event: Event) -> np.ndarray:
        if event.kind == "speech":
            return cache.load(narration.keys[event.text]).astype(np.float32) / 32768.0
        return cues[event.sound]

    bed = load_bed(routine)
    with atomic_path(mp3_path) as tmp:
        encode_mp3(mix_blocks(plan, load, bed), tmp, bitrate=settings.bitrate, channels=settings.channels,
                   sample_rate=settings.sample_rate)
        chapters = [ChapterMark(c.title, c.start_ms, c.end_ms) for c in plan.chapters]
        write_tags(tmp, tags, chapters)


def fingerprint(routine: Routine, settings: OutputSettings, candidates: list[str], extra: dict) -> str:
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
        [__version__, routine.model_dump(mode="json"), settings.model_dump(mode="json"), candidates, files, extra],
        sort_keys=True, ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _load_manifest(out_dir: Path) -> dict:
    try:
        return json.loads((out_dir / MANIFEST).read_text("utf-8"))
    except (FileNotFoundError, ValueError, OSError):
        return {}


def build_routine(
    path: Path,
    out_dir: Path,
    *,
    narrator: Narrator,
    settings: OutputSettings,
    library: LibraryConfig | None = None,
    track: int | None = None,
    track_total: int | None = None,
    options: BuildOptions | None = None,
    slug: str | None = None,
    manifest: dict | None = None,
) -> BuildResult:
    """Build one routine file into `out_dir`: `<slug>.mp3` and `<slug>.json`."""
    from .tags import TagInfo

    options = options or BuildOptions()
    library = library or LibraryConfig()
    result = BuildResult(source=str(path), status="failed")
    progress = options.progress or (lambda kind, info: None)
    try:
        routine = load_routine(path, defaults=library.defaults or None)
        result.title = routine.title
        slug = slug or slugify(routine.title)
        mp3 = out_dir / f"{slug}.mp3"
        sidecar = out_dir / f"{slug}.json"
        result.mp3 = mp3
        texts = spoken_texts(routine)
        fp = fingerprint(routine, settings, narrator.candidates(routine) + [f"offline={narrator.offline}"],
                         {"album": library.album, "author": library.author, "track": track})
        entry = (manifest or {}).get(slug)
        if (not options.force and not options.dry_run and entry and entry.get("fingerprint") == fp
                and mp3.exists() and sidecar.exists()):
            result.status = "skipped"
            result.length_ms, result.engine, result.voice = entry.get("length_ms"), entry.get("engine"), entry.get(
                "voice")
            return result
        progress("routine", {"title": routine.title, "clips": len(texts)})
        narration = narrator.narrate(routine, texts, on_clip=lambda t, hit: progress("clip", {"hit": hit}))
        result.engine, result.voice = narration.engine, narration.voice
        result.synthesized, result.cache_hits, result.notes = (
            narration.synthesized, narration.cache_hits, narration.notes)
        cues = cue_lengths(routine)
        plan = plan_session(routine, narration, cues)
        result.length_ms = plan.length_ms
        for w in plan.warnings:
            result.warnings.append(f"step {w.chapter!r}: {w.message}")
        if options.strict and plan.warnings:
            raise RoutineError(
                f"{len(plan.warnings)} step(s) longer than planned: " + "; ".join(result.warnings),
                path=str(path), hint="shorten the text or lengthen the duration (or build without --strict)",
            )
        if options.dry_run:
            result.status = "checked"
            return result
        progress("render", {"title": routine.title, "length_ms": plan.length_ms})
        tags = TagInfo(
            title=routine.title,
            artist=routine.artist or library.author or "audiogen",
            album=library.album,
            track=track,
            track_total=track_total if track else None,
            genre=routine.genre or "Guided session",
            comment=routine.description,
        )
        render_session(routine, plan, narration, cues, narrator.cache, mp3, settings, tags)
        timeline = plan.to_dict()
        timeline.update({"engine": narration.engine, "voice": narration.voice, "language": routine.language,
                         "source": path.name, "audiogen": __version__})
        write_text(sidecar, json.dumps(timeline, indent=1, ensure_ascii=False) + "\n")
        if manifest is not None:
            manifest[slug] = {"fingerprint": fp, "source": str(path), "length_ms": plan.length_ms,
                              "engine": narration.engine, "voice": narration.voice}
        result.status = "built"
    except AudiogenError as e:
        result.status = "failed"
        result.error = e
    return result


def build(paths: list[str | Path], options: BuildOptions | None = None) -> list[BuildResult]:
    """Build routine files and library folders; one failure never stops the others."""
    options = options or BuildOptions()
    cache = options.cache or ClipCache()
    narrator = Narrator(cache, engine=options.engine, offline=options.offline, notify=options.notify)
    results: list[BuildResult] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            try:
                config = load_library_config(p)
            except AudiogenError as e:
                results.append(BuildResult(source=str(p), status="failed", error=e))
                continue
            out_dir = options.out_dir or (p / config.output.dir)
            files = routine_files(p)
            if not files:
                results.append(BuildResult(source=str(p), status="failed",
                                           error=RoutineError("no routine files (*.yaml) in this folder",
                                                              path=str(p))))
                continue
            results += _build_many(files, out_dir, narrator, config.output, config, options)
        else:  # a routine file: its folder's audiogen.yaml (if any) still applies, output goes to ./output
            try:
                config = load_library_config(p.parent) if p.parent.is_dir() else LibraryConfig()
            except AudiogenError as e:
                results.append(BuildResult(source=str(p), status="failed", error=e))
                continue
            out_dir = options.out_dir or Path("output")
            results += _build_many([p], out_dir, narrator, config.output, config, options)
    return results


def _build_many(files: list[Path], out_dir: Path, narrator: Narrator, settings: OutputSettings,
                library: LibraryConfig, options: BuildOptions) -> list[BuildResult]:
    manifest = _load_manifest(out_dir)
    results = []
    used: set[str] = set()
    for i, f in enumerate(files, start=1):
        slug = None
        try:
            routine_title = load_routine(f, defaults=library.defaults or None).title
            slug = base = slugify(routine_title)
            n = 2
            while slug in used:
                slug, n = f"{base}-{n}", n + 1
            used.add(slug)
        except AudiogenError:
            pass  # build_routine reports it
        results.append(build_routine(
            f, out_dir, narrator=narrator, settings=settings, library=library,
            track=i if len(files) > 1 else None, track_total=len(files) if len(files) > 1 else None,
            options=options, slug=slug, manifest=manifest,
        ))
    if not options.dry_run and any(r.status == "built" for r in results):
        write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return results
