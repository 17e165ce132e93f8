"""One session from narration to files: plan and check it, draw its cover and lyrics, render (here), tag,
and write its timeline and manifest entry; a session is all its files or none. A session whose audio is
unchanged but whose tags are not (a new track total, album, ID3 version) is retagged instead."""

from __future__ import annotations

import datetime
import json
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from audiogen._version import __version__
from audiogen.audio.checks import overruns
from audiogen.audio.session import CachedClips, Loudness, SessionAudio, cue_samples, load_bed, render_audio
from audiogen.build.jobs import BuildOptions, Job, clips_fingerprint, plan_session, skipped_checks
from audiogen.build.outputs import remove_outputs, render_session_outputs, wants_outputs
from audiogen.plan.planner import Plan
from audiogen.publish.tags import ChapterMark, TagInfo, write_tags
from audiogen.routine.atomic import atomic_path, write_text
from audiogen.routine.errors import AudiogenError, RoutineError
from audiogen.routine.library import LibraryConfig, OutputSettings, session_output
from audiogen.routine.model import Routine
from audiogen.routine.phrasebook import phrases_warning
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
    strict: bool = False  # --strict: a sound check that fails fails the session (nothing is written)
    written: dict | None = None  # other formats, step files and stems (build/outputs.py), for the sidecar

    def tag(self, mp3: Path) -> None:
        """Title, album, cover and a chapter per step into the rendered (not yet published) MP3."""
        write_tags(mp3, self.tags, [ChapterMark(c.title, c.start_ms, c.end_ms) for c in self.plan.chapters],
                   version=self.audio.settings.id3)

    @property
    def extras(self) -> dict:
        return extras(self.files)


def extras(files: dict[str, bytes]) -> dict:
    """The side files' names as the sidecar lists them (cover, thumb, lrc, vtt, srt)."""
    names = {Path(n).suffix: n for n in files if ".thumb." not in n}
    thumb = next((n for n in files if ".thumb." in n), None)
    return {"cover": names.get(".png") or names.get(".jpg"), "thumb": thumb, "lrc": names.get(".lrc"),
            "vtt": names.get(".vtt"), "srt": names.get(".srt")}


def tag_info(job: Job, routine: Routine, config: LibraryConfig, timeline: dict, first_built: int | None) -> TagInfo:
    """What goes into the session's ID3 tag; the year is the year it was first built (stable)."""
    from audiogen.publish.lyrics import lyrics_text

    year = datetime.date.fromtimestamp(first_built).year if first_built else datetime.date.today().year
    return TagInfo(title=job.title, artist=routine.artist or config.author or "audiogen", album=config.album,
                   track=job.track, track_total=job.track_total, genre=routine.genre or "Guided session",
                   year=str(year), comment=routine.description, lyrics=lyrics_text(timeline) or None,
                   length_ms=int(timeline["length_ms"]), language=routine.language)


class _Later(threading.Thread):
    """A function run in a thread of its own, its result (or its exception) taken with `result()`."""

    def __init__(self, fn, *args) -> None:
        super().__init__(name="side-files", daemon=True)
        self.fn, self.args, self.value, self.error = fn, args, None, None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args)
        except BaseException as e:  # handed to whoever takes the result
            self.error = e

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


def prepare_job(job: Job, narration: Narration, settings: OutputSettings, config: LibraryConfig,
                 options: BuildOptions) -> Prepared:
    """Plan the session, check it, and write its cover and lyrics (on the client).

    A cover to draw is drawn in a thread from the start (Pillow lets the GIL go for most of its ~0.3 s)
    while this one plans and loads the bed, and is taken before the render: it no longer waits in line
    before the encoder starts, and its memory is let go before the mix's is taken."""
    r = job.result
    routine = job.routine
    drawn = None
    if not routine.cover:
        from audiogen.publish.cover import make_cover_and_thumbnail

        drawn = _Later(make_cover_and_thumbnail, job.title, config.album or routine.artist or config.author
                       or "audiogen")
    settings = session_output(settings, routine)
    r.engine, r.voice = narration.engine, narration.voice
    r.synthesized, r.cache_hits, r.notes = narration.synthesized, narration.cache_hits, list(narration.notes)
    cues = cue_samples(routine)
    routine, plan = plan_session(routine, narration, cues, job.target_ms)
    r.length_ms = plan.length_ms
    r.details.append(f"narrated by {narration.engine} ({narration.voice}): {len(narration.keys)} distinct "
                     f"phrases; planned {len(plan.events)} events, {len(plan.chapters)} chapters")
    for fit in plan.fits:  # reported, not a warning: the step lands on its duration as written
        note = f"{job.source.name}: step {fit.chapter!r}: {fit.message}"
        r.notes.append(note)
        r.details.append(note)
        if options.notify:
            options.notify(note)
    overrun = overruns(plan)  # the planner's warnings, as the sound checks word theirs
    r.warnings += [f.format() for f in overrun]
    r.checks += [f.to_dict() for f in overrun]
    if options.strict and plan.warnings:
        raise RoutineError(
            f"{len(plan.warnings)} step(s) longer than planned: " + "; ".join(f.format() for f in overrun),
            path=str(job.source), hint="shorten the text or lengthen the duration (or build without --strict)",
        )
    timeline = plan.to_dict()
    tags = tag_info(job, routine, config, timeline, job.first_built)
    bed = load_bed(routine, settings.loudness_mode)  # one that does not decode fails before anything is written
    files = side_files(job, routine, timeline, tags, drawn=drawn)
    return Prepared(routine, plan, SessionAudio(plan, None, cues, bed, settings), tags, files, options.strict)


