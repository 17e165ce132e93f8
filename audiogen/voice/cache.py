"""Content-addressed clip cache: 16-bit mono WAV at the internal rate, shared by every routine."""

from __future__ import annotations

import contextlib
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
    #: When the least recently used clip was last used (seconds since the epoch; None: no clips).
    oldest_use: float | None = None
    newest_use: float | None = None


@dataclass
class PruneResult:
    """What `ClipCache.prune` did: clips removed and kept, bytes freed and left, and the clips it kept
    over the limit because a running build is using them."""

    removed: int
    freed: int
    kept: int
    bytes: int
    in_use: int


#: Sizes as `cache prune --max-size` takes them: decimal units (MB = 10^6 bytes) and binary ones (MiB).
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int:
    """`500MB`, `1.5 GB`, `200MiB`, `0` -> bytes; ValueError (saying what is accepted) otherwise."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size: use a number and a unit, like 500MB, 2GB or 300MiB")
    return int(float(m.group(1)) * _UNITS[unit])


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
        self.touch(key)  # found for a build (or a check): in use
        return samples_to_ms(frames, rate)

    def touch(self, key: str) -> None:
        """Record that a clip was used now (its mtime): `prune` removes the least recently used first."""
        try:
            os.utime(self.path(key))
        except OSError:  # gone, or a read-only cache: nothing to record
            pass

    def has(self, key: str) -> bool:
        return self.length_ms(key) is not None

    def load(self, key: str) -> np.ndarray:
        """Mono int16 samples at INTERNAL_RATE (a use: see `touch`)."""
        self.touch(key)
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
        uses = []
        for p in (self.root / "clips").glob("*/*.wav"):
            try:
                st = p.stat()
            except OSError:  # removed meanwhile
                continue
            clips += 1
            total += st.st_size
            frames += max(0, (st.st_size - 44) // 2)
            uses.append(st.st_mtime)
        return CacheInfo(self.root, clips, total, frames / INTERNAL_RATE, min(uses, default=None),
                         max(uses, default=None))

    # -- use by builds, and pruning ---------------------------------------------------------------
    @contextlib.contextmanager
    def in_use(self):
        """Held by a build for its whole run: a lock file under `<root>/builds/` with the time it started.

        `prune` never removes a clip used since the oldest running build started (builds touch every
        clip they find or make), so a build never loses a clip it planned with to a prune beside it."""
        import fcntl
        import time
        import uuid

        folder = self.root / "builds"
        fd = None
        for _ in range(100):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.lock"
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            except OSError:  # a read-only or unwritable cache: nothing to protect, nothing to prune
                break
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, str(time.time_ns()).encode())
            try:  # a prune may have taken the file, still unlocked, for a stale one: then make another
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
            fd = None
        try:
            yield
        finally:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                os.close(fd)

    def _running_since(self) -> int | None:
        """When the oldest running build started (ns since the epoch), or None; removes stale lock files."""
        import fcntl

        oldest = None
        for p in (self.root / "builds").glob("*.lock"):
            try:
                fd = os.open(p, os.O_RDONLY)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # held: a build is running
                    data = os.read(fd, 32)
                    started = int(data) if data.strip().isdigit() else os.fstat(fd).st_mtime_ns
                    oldest = started if oldest is None else min(oldest, started)
                    continue
                with contextlib.suppress(OSError):  # its build is gone (killed): stale
                    p.unlink()
            finally:
                os.close(fd)
        return oldest

    def prune(self, max_bytes: int) -> PruneResult:
        """Remove the least recently used clips until the cache holds at most `max_bytes`.

        A clip used since the oldest running build started is kept even over the limit (reported as
        `in_use`): that build may still load it."""
        entries = []
        for p in (self.root / "clips").glob("*/*.wav"):
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append((st.st_mtime_ns, st.st_size, p))
        entries.sort(key=lambda e: (e[0], str(e[2])), reverse=True)  # most recently used first
        since = self._running_since()
        kept = size = removed = freed = busy = 0
        full = False  # once a clip does not fit, every older one goes too (least recently used first)
        for used, nbytes, p in entries:
            if not full and size + nbytes <= max_bytes:
                kept, size = kept + 1, size + nbytes
                continue
            full = True
            try:
                used = p.stat().st_mtime_ns  # a build may have just touched it
            except OSError:
                continue
            if since is not None and used >= since:
                kept, size, busy = kept + 1, size + nbytes, busy + 1
                continue
            try:
                p.unlink()
            except OSError:
                kept, size = kept + 1, size + nbytes
                continue
            removed, freed = removed + 1, freed + nbytes
        if full:  # the leveller's records (audio/levelmemo.py) go with the clips they were measured on
            bounds = [u for u, _, p in entries if p.exists()] + ([since] if since is not None else [])
            self._prune_levels(min(bounds) if bounds else None)
        return PruneResult(removed, freed, kept, size, busy)

    def _prune_levels(self, before_ns: int | None) -> None:
        """Remove the level records (`<root>/levels/`, under 1 KB each) last used before `before_ns`, or all
        of them (None): a record outliving its clips would only be read for a session whose clips are made
        again, which gives them the same keys, so it is never wrong, only kept too long."""
        for p in (self.root / "levels").glob("*/*.json"):
            try:
                if before_ns is None or p.stat().st_mtime_ns < before_ns:
                    p.unlink()
            except OSError:
                continue

    def clear(self) -> int:
        """Delete every cached clip (and the leveller's records); returns how many clips were removed."""
        n = self.info().clips
        shutil.rmtree(self.root / "clips", ignore_errors=True)
        shutil.rmtree(self.root / "levels", ignore_errors=True)
        return n
