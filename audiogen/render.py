"""Mixing a planned session into PCM blocks and streaming them into the MP3 encoder.

Time is linear in session length and memory is bounded: the mix is made block by block, clips are
loaded when they start and dropped when they end, and nothing holds the whole session.
"""

from __future__ import annotations

import bisect
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import OutputError, RenderError
from .ffmpeg import INTERNAL_RATE, ffmpeg_exe
from .planner import Event, Plan

BLOCK_SAMPLES = INTERNAL_RATE * 5
#: Ducking ramps: the bed starts dipping this long before speech and recovers this long after.
DUCK_ATTACK_MS = 250
DUCK_RELEASE_MS = 600


@dataclass
class Bed:
    """A seamless loop (float32, at the speech reference level) and how to play it."""

    loop: np.ndarray
    volume_db: float
    duck_db: float
    fade_in_ms: int
    fade_out_ms: int


def ms_to_samples(ms: float) -> int:
    return int(round(ms * INTERNAL_RATE / 1000))


class _DuckEnvelope:
    """How far (0..1) the bed is ducked at each sample: trapezoids around merged speech intervals."""

    def __init__(self, events: list[Event]) -> None:
        a, r = ms_to_samples(DUCK_ATTACK_MS), ms_to_samples(DUCK_RELEASE_MS)
        spans: list[list[int]] = []
        for e in sorted((e for e in events if e.kind == "speech"), key=lambda e: e.start_ms):
            s, t = ms_to_samples(e.start_ms), ms_to_samples(e.end_ms)
            if spans and s - a <= spans[-1][1] + r:  # ramps would touch: one longer duck
                spans[-1][1] = max(spans[-1][1], t)
            else:
                spans.append([s, t])
        self.spans = spans
        self.ends = [t + r for _, t in spans]
        self.a, self.r = a, r

    def amount(self, b0: int, b1: int) -> np.ndarray:
        out = np.zeros(b1 - b0, dtype=np.float32)
        i = bisect.bisect_left(self.ends, b0)
        idx = None
        while i < len(self.spans) and self.spans[i][0] - self.a < b1:
            s, t = self.spans[i]
            if idx is None:
                idx = np.arange(b0, b1, dtype=np.float64)
            up = np.clip((idx - (s - self.a)) / self.a, 0.0, 1.0)
            down = np.clip(((t + self.r) - idx) / self.r, 0.0, 1.0)
            np.maximum(out, np.minimum(up, down).astype(np.float32), out=out)
            i += 1
        return out


def mix_parts(
    plan: Plan,
    load: Callable[[Event], np.ndarray],
    bed: Bed | None = None,
    *,
    block: int = BLOCK_SAMPLES,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Yield (voice and cues, bed) float32 mono blocks at INTERNAL_RATE, exactly plan.length_ms long."""
    total = ms_to_samples(plan.length_ms)
    audible = sorted((e for e in plan.events if e.kind in ("speech", "cue")), key=lambda e: e.start_ms)
    starts = [ms_to_samples(e.start_ms) for e in audible]
    duck = _DuckEnvelope(audible) if bed is not None else None
    active: list[tuple[int, np.ndarray]] = []  # (start sample, samples)
    nxt = 0
    if bed is not None:
        loop = bed.loop.astype(np.float32)
        fade_in, fade_out = ms_to_samples(bed.fade_in_ms), ms_to_samples(bed.fade_out_ms)
        level, depth = bed.volume_db, bed.duck_db
    for b0 in range(0, total, block):
        b1 = min(total, b0 + block)
        voice = np.zeros(b1 - b0, dtype=np.float32)
        under = None
        if bed is not None:
            idx = np.arange(b0, b1)
            gain = np.power(10.0, (level + depth * duck.amount(b0, b1)) / 20.0, dtype=np.float32)
            if fade_in:
                gain *= np.clip(idx / fade_in, 0.0, 1.0).astype(np.float32)
            if fade_out:
                gain *= np.clip((total - idx) / fade_out, 0.0, 1.0).astype(np.float32)
            under = loop[idx % len(loop)] * gain
        while nxt < len(audible) and starts[nxt] < b1:
            active.append((starts[nxt], load(audible[nxt])))
            nxt += 1
        still = []
        for s, x in active:
            lo, hi = max(s, b0), min(s + len(x), b1)
            if hi > lo:
                voice[lo - b0 : hi - b0] += x[lo - s : hi - s]
            if s + len(x) > b1:
                still.append((s, x))
        active = still
        yield voice, under


def mix_blocks(
    plan: Plan,
    load: Callable[[Event], np.ndarray],
    bed: Bed | None = None,
    *,
    gain_db: float = 0.0,
    bed_gain_db: float = 0.0,
    block: int = BLOCK_SAMPLES,
) -> Iterator[np.ndarray]:
    """Yield the session mix (voice + bed) as float32 blocks; `gain_db` on all, `bed_gain_db` on the bed."""
    master = np.float32(10 ** (gain_db / 20))
    bed_gain = np.float32(10 ** (bed_gain_db / 20))
    for voice, under in mix_parts(plan, load, bed, block=block):
        out = voice if under is None else voice + (under * bed_gain if bed_gain_db else under)
        if gain_db:
            out *= master
        yield out


def to_int16(block: np.ndarray) -> bytes:
    return (np.clip(block, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()


def encode_mp3(
    blocks: Iterable[np.ndarray],
    out_path: str | Path,
    *,
    bitrate: str = "96k",
    channels: int = 1,
    sample_rate: int = 44100,
) -> None:
    """Stream float32 mono blocks into ffmpeg's LAME encoder, writing `out_path` (no tags)."""
    args = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "s16le", "-ar", str(INTERNAL_RATE), "-ac", "1", "-i", "pipe:0",
        "-map_metadata", "-1", "-id3v2_version", "0", "-write_xing", "1",
        "-c:a", "libmp3lame", "-b:a", str(bitrate), "-ac", str(channels), "-ar", str(sample_rate),
        "-f", "mp3", str(out_path),
    ]
    # its own process group: Ctrl-C reaches audiogen, which stops the encoder itself and removes its file
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0)
    # A writer thread feeds the encoder while the next blocks are mixed: the two overlap on two cores.
    # The queue is short, so memory stays at a few blocks whatever the session length.
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    failure: list[BaseException] = []

    def writer() -> None:
        try:
            while (data := pending.get()) is not None:
                if not failure:
                    proc.stdin.write(data)
            proc.stdin.close()
        except BaseException as e:  # BrokenPipe: ffmpeg died; its stderr says why
            failure.append(e)
            while pending.get() is not None:
                pass

    thread = threading.Thread(target=writer, name="mp3-writer", daemon=True)
    thread.start()
    try:
        for block in blocks:
            pending.put(to_int16(block))
            if failure:
                break
        pending.put(None)
        thread.join()
    except BaseException:
        proc.kill()
        pending.put(None)
        proc.wait()
        raise
    err = proc.stderr.read().decode("utf-8", "replace").strip()
    rc = proc.wait()
    if rc != 0:
        if err:
            last = err.splitlines()[-1]
        elif rc == -signal.SIGXFSZ:
            last = "File too large (the file-size limit was reached)"
        else:
            last = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
        if rc == -signal.SIGXFSZ or any(s in err for s in ("No space left", "Permission denied", "Not a directory",
                                                            "File too large", "quota")):
            raise OutputError(f"cannot write {out_path}: {last}", path=str(out_path))
        raise RenderError(f"the MP3 encoder failed writing {out_path}: {last}", path=str(out_path))
