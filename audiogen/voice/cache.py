"""Content-addressed clip cache: 16-bit mono WAV at the internal rate, shared by every routine."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE, samples_to_ms
from audiogen.routine.atomic import atomic_path, sweep_orphans

#: Bump when the stored audio changes meaning (normalisation, rate): old entries are then ignored.
CACHE_FORMAT = 5


def default_cache_dir() -> Path:
    """`AUDIOGEN_CACHE_DIR`, else the platform's user cache folder."""
    env = os.environ.get("AUDIOGEN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("audiogen", appauthor=False))


def clip_key(engine: str, engine_version: str, voice: str, language: str, speed: float, text: str) -> str:
    """The cache key of one synthesised phrase: a hash of everything that changes its audio."""
    ident = json.dumps(
        [CACHE_FORMAT, engine, engine_version, voice, language, round(float(speed), 3), text],
        ensure_ascii=False,
    )
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()


@dataclass
class CacheInfo:
    root: Path
    clips: int
    bytes: int
    seconds: float


class ClipCache:
    """Clips stored as `<root>/clips/<k[:2]>/<key>.wav`; writes are atomic, reads need no decoding."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else default_cache_dir()
        self._swept = False

    def path(self, key: str) -> Path:
        return self.root / "clips" / key[:2] / f"{key}.wav"

    def length_ms(self, key: str) -> int | None:
        """Length of a cached clip from its WAV header, or None if absent, unreadable or damaged (a clip of
        another format, or with fewer samples than its header says): such a clip is made again."""
        p = self.path(key)
        try:
            with wave.open(str(p), "rb") as w:
                frames, rate = w.getnframes(), w.getframerate()
                if (w.getnchannels(), w.getsampwidth(), rate) != (1, 2, INTERNAL_RATE) or not frames:
                    return None
                w.setpos(frames - 1)  # the last sample the header promises must be there
                if len(w.readframes(1)) != 2:
                    return None
        except (FileNotFoundError, wave.Error, EOFError, OSError):
            return None
        return samples_to_ms(frames, rate)

    def has(self, key: str) -> bool:
        return self.length_ms(key) is not None

    def load(self, key: str) -> np.ndarray:
        """Mono int16 samples at INTERNAL_RATE."""
        with wave.open(str(self.path(key)), "rb") as w:
            if w.getframerate() != INTERNAL_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise wave.Error("unexpected clip format")
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)

    def put(self, key: str, samples: np.ndarray) -> Path:
        """Store mono int16 samples at INTERNAL_RATE, atomically (no half-written entry is ever visible)."""
        target = self.path(key)
        if not getattr(self, "_swept", False):  # first clip: killed syntheses' temp files in every folder
            self._swept = True
            for folder in (self.root / "clips").glob("??"):
                sweep_orphans(folder)
        sweep_orphans(target.parent)  # temp files of a synthesis that was killed
        with atomic_path(target) as tmp:
            with wave.open(str(tmp), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(INTERNAL_RATE)
                w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
        return target

    def info(self) -> CacheInfo:
        clips = total = 0
        frames = 0
        for p in (self.root / "clips").glob("*/*.wav"):
            clips += 1
            total += p.stat().st_size
            frames += max(0, (p.stat().st_size - 44) // 2)
        return CacheInfo(self.root, clips, total, frames / INTERNAL_RATE)

    def clear(self) -> int:
        """Delete every cached clip; returns how many were removed."""
        n = self.info().clips
        shutil.rmtree(self.root / "clips", ignore_errors=True)
        return n
