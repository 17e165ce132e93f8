"""One session from narration to files: plan and check it, draw its cover and lyrics, render (here), tag,
and write its timeline and manifest entry; a session is all its files or none."""

from __future__ import annotations

import datetime
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from audiogen._version import __version__
from audiogen.audio.session import CachedClips, Loudness, SessionAudio, cue_samples, load_bed, render_audio
from audiogen.build.jobs import BuildOptions, Job, plan_session
from audiogen.build.outputs import remove_outputs, render_session_outputs, wants_outputs
from audiogen.plan.planner import Plan
from audiogen.publish.tags import ChapterMark, TagInfo, write_tags
from audiogen.routine.atomic import atomic_path, write_text
from audiogen.routine.errors import AudiogenError, RoutineError
from audiogen.routine.library import LibraryConfig, OutputSettings, session_output
from audiogen.routine.model import Routine
from audiogen.routine.soundref import resolve_path
from audiogen.voice.cache import ClipCache
from audiogen.voice.narrate import Narration


@dataclass
class Prepared:
    """A session planned on the client, ready to render here or on a cluster worker."""

    routine: Routine
    plan: Plan
    audio: SessionAudio  # clips not attached yet
    tags: TagInfo
    files: dict[str, bytes]  # cover and lyrics, written beside the MP3 once it is in place
    written: dict | None = None  # other formats, step files and stems (build/outputs.py), for the sidecar

    def tag(self, mp3: Path) -> None:
        """Title, album, cover and a chapter per step into the rendered (not yet published) MP3."""
        write_tags(mp3, self.tags, [ChapterMark(c.title, c.start_ms, c.end_ms) for c in self.plan.chapters])

    @property
    def extras(self) -> dict:
        names = {Path(n).suffix: n for n in self.files}
        return {"cover": names.get(".png") or names.get(".jpg"), "lrc": names.get(".lrc"),
                "vtt": names.get(".vtt"), "srt": names.get(".srt")}


def prepare_job(job: Job, narration: Narration, settings: OutputSettings, config: LibraryConfig,
                 options: BuildOptions) -> Prepared:
    """Plan the session, check it, and write its cover and lyrics (on the client)."""
    r = job.result
    routine = job.routine
    settings = session_output(settings, routine)
    r.engine, r.voice = narration.engine, narration.voice
    r.synthesized, r.cache_hits, r.notes = narration.synthesized, narration.cache_hits, list(narration.notes)
    cues = cue_samples(routine)
    routine, plan = plan_session(routine, narration, cues, job.target_ms)
    r.length_ms = plan.length_ms
    r.details.append(f"narrated by {narration.engine} ({narration.voice}): {len(narration.keys)} distinct "
                     f"phrases; planned {len(plan.events)} events, {len(plan.chapters)} chapters")
    overruns = [f"step {w.chapter!r}: {w.message}" for w in plan.warnings]
    r.warnings += overruns
    if options.strict and plan.warnings:
        raise RoutineError(
            f"{len(plan.warnings)} step(s) longer than planned: " + "; ".join(overruns),
            path=str(job.source), hint="shorten the text or lengthen the duration (or build without --strict)",
        )
    tags = TagInfo(title=job.title, artist=routine.artist or config.author or "audiogen", album=config.album,
                   track=job.track, track_total=job.track_total, genre=routine.genre or "Guided session",
                   year=str(datetime.date.today().year), comment=routine.description)
    bed = load_bed(routine, settings.loudness_mode)  # one that does not decode fails before anything is written
    files = side_files(job, routine, plan, tags)
    return Prepared(routine, plan, SessionAudio(plan, None, cues, bed, settings), tags, files)