def strict_problem(job: Job, measured: Loudness) -> RoutineError | None:
    """Under --strict, the sound checks that failed as one error (the session is then not written)."""
    if not measured.checks:
        return None
    return RoutineError(f"{len(measured.checks)} sound check(s) failed (--strict): "
                        + "; ".join(f.format() for f in measured.checks), path=str(job.source),
                        hint="fix what each one says, or build without --strict to write the session anyway")


def complete_job(job: Job, prep: Prepared, narration: Narration, measured: Loudness, config: LibraryConfig,
                  manifest: dict, lock: threading.Lock) -> None:
    """After the MP3 is in place: the loudness check, the sidecar JSON and the manifest entry."""
    r, plan, settings = job.result, prep.plan, prep.audio.settings
    if prep.strict and strict_problem(job, measured) is not None:  # (a cluster's MP3 is in place already)
        r.mp3.unlink(missing_ok=True)
        raise strict_problem(job, measured)
    r.warnings += [f.format() for f in measured.checks]
    r.checks += [f.to_dict() for f in measured.checks]
    r.limiter_db = measured.limiter_db
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
                         f"{measured.programme} LUFS; the limiter's deepest cut {measured.limiter_db:.1f} dB")
    r.details.append("wrote " + ", ".join([r.mp3.name, f"{job.slug}.json", *prep.files]))
    with lock:
        manifest[job.slug] = {"fingerprint": job.fingerprint, "source": str(job.source.resolve()),
                              "length_ms": plan.length_ms, "engine": narration.engine,
                              "voice": narration.voice, "loudness": lufs, "programme_loudness": measured.programme,
                              "first_built": first_built, "checks": r.checks, "tags": job.tag_fingerprint,
                              "choice": job.choice, "clips": clips_fingerprint(narration.keys)}
    r.status = "built"


def write_session_files(job: Job, prep: Prepared, narration: Narration, measured: Loudness,
                         config: LibraryConfig, first_built: int) -> None:
    r, plan, routine = job.result, prep.plan, prep.routine
    write_side_files(r.mp3.parent, prep.files)
    timeline = plan.to_dict()
    if english := phrases_warning(routine):  # the built-in words fell back to English: said in the JSON too
        timeline["warnings"].append({"kind": "language", "message": english})
    if problem := cover_warning(job, routine, prep.tags):
        timeline["warnings"].append({"kind": "cover", "message": problem})
    _say_who_spoke(timeline, narration)
    timeline.update({
        "title": job.title, "slug": job.slug, "mp3": r.mp3.name, "description": routine.description,
        "album": config.album, "artist": prep.tags.artist, "track": job.track, "variant": r.variant,
        "engine": narration.engine, "voice": narration.voice, "language": routine.language,
        "loudness_lufs": measured.target, "programme_lufs": measured.programme,
        "loudness_mode": prep.audio.settings.loudness_mode, "source": job.source.name, "audiogen": __version__,
        "first_built": first_built, **prep.extras,
        "checks": r.checks, "limiter_db": measured.limiter_db,
    })
    if prep.written:  # "mp3" stays the file offered first (whatever its format); "files" has every format
        timeline.update(prep.written)
    write_text(r.mp3.parent / f"{job.slug}.json", json.dumps(timeline, indent=1, ensure_ascii=False) + "\n")


def _say_who_spoke(timeline: dict, narration: Narration) -> None:
    """Events in another voice than the routine's (a step's or the phrases' `voice:`) name the engine and
    voice that spoke them, beside the voice the routine asked for."""
    from audiogen.routine.model import Voice
    from audiogen.routine.voicing import label

    for event in timeline["events"]:
        if isinstance(event.get("voice"), dict):
            who = narration.voices.get(label(Voice.model_validate(event["voice"])))
            if who:
                event["spoken_by"] = f"{who[0]} ({who[1]})"


