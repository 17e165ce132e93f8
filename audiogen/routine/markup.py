"""Inline markup in spoken text: `[pause 2s]` inserts silence, `[cue bell]` plays a cue sound."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from audiogen.routine.durations import parse_duration

_TAG = re.compile(r"\[([^\[\]]*)\]")
_COMMANDS = ("pause", "cue")


@dataclass(frozen=True)
class Speech:
    text: str


@dataclass(frozen=True)
class Pause:
    ms: int


@dataclass(frozen=True)
class CueMark:
    sound: str


Segment = Speech | Pause | CueMark


def parse_markup(text: str) -> list[Segment]:
    """Split spoken text into speech, pauses and cues. Raises ValueError on unknown or malformed markup."""
    segments: list[Segment] = []
    pos = 0
    for m in _TAG.finditer(text):
        _add_speech(segments, text[pos : m.start()])
        pos = m.end()
        inner = m.group(1).strip()
        command, _, arg = inner.partition(" ")
        command, arg = command.lower(), arg.strip()
        if command == "pause":
            if not arg:
                raise ValueError(f"[{inner}] needs a length, e.g. [pause 2s]")
            segments.append(Pause(parse_duration(arg)))
        elif command == "cue":
            if not arg:
                raise ValueError(f"[{inner}] needs a sound, e.g. [cue bell]")
            segments.append(CueMark(arg))
        else:
            close = difflib.get_close_matches(command, _COMMANDS, n=1)
            hint = f"did you mean [{close[0]} {arg}]?" if close else "markup is [pause 2s] or [cue bell]"
            raise ValueError(f"unknown markup [{inner}]: {hint}")
    _add_speech(segments, text[pos:])
    if "[" in _TAG.sub("", text) or "]" in _TAG.sub("", text):
        raise ValueError("unbalanced [ or ] in text: markup is [pause 2s] or [cue bell]")
    return segments


def _add_speech(segments: list[Segment], chunk: str) -> None:
    chunk = " ".join(chunk.split())
    if chunk and any(c.isalnum() for c in chunk):
        segments.append(Speech(chunk))

