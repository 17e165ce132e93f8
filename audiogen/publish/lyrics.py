"""Synced lyrics (LRC) from a session's timeline: what is said, and when.

Every speech event becomes one ``[mm:ss.xx]text`` line, timed from its start (rounded to the
nearest hundredth of a second, the LRC resolution). A chapter that begins before its first words
(a step opens with its cue sound) also gets a line with its title at its start, so a player that
shows lyrics names the step while the chime plays. Every chapter keeps its title line, also when
its first words start at the very moment the chapter does (an outro, a step without a cue): lines
with the same time are written title first, then the words, in the timeline's order.
"""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")


def lrc_time(ms: int | float) -> str:
    """``mm:ss.xx`` (minutes may exceed 59 and grow past two digits)."""
    cs = int(round(max(0, ms) / 10))
    minutes, cs = divmod(cs, 6000)
    seconds, cs = divmod(cs, 100)
    return f"{minutes:02d}:{seconds:02d}.{cs:02d}"


def _clean(text: object) -> str:
    """One line of text: whitespace collapsed, no line breaks (each would start a new LRC line)."""
    return _SPACE.sub(" ", str(text or "")).strip()


def _header_value(text: object) -> str:
    return _clean(text).replace("[", "(").replace("]", ")")


def make_lrc(timeline: dict) -> str:
    """LRC text for a timeline dict (the `<slug>.json` sidecar: title, length_ms, chapters, events,
    and, when present, artist, album, audiogen)."""
    out: list[str] = []
    title = _header_value(timeline.get("title"))
    if title:
        out.append(f"[ti:{title}]")
    for tag, key in (("ar", "artist"), ("al", "album")):
        value = _header_value(timeline.get(key))
        if value:
            out.append(f"[{tag}:{value}]")
    length_ms = int(timeline.get("length_ms") or 0)
    total_s = int(round(length_ms / 1000))
    out.append(f"[length:{total_s // 60:02d}:{total_s % 60:02d}]")
    version = _header_value(timeline.get("audiogen"))
    out.append(f"[re:audiogen{' ' + version if version else ''}]")

    speech = [e for e in timeline.get("events") or [] if e.get("kind") == "speech" and _clean(e.get("text"))]
    lines: list[tuple[int, int, str]] = []  # (centiseconds, order, text)
    for ch in timeline.get("chapters") or []:
        title = _clean(ch.get("title"))
        at = int(round(max(0, int(ch.get("start_ms", 0))) / 10))
        if title:
            lines.append((at, 0, title))
    for e in speech:
        lines.append((int(round(max(0, e["start_ms"]) / 10)), 1, _clean(e["text"])))
    lines.sort(key=lambda x: (x[0], x[1]))  # stable: equal times keep chapter, then timeline, order
    for cs, _, text in lines:
        out.append(f"[{lrc_time(cs * 10)}]{text}")
    return "\n".join(out) + "\n"


def lyrics_text(timeline: dict) -> str:
    """The session's spoken text, unsynced (the MP3's USLT lyrics): each phrase on its own line in the
    order it is said, a blank line between chapters."""
    blocks: dict[int, list[str]] = {}
    for e in timeline.get("events") or []:
        if e.get("kind") == "speech" and _clean(e.get("text")):
            blocks.setdefault(int(e.get("chapter") or 0), []).append(_clean(e["text"]))
    return "\n\n".join("\n".join(lines) for lines in blocks.values())
