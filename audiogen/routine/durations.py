"""Parsing of the human-friendly durations and gains a routine is written with."""

from __future__ import annotations

import math
import re

_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)")
_UNITS = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*(?:ms|h|m|s))+\s*$")
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d+)?)$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")

DURATION_HELP = "write e.g. 45, 45s, 1.5s, 500ms, 1m, 1m30s or 1:30"
#: Longest duration any single value may have (a whole session is limited separately).
MAX_DURATION_MS = 24 * 3_600_000


def _show(value: object, limit: int = 60) -> str:
    """The value as written, shortened: error messages never echo a huge input back whole."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_duration(value: object) -> int:
    """Milliseconds for `45`, `45s`, `1.5s`, `500ms`, `1m`, `1m30s`, `1:30` (bare numbers are seconds).

    Raises ValueError quoting the value for anything else, including negative values.
    """
    try:
        ms = _duration_ms(value)
    except OverflowError:  # 400 digits: too large for a float, let alone for 24 h
        raise ValueError(f"duration {_show(value)} is longer than the 24 h limit") from None
    if ms > MAX_DURATION_MS:
        raise ValueError(f"duration {_show(value)} is longer than the 24 h limit")
    return ms


def _duration_ms(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {_show(value)}: {DURATION_HELP}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"invalid duration {_show(value)}: durations cannot be negative; {DURATION_HELP}")
        ms = round(value * 1000)
    elif isinstance(value, str):
        text = value.strip().lower()
        if _NUMBER.match(text):
            ms = round(float(text) * 1000)
        elif m := _CLOCK.match(text):
            hours, minutes, seconds = m.group(1), m.group(2), m.group(3)
            if float(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
                raise ValueError(f"invalid duration {_show(value)}: {DURATION_HELP}")
            ms = round(((int(hours or 0) * 60 + int(minutes)) * 60 + float(seconds)) * 1000)
        elif _UNITS.match(text):
            ms = round(sum(float(n) * _UNIT_MS[u] for n, u in _PART.findall(text)))
        else:
            raise ValueError(f"invalid duration {_show(value)}: {DURATION_HELP}")
    else:
        raise ValueError(f"invalid duration {_show(value)}: {DURATION_HELP}")
    return ms


_GAIN = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*(db)?$")


def parse_gain(value: object) -> float:
    """Decibels for `-18 dB`, `-18dB` or `-18`; between -60 and +12 dB."""
    if isinstance(value, bool):
        raise ValueError(f"invalid level {_show(value)}: write e.g. -18 dB")
    if isinstance(value, int | float):
        db = float(value) if abs(value) < 1e6 else math.inf  # float() of a 400-digit int overflows
    elif isinstance(value, str) and (m := _GAIN.match(value.strip().lower())):
        db = float(m.group(1))
    else:
        raise ValueError(f"invalid level {_show(value)}: write e.g. -18 dB")
    if not -60.0 <= db <= 12.0:
        raise ValueError(f"level {_show(value)} is out of range: use -60 dB .. +12 dB")
    return db


def format_ms(ms: int | float) -> str:
    """`m:ss.s` (or `h:mm:ss` from an hour on) for tables and messages, rounded half up to the unit shown.

    Rounding happens before the split into fields, so it carries: 59,960 ms is `1:00.0`, never `0:60.0`.
    """
    ms = int(round(ms))
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    tenths = (ms + 50) // 100
    if tenths < 36_000:  # under an hour once rounded to the tenth shown
        m, t = divmod(tenths, 600)
        return f"{sign}{m}:{t // 10:02d}.{t % 10}"
    h, rest = divmod((ms + 500) // 1000, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}"


def spoken_seconds(ms: int) -> str:
    """English words for a reminder time: 'Ten seconds', 'One minute', 'One minute thirty seconds'."""
    total = round(ms / 1000)
    m, s = divmod(total, 60)
    parts = []
    if m:
        parts.append(f"{number_words(m)} minute{'s' if m != 1 else ''}")
    if s or not m:
        parts.append(f"{number_words(s)} second{'s' if s != 1 else ''}")
    text = " ".join(parts)
    return text[0].upper() + text[1:]


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
        "sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """English words for 0..999 (digits beyond that)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" and {number_words(rest)}" if rest else "")
    return str(n)
