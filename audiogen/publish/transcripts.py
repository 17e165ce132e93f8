"""Transcripts (WebVTT and SubRip) from a session's timeline: every spoken phrase, with its exact times.

Pure functions: the timeline dict (the `<slug>.json` sidecar, or `Plan.to_dict()`) in, text out.

Each speech event becomes one cue, from its start to its end (to the millisecond), carrying what was
said: the phrase's text on one line, without audiogen markup. Cues are in order of start time (then
end time), as WebVTT requires; cues that overlap in the timeline overlap in the file too (both
formats allow it). A cue that would not last (end at or before its start) lasts one millisecond.

WebVTT: each chapter's title is a ``NOTE`` block just before the first cue that starts at or after
the chapter's start (a chapter without words still gets its note, in time order). Cue text escapes
``&``, ``<`` and ``>`` as character references, so no text is taken for a tag and no cue contains
``-->``; a note cannot be escaped, so an arrow in a title is written ``->``.

SubRip has no escapes and no comments: the cues are numbered from 1 and carry the text as spoken
(an arrow ``-->`` written ``->`` so that no line looks like a timing line); chapters are left out.
"""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MARKUP = re.compile(r"\[\s*(?:pause|cue)(?:\s[^\[\]]*)?\]", re.IGNORECASE)
_ARROW = re.compile(r"-{2,}>")


def _clean(text: object) -> str:
    """One line of spoken text: markup and control characters out, whitespace collapsed."""
    text = _MARKUP.sub(" ", str(text or ""))
    return _SPACE.sub(" ", _CONTROL.sub("", text)).strip()


def _ms(value: object) -> int:
    try:
        return max(0, int(round(float(value))))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def _clock(ms: int, sep: str) -> str:
    """``HH:MM:SS<sep>mmm`` (hours grow past two digits if they must)."""
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{sep}{millis:03d}"


def vtt_time(ms: int | float) -> str:
    """A WebVTT timestamp, ``HH:MM:SS.mmm``."""
    return _clock(_ms(ms), ".")


def srt_time(ms: int | float) -> str:
    """A SubRip timestamp, ``HH:MM:SS,mmm``."""
    return _clock(_ms(ms), ",")


def cues(timeline: dict) -> list[tuple[int, int, str]]:
    """(start_ms, end_ms, text) of every spoken phrase, in order of start then end time."""
    out = []
    for e in timeline.get("events") or []:
        if e.get("kind") != "speech":
            continue
        text = _clean(e.get("text"))
        if not text:
            continue
        start = _ms(e.get("start_ms"))
        end = max(_ms(e.get("end_ms")), start + 1)
        out.append((start, end, text))
    out.sort(key=lambda c: (c[0], c[1]))  # stable: phrases at the same times keep the timeline's order
    return out


def vtt_escape(text: str) -> str:
    """Cue text as WebVTT reads it back literally (``&``, ``<`` and ``>`` as character references)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _note(text: object) -> str:
    return _ARROW.sub("->", _SPACE.sub(" ", _CONTROL.sub("", str(text or ""))).strip())


def make_vtt(timeline: dict) -> str:
    """WebVTT text for a timeline dict."""
    chapters = sorted(
        ((_ms(c.get("start_ms")), i, _note(c.get("title"))) for i, c in enumerate(timeline.get("chapters") or [])),
    )
    notes = [(at, title) for at, _, title in chapters if title]
    blocks = ["WEBVTT"]
    n = 0
    for start, end, text in cues(timeline):
        while n < len(notes) and notes[n][0] <= start:
            blocks.append(f"NOTE {notes[n][1]}")
            n += 1
        blocks.append(f"{vtt_time(start)} --> {vtt_time(end)}\n{vtt_escape(text)}")
    blocks += [f"NOTE {title}" for _, title in notes[n:]]
    return "\n\n".join(blocks) + "\n"


def make_srt(timeline: dict) -> str:
    """SubRip text for a timeline dict (empty when nothing is said)."""
    blocks = [
        f"{i}\n{srt_time(start)} --> {srt_time(end)}\n{_ARROW.sub('->', text)}"
        for i, (start, end, text) in enumerate(cues(timeline), 1)
    ]
    return "".join(b + "\n\n" for b in blocks)