def write_side_files(folder: Path, files: dict[str, bytes]) -> None:
    """Cover, thumbnail, lyrics and transcripts; a thumbnail of the other format is removed."""
    from audiogen.routine.atomic import write_bytes

    for name, data in files.items():
        write_bytes(folder / name, data)
        if ".thumb." in name:
            other = ".png" if name.endswith(".jpg") else ".jpg"
            (folder / (name.rsplit(".", 1)[0] + other)).unlink(missing_ok=True)


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
            problem = strict_problem(job, measured) if prep.strict else None
            if problem is not None:  # the temp file is removed: the previous session (if any) stays
                raise problem
            prep.tag(tmp)
        complete_job(job, prep, narration, measured, config, manifest, lock)
    except AudiogenError as e:
        job.result.status, job.result.error = "failed", e


def cover_warning(job: Job, routine: Routine, tags) -> str | None:
    """What the drawn cover leaves out: characters of the title (or library name) no cover font has."""
    if routine.cover:
        return None
    from audiogen.publish.cover import undrawable

    missing = undrawable(f"{job.title} {tags.album or tags.artist or ''}")
    if not missing:
        return None
    return (f"the cover leaves out {''.join(missing)!r}: no installed cover font has "
            f"{'this character' if len(missing) == 1 else 'these characters'} (for Chinese, Japanese or Korean "
            "titles: pip install 'audiogen[cjk]'); or give the routine a cover: image")


def side_files(job: Job, routine: Routine, plan: Plan | dict, tags, keep_cover: bool = False,
               drawn: _Later | None = None) -> dict[str, bytes]:
    """Cover art (the routine's own image, or one drawn for it) and its thumbnail (`<slug>.thumb.jpg`, for
    the page's list), synced lyrics (.lrc) and transcripts (.vtt, .srt), as bytes by file name. `plan`: the
    plan, or its timeline dict (a retag has the sidecar's). `keep_cover`: a drawn cover already beside the
    MP3 is kept when it is the same drawing (title, library, audiogen version), not drawn again. `drawn`: that
    drawing (cover and thumbnail) already being made (`make_cover_and_thumbnail` in a thread), if it is this one.

    The cover also goes into the MP3's tags, so it is made before rendering; the files are written after.
    """
    from audiogen.publish.cover import make_thumbnail
    from audiogen.publish.lyrics import make_lrc
    from audiogen.publish.transcripts import make_srt, make_vtt

    if routine.cover:
        src = resolve_path(routine.cover, routine.base_dir)
        try:
            data = src.read_bytes()
        except OSError as e:
            raise RoutineError(f"cannot read cover image {src}: {e.strerror or e}", path=str(job.source),
                               field="cover") from None
        ext, made = (".jpg" if src.suffix.lower() in (".jpg", ".jpeg") else ".png"), None
        tags.cover_mime = "image/jpeg" if ext == ".jpg" else "image/png"
    elif drawn is not None and drawn.args == (job.title, tags.album or tags.artist) and not keep_cover:
        (data, made), ext = drawn.result(), ".png"
        if problem := cover_warning(job, routine, tags):
            job.result.warnings.append(problem)
    else:
        data, ext, made = _drawn_cover(job.result.mp3.parent / f"{job.slug}.png" if keep_cover else None,
                                       job.title, tags.album or tags.artist)
        if problem := cover_warning(job, routine, tags):
            job.result.warnings.append(problem)
    tags.cover_png = data
    files = {f"{job.slug}{ext}": data}
    try:
        thumb, thumb_ext = made or make_thumbnail(data)
        files[f"{job.slug}.thumb{thumb_ext}"] = thumb
    except (OSError, ValueError):  # a cover Pillow cannot read: the page shows it full size
        pass
    timeline = {**(plan if isinstance(plan, dict) else plan.to_dict()), "title": job.title, "artist": tags.artist,
                "album": tags.album, "audiogen": __version__}
    return {**files, f"{job.slug}.lrc": make_lrc(timeline).encode("utf-8"),
            f"{job.slug}.vtt": make_vtt(timeline).encode("utf-8"),
            f"{job.slug}.srt": make_srt(timeline).encode("utf-8")}


