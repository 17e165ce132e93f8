"""One file per chapter (`output.split: steps`): where the cuts fall, what the files are called and
tagged, and the per-session playlist that lists them in order.

The cuts fall on the sample where each chapter starts in the PCM the whole session is encoded from,
so the step files, decoded and joined, are the session again (MP3 carries LAME's encoder delay and
padding in its Xing/LAME header, which decoders use to trim: ffmpeg's does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from audiogen.publish.sessions import one_line
from audiogen.publish.tags import TagInfo
from audiogen.routine.slug import slugify


@dataclass(frozen=True)
class StepFile:
    """One chapter's file: its name inside the session's folder, its title, and its span in samples."""

    name: str
    title: str
    start: int  # first sample (at the internal rate)
    end: int  # one past the last
    start_ms: int
    end_ms: int


def step_files(chapters: Sequence, total_samples: int, rate: int, ext: str = ".mp3") -> list[StepFile]:
    """`<nn>-<step-slug><ext>` per chapter, cut where each chapter starts (the first from 0, the last to the
    end of the session: a gap between chapters belongs to the one before it)."""
    width = max(2, len(str(len(chapters))))
    cuts = [0] + [int(round(c.start_ms * rate / 1000)) for c in chapters[1:]]
    ends = cuts[1:] + [total_samples]
    files = []
    for i, (c, s, e) in enumerate(zip(chapters, cuts, ends, strict=True), start=1):
        name = f"{i:0{width}d}-{slugify(c.title, fallback='chapter')}{ext}"
        files.append(StepFile(name, c.title, s, e, int(round(s * 1000 / rate)), int(round(e * 1000 / rate))))
    return [f for f in files if f.end > f.start]


def step_tags(session: TagInfo, step: StepFile, n: int, total: int) -> TagInfo:
    """A step file's tags: its chapter's title, track n of total within the session, the session as album."""
    return replace(session, title=step.title, album=session.title, track=n, track_total=total, lyrics=None)


def step_playlist(session_title: str, artist: str | None, steps: Sequence[StepFile]) -> str:
    """The session's `.m3u8`: extended M3U in UTF-8, the step files (relative names) in order."""
    lines = ["#EXTM3U", f"#PLAYLIST:{one_line(session_title)}"]
    who = one_line(artist or "audiogen")
    for s in steps:
        lines.append(f"#EXTINF:{int(round((s.end_ms - s.start_ms) / 1000))},{who} - {one_line(s.title)}")
        lines.append(s.name)
    return "\n".join(lines) + "\n"


def playlist_name(slug: str) -> str:
    return f"{slug}.m3u8"


def split_dir(out_dir: Path, slug: str) -> Path:
    return Path(out_dir) / slug
