"""A session's files beyond the one MP3: every format in `output.format` from one render, the per-step
files of `output.split: steps` and the stems of `output.stems`, each put in place atomically.

The session is mixed once: the blocks go to every encoder at once (audio.session.render_outputs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

from audiogen.audio.encode import EXTENSIONS
from audiogen.audio.mix import ms_to_samples
from audiogen.audio.session import Loudness, Outputs, render_outputs
from audiogen.dsp.ffmpeg import INTERNAL_RATE
from audiogen.publish.formats import write_format_tags
from audiogen.publish.split import playlist_name, step_files, step_playlist, step_tags
from audiogen.publish.tags import ChapterMark
from audiogen.routine.atomic import atomic_path
from audiogen.routine.errors import OutputError
from audiogen.routine.library import OutputSettings

STEMS = ("voice", "bed")


def wants_outputs(settings: OutputSettings) -> bool:
    """Whether a session needs more than the one MP3 the classic path writes."""
    return list(settings.format) != ["mp3"] or settings.split != "none" or bool(settings.stems)


def format_names(slug: str, settings: OutputSettings) -> dict[str, str]:
    """The session's file name per format, in the order listed (the first is the one offered first)."""
    return {fmt: f"{slug}{EXTENSIONS[fmt]}" for fmt in settings.format}


def stem_names(slug: str, settings: OutputSettings) -> dict[str, str]:
    return {k: f"{slug}.{k}.wav" for k in STEMS} if settings.stems else {}


def render_session_outputs(job, prep, cancel: threading.Event | None = None) -> tuple[Loudness, dict]:
    """Render `prep` into every requested file beside `job.result.mp3`; returns the loudness and what was
    written (for the sidecar): {"files": {fmt: name}, "split": {...} | None, "stems": {...} | None}."""
    settings = prep.audio.settings
    out_dir = Path(job.result.mp3).parent
    names = format_names(job.slug, settings)
    stems = stem_names(job.slug, settings)
    chapters = [(c.title, c.start_ms, c.end_ms) for c in prep.plan.chapters]
    marks = [ChapterMark(*c) for c in chapters]
    split_fmt = settings.format[0]
    steps = []
    if settings.split == "steps":
        steps = step_files(prep.plan.chapters, ms_to_samples(prep.plan.length_ms), INTERNAL_RATE,
                           EXTENSIONS[split_fmt])
    tmp_dir: Path | None = None
    placed = False
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            tmps = {fmt: stack.enter_context(atomic_path(out_dir / name)) for fmt, name in names.items()}
            stem_tmps = {k: stack.enter_context(atomic_path(out_dir / name)) for k, name in stems.items()}
            split = None
            if steps:
                # not mkdtemp: its 0700 would hide the step files from a web server; mkdir applies the umask
                tmp_dir = out_dir / f".{job.slug}.split-{uuid.uuid4().hex[:12]}"
                tmp_dir.mkdir(0o777)
                split = (split_fmt, [tmp_dir / s.name for s in steps], [s.start for s in steps])
            measured = render_outputs(prep.audio, Outputs(tmps, chapters, split, stem_tmps or None), cancel)
            for fmt, tmp in tmps.items():
                write_format_tags(tmp, fmt, prep.tags, marks)
            if steps:
                for n, s in enumerate(steps, start=1):
                    write_format_tags(tmp_dir / s.name, split_fmt, step_tags(prep.tags, s, n, len(steps)), [])
                (tmp_dir / playlist_name(job.slug)).write_text(
                    step_playlist(job.title, prep.tags.artist, steps), encoding="utf-8")
                for p in tmp_dir.iterdir():
                    with open(p, "rb") as f:
                        os.fsync(f.fileno())
            placed = True  # leaving the block renames each file into place: a failure now may leave some
        # every file is in place; the step folder goes in last, replacing the old one
        split_info = None
        if steps:
            _replace_dir(tmp_dir, out_dir / job.slug)
            tmp_dir = None
            split_info = {"dir": job.slug, "format": split_fmt, "playlist": f"{job.slug}/{playlist_name(job.slug)}",
                          "files": [{"name": f"{job.slug}/{s.name}", "title": s.title, "start_ms": s.start_ms,
                                     "end_ms": s.end_ms} for s in steps]}
        return measured, {"files": names, "split": split_info, "stems": stems or None}
    except BaseException as e:
        if placed:  # a session is all its files or none
            remove_outputs(out_dir, {"files": names, "stems": stems})
        if isinstance(e, OSError):
            raise OutputError(f"cannot write to {out_dir}: {e.strerror or e}", path=str(out_dir)) from None
        raise
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)


def _replace_dir(new: Path, target: Path) -> None:
    """Put the folder `new` at `target`: the old one is moved aside first and removed after."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_outputs(out_dir: Path, written: dict | None) -> None:
    """Undo `render_session_outputs` (a session is all its files or none)."""
    for name in [*((written or {}).get("files") or {}).values(), *((written or {}).get("stems") or {}).values()]:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            (out_dir / name).unlink()
    split = (written or {}).get("split")
    if split:
        shutil.rmtree(out_dir / split["dir"], ignore_errors=True)
