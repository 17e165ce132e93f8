"""The leveller's answer for a session, kept in the clip cache: a warm rebuild skips the loudness pre-pass.

`leveling.level_session` mixes the whole voice track once to measure it before the session is mixed into
the encoder (about half a second of the hour's render, spent before the encoder gets its first sample).
Its answer depends only on what is mixed: the plan's events and chapters, the samples each one plays (a
clip is named by its content-addressed cache key, a cue by a hash of its samples), the bed (a hash of its
loop, its level, duck and fades), the target, mode and ceiling, and the code that measures. All of that
is hashed into a key; the gains, the predicted loudness and what the early sound check found are kept
under it as a small JSON record (`<cache>/levels/<k[:2]>/<key>.json`, under 1 KB). A rebuild of the same
session (`--force`, a new bitrate, new tags) reads it back and renders the same samples as measuring
again would: the record is the measurement's own result, to the bit (floats round-trip through JSON).
Anything that changes the mix changes the key, and a session with a new key is measured as before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from audiogen._version import __version__
from audiogen.audio.checks import Finding
from audiogen.audio.leveling import LevelPlan

#: Bump when what a record holds changes meaning (old records are then ignored).
MEMO_FORMAT = 1


@functools.cache
def _code_digest() -> str:
    """A hash of the source of everything that measures, levels, mixes and checks: a record made by other
    code (an edited checkout, another release) is never taken for this code's answer."""
    here = Path(__file__).resolve().parent
    h = hashlib.blake2b(digest_size=16)
    for name in ("checks.py", "leveling.py", "mix.py", "session.py", "../dsp/limiter.py", "../dsp/loudness.py"):
        try:
            h.update((here / name).read_bytes())
        except OSError:  # (no source beside it: the release names the code)
            h.update(name.encode())
    return h.hexdigest()


def _samples_digest(x: np.ndarray) -> str:
    a = np.ascontiguousarray(x)
    return hashlib.blake2b(memoryview(a).cast("B"), digest_size=16).hexdigest() + f"/{a.dtype.str}/{len(a)}"


def level_key(audio, ceiling_db: float) -> tuple[Path, str] | None:
    """(cache root, key) of the leveller's answer for `audio` (a `session.SessionAudio`), or None when its
    clips do not come from a clip cache (a cluster worker's), or there is no loudness target."""
    clips, settings = audio.clips, audio.settings
    keys, cache = getattr(clips, "keys", None), getattr(clips, "cache", None)
    if settings.loudness is None or keys is None or cache is None:
        return None
    cue_ids: dict[str, str] = {}
    events = []
    for e in audio.plan.events:
        if e.kind == "speech":
            if e.clip not in keys:
                return None
            what = keys[e.clip]
        elif e.kind == "cue":
            if e.sound not in audio.cues:
                return None
            if e.sound not in cue_ids:
                cue_ids[e.sound] = _samples_digest(audio.cues[e.sound])
            what = cue_ids[e.sound]
        else:
            what = None
        events.append([e.kind, e.start_ms, e.end_ms, e.role, e.chapter, repr(float(e.tempo)), e.sound, what])
    bed = audio.bed
    ident = {
        "format": MEMO_FORMAT, "audiogen": __version__, "code": _code_digest(),
        "target": repr(float(settings.loudness)), "mode": settings.loudness_mode, "ceiling": repr(float(ceiling_db)),
        "length_ms": audio.plan.length_ms, "events": events,
        "chapters": [[c.title, c.start_ms, c.end_ms] for c in audio.plan.chapters],
        "bed": None if bed is None else [_samples_digest(bed.loop), repr(float(bed.volume_db)),
                                         repr(float(bed.duck_db)), bed.fade_in_ms, bed.fade_out_ms],
    }
    text = json.dumps(ident, ensure_ascii=False, separators=(",", ":"))
    return Path(cache.root), hashlib.sha256(text.encode("utf-8")).hexdigest()


def _path(root: Path, key: str) -> Path:
    return root / "levels" / key[:2] / f"{key}.json"


def recall(where: tuple[Path, str] | None) -> tuple[LevelPlan, list[Finding]] | None:
    """The answer kept under `where`, or None (none kept, or unreadable: then it is measured again)."""
    if where is None:
        return None
    path = _path(*where)
    try:
        data = json.loads(path.read_text("utf-8"))
        if data.get("format") != MEMO_FORMAT or data.get("key") != where[1]:
            return None
        level = LevelPlan(float(data["gain_db"]), float(data["bed_gain_db"]), _num(data["predicted"]),
                          _num(data["programme"]), bool(data["limited"]), float(data["limiter_db"]))
        early = [Finding(**f) for f in data["early"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    with contextlib.suppress(OSError):  # used now (as clips are: see ClipCache.touch)
        os.utime(path)
    return level, early


def remember(where: tuple[Path, str] | None, level: LevelPlan, early: list[Finding]) -> None:
    """Keep `level` and the early findings under `where` (atomically; a cache that cannot be written is
    left as it is: the next build measures again)."""
    if where is None:
        return
    from dataclasses import asdict

    from audiogen.routine.atomic import write_text
    from audiogen.routine.errors import AudiogenError

    record = {"format": MEMO_FORMAT, "key": where[1], "gain_db": float(level.gain_db),
              "bed_gain_db": float(level.bed_gain_db), "predicted": _out(level.predicted),
              "programme": _out(level.programme), "limited": bool(level.limited),
              "limiter_db": float(level.limiter_db), "early": [asdict(f) for f in early]}
    path = _path(*where)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(record, allow_nan=False) + "\n")
    except (OSError, ValueError, AudiogenError):
        pass


def _out(x: float | None) -> float | str | None:
    """A float for JSON: infinities and NaN (silence measured) as their names, which float() reads back."""
    return None if x is None else float(x) if np.isfinite(x) else repr(float(x))


def _num(x) -> float | None:
    return None if x is None else float(x)
