"""The one place that knows where ffmpeg is (bundled by imageio-ffmpeg) and how to call it."""

from __future__ import annotations

import functools
import subprocess

import numpy as np

from audiogen.routine.errors import RenderError, SoundError

#: Every clip and sound is kept and mixed at this rate, mono; ffmpeg resamples on output.
INTERNAL_RATE = 44100


def samples_to_ms(n: int, rate: int = INTERNAL_RATE) -> int:
    """How many whole milliseconds `n` samples last, rounded up (what the planner is given for a sound)."""
    return int(np.ceil(n * 1000 / rate))


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the bundled static ffmpeg (imageio-ffmpeg's; there is no ffprobe beside it)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(args: list[str], data: bytes | None, what: str, error=RenderError) -> bytes:
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args],
        input=data,
        capture_output=True,
    )
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise error(f"ffmpeg could not {what}: {detail[-1] if detail else 'exit ' + str(proc.returncode)}")
    return proc.stdout


def atempo_chain(tempo: float) -> list[str]:
    """ffmpeg `atempo` filters for a pitch-preserving tempo change (each instance takes 0.5-2.0)."""
    filters = []
    t = float(tempo)
    while t > 2.0:
        filters.append("atempo=2.0")
        t /= 2.0
    while t < 0.5:
        filters.append("atempo=0.5")
        t /= 0.5
    if abs(t - 1.0) > 1e-6:
        filters.append(f"atempo={t:.6f}")
    return filters


def decode_bytes(data: bytes, fmt: str | None = None, *, tempo: float = 1.0, rate: int = INTERNAL_RATE,
                 what: str = "decode audio") -> np.ndarray:
    """Decode encoded audio (mp3, wav, ...) from memory to mono int16 at `rate`, optionally re-tempoed."""
    args = []
    if fmt:
        args += ["-f", fmt]
    args += ["-i", "pipe:0"]
    filters = atempo_chain(tempo)
    if filters:
        args += ["-af", ",".join(filters)]
    args += ["-ac", "1", "-ar", str(rate), "-f", "s16le", "pipe:1"]
    return np.frombuffer(_run(args, data, what, SoundError), dtype=np.int16).copy()


def decode_file(path: str, *, rate: int = INTERNAL_RATE) -> np.ndarray:
    """Decode any audio file ffmpeg reads to mono int16 at `rate` (no ffprobe needed)."""
    args = ["-i", str(path), "-ac", "1", "-ar", str(rate), "-f", "s16le", "pipe:1"]
    return np.frombuffer(_run(args, None, f"decode {path}", SoundError), dtype=np.int16).copy()


def resample_pcm(samples: np.ndarray, src_rate: int, *, tempo: float = 1.0,
                 rate: int = INTERNAL_RATE) -> np.ndarray:
    """Resample (and optionally re-tempo) mono int16 PCM with ffmpeg's resampler."""
    if src_rate == rate and abs(tempo - 1.0) < 1e-6:
        return np.asarray(samples, dtype=np.int16)
    args = ["-f", "s16le", "-ar", str(src_rate), "-ac", "1", "-i", "pipe:0"]
    filters = atempo_chain(tempo)
    if filters:
        args += ["-af", ",".join(filters)]
    args += ["-ac", "1", "-ar", str(rate), "-f", "s16le", "pipe:1"]
    out = _run(args, np.asarray(samples, dtype="<i2").tobytes(), "resample audio")
    return np.frombuffer(out, dtype=np.int16).copy()