def keep_job(job: Job, narration: Narration, manifest: dict, lock: threading.Lock) -> bool:
    """A session narrated to the clips its MP3 was made from, with unchanged tags: nothing to write but its
    manifest entry (the engine choice now known to give those clips). False when its tags changed."""
    r, entry = job.result, job.previous or {}
    if entry.get("tags") != job.tag_fingerprint:
        return False
    r.engine, r.voice = narration.engine, narration.voice
    r.synthesized, r.cache_hits, r.notes = narration.synthesized, narration.cache_hits, list(narration.notes)
    r.length_ms, r.loudness = entry.get("length_ms"), entry.get("loudness")
    r.programme_loudness = entry.get("programme_loudness")
    r.details.append(f"narrated to the same clips as {r.mp3.name} was made from: nothing rendered")
    if not r.checks:  # what its sound checks found when it was built
        skipped_checks(r, entry.get("checks") or [], False)
    with lock:
        manifest[job.slug] = {**entry, "choice": job.choice}
    job.refreshed, r.status = True, "skipped"
    return True


def retag_job(job: Job, settings: OutputSettings, config: LibraryConfig, manifest: dict, lock: threading.Lock,
              narration: Narration | None = None) -> bool:
    """Rewrite the tags and side files of a session whose audio is unchanged (its title, album, track
    n/total, cover or ID3 version changed): nothing is narrated, rendered or encoded, and the MP3's audio
    frames stay byte for byte. The new tag goes into a copy that then replaces the MP3 (readers see the
    old file or the new one). The chapters, lyrics and transcripts come from the sidecar timeline, which
    the unchanged audio fingerprint vouches for. False when that sidecar cannot be used (render instead).
    """
    r, entry = job.result, job.previous or {}
    if wants_outputs(session_output(settings, job.routine)):
        return False  # M4B, Opus, step files and stems are tagged as they are written: render them again
    folder = r.mp3.parent
    try:
        stored = json.loads((folder / f"{job.slug}.json").read_text("utf-8"))
        chapters = [ChapterMark(str(c["title"]), int(c["start_ms"]), int(c["end_ms"])) for c in stored["chapters"]]
        int(stored["length_ms"])
        if not isinstance(stored.get("events"), list):
            return False
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return False
    routine = job.routine
    settings = session_output(settings, routine)
    first_built = entry.get("first_built") or stored.get("first_built") or int(time.time())
    try:
        tags = tag_info(job, routine, config, stored, first_built)
        files = side_files(job, routine, stored, tags, keep_cover=True)
        with atomic_path(r.mp3) as tmp:
            shutil.copyfile(r.mp3, tmp)
            write_tags(tmp, tags, chapters, version=settings.id3)
        write_side_files(folder, files)
        for key in ("cover", "thumb", "lrc", "vtt", "srt"):
            stored.pop(key, None)
        stored.update({
            "title": job.title, "slug": job.slug, "mp3": r.mp3.name, "description": routine.description,
            "album": config.album, "artist": tags.artist, "track": job.track, "variant": r.variant,
            "language": routine.language, "source": job.source.name, "audiogen": __version__,
            "first_built": first_built, **extras(files),
        })
        write_text(folder / f"{job.slug}.json", json.dumps(stored, indent=1, ensure_ascii=False) + "\n")
    except AudiogenError as e:
        r.status, r.error = "failed", e
        return True
    if narration is not None:
        r.engine, r.voice = narration.engine, narration.voice
        r.synthesized, r.cache_hits, r.notes = narration.synthesized, narration.cache_hits, list(narration.notes)
        if not r.checks:  # decided after narration: what its sound checks found when it was built
            skipped_checks(r, entry.get("checks") or [], False)
    else:
        r.engine, r.voice = entry.get("engine"), entry.get("voice")
    r.length_ms, r.loudness = entry.get("length_ms", stored.get("length_ms")), entry.get("loudness")
    r.programme_loudness = entry.get("programme_loudness")
    r.details.append("audio unchanged: retagged " + ", ".join([r.mp3.name, f"{job.slug}.json", *files]))
    with lock:
        manifest[job.slug] = {**entry, "source": str(job.source.resolve()), "first_built": first_built,
                              "tags": job.tag_fingerprint, "choice": job.choice,
                              "clips": clips_fingerprint(narration.keys) if narration else entry.get("clips")}
    r.status = "retagged"
    return True


def _drawn_cover(path: Path | None, title: str, subtitle: str | None) -> tuple[bytes, str, tuple | None]:
    """The cover drawn for a session, and its thumbnail when drawn with it: the one already beside it when it
    is that drawing (a retag for a new track total keeps it; no thumbnail then), else drawn anew."""
    from audiogen.publish.cover import cover_matches, make_cover_and_thumbnail

    try:
        data = path.read_bytes() if path is not None else b""
        if data and cover_matches(data, title, subtitle):
            return data, ".png", None
    except OSError:
        pass
    png, thumb = make_cover_and_thumbnail(title, subtitle)
    return png, ".png", thumb