def complete_job(job: Job, prep: Prepared, narration: Narration, measured: Loudness, config: LibraryConfig,
                  manifest: dict, lock: threading.Lock) -> None:
    """After the MP3 is in place: the loudness check, the sidecar JSON and the manifest entry."""
    r, plan, settings = job.result, prep.plan, prep.audio.settings
    lufs = measured.target
    r.loudness, r.programme_loudness = lufs, measured.programme
    if settings.loudness is not None and lufs is not None and abs(lufs - settings.loudness) > 0.5:
        if settings.loudness_mode == "speech":
            r.warnings.append(
                f"speech loudness {lufs:.1f} LUFS, not the {settings.loudness:g} LUFS target: the voice's peaks "
                "meet the limiter first; a lower output.loudness keeps the narration clean")
        else:
            speech = sum(e.length_ms for e in plan.events if e.kind == "speech") / max(1, plan.length_ms)
            r.warnings.append(
                f"loudness {lufs:.1f} LUFS, not the {settings.loudness:g} LUFS target: speech fills only "
                f"{speech:.0%} of the session and the voice cannot get louder without distorting; a louder "
                "background.volume or a shorter session gets closer")
    # when the session was first built: its feed date, which a re-render must not move
    first_built = (manifest.get(job.slug) or {}).get("first_built") or int(time.time())
    try:
        write_session_files(job, prep, narration, measured, config, first_built)
    except BaseException:  # a session is all its files or none: no MP3 without its timeline
        for name in [r.mp3.name, f"{job.slug}.json", *prep.files]:
            (r.mp3.parent / name).unlink(missing_ok=True)
        raise
    if settings.loudness is not None:
        r.details.append(f"levelled ({settings.loudness_mode}): {measured.gain_db:+.1f} dB on the mix, "
                         f"{measured.bed_gain_db:+.1f} dB on the bed; speech {lufs} LUFS, whole mix "
                         f"{measured.programme} LUFS")
    r.details.append("wrote " + ", ".join([r.mp3.name, f"{job.slug}.json", *prep.files]))
    with lock:
        manifest[job.slug] = {"fingerprint": job.fingerprint, "source": str(job.source.resolve()),
                              "length_ms": plan.length_ms, "engine": narration.engine,
                              "voice": narration.voice, "loudness": lufs, "programme_loudness": measured.programme,
                              "first_built": first_built}
    r.status = "built"


def write_session_files(job: Job, prep: Prepared, narration: Narration, measured: Loudness,
                         config: LibraryConfig, first_built: int) -> None:
    from audiogen.routine.atomic import write_bytes

    r, plan, routine = job.result, prep.plan, prep.routine
    for name, data in prep.files.items():
        write_bytes(r.mp3.parent / name, data)
    timeline = plan.to_dict()
    timeline.update({
        "title": job.title, "slug": job.slug, "mp3": r.mp3.name, "description": routine.description,
        "album": config.album, "artist": prep.tags.artist, "track": job.track, "variant": r.variant,
        "engine": narration.engine, "voice": narration.voice, "language": routine.language,
        "loudness_lufs": measured.target, "programme_lufs": measured.programme,
        "loudness_mode": prep.audio.settings.loudness_mode, "source": job.source.name, "audiogen": __version__,
        "first_built": first_built, **prep.extras,
    })
    if prep.written:  # "mp3" stays the file offered first (whatever its format); "files" has every format
        timeline.update(prep.written)
    write_text(r.mp3.parent / f"{job.slug}.json", json.dumps(timeline, indent=1, ensure_ascii=False) + "\n")


def render_job(job: Job, narration: Narration, settings: OutputSettings, config: LibraryConfig,
                cache: ClipCache, options: BuildOptions, manifest: dict, lock: threading.Lock,
                cancel: threading.Event | None = None) -> None:
    """Plan, render and write one session on this machine."""
    try:
        prep = prepare_job(job, narration, settings, config, options)
        prep.audio.clips = CachedClips(cache, narration.keys)
        if wants_outputs(prep.audio.settings):
            measured, prep.written = render_session_outputs(job, prep, cancel)
            try:
                complete_job(job, prep, narration, measured, config, manifest, lock)
            except BaseException:
                remove_outputs(job.result.mp3.parent, prep.written)
                raise
            return
        with atomic_path(job.result.mp3) as tmp:
            measured = render_audio(prep.audio, tmp, cancel)
            prep.tag(tmp)
        complete_job(job, prep, narration, measured, config, manifest, lock)
    except AudiogenError as e:
        job.result.status, job.result.error = "failed", e


def side_files(job: Job, routine: Routine, plan: Plan, tags) -> dict[str, bytes]:
    """Cover art (the routine's own image, or one drawn for it), synced lyrics (.lrc) and transcripts
    (.vtt, .srt), as bytes by file name.

    The cover also goes into the MP3's tags, so it is made before rendering; the files are written after.
    """
    from audiogen.publish.cover import make_cover
    from audiogen.publish.lyrics import make_lrc
    from audiogen.publish.transcripts import make_srt, make_vtt

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
    timeline = {**plan.to_dict(), "title": job.title, "artist": tags.artist, "album": tags.album,
                "audiogen": __version__}
    return {f"{job.slug}{ext}": data, f"{job.slug}.lrc": make_lrc(timeline).encode("utf-8"),
            f"{job.slug}.vtt": make_vtt(timeline).encode("utf-8"),
            f"{job.slug}.srt": make_srt(timeline).encode("utf-8")}
