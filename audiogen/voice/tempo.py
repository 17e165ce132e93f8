"""Speech sped up to fit its slot (`fit: true`): ffmpeg's `atempo`, pitch preserved, kept in the clip cache.

`atempo` (WSOLA-style time stretching in the bundled ffmpeg) already gives `voice.speed` its tempo, so a
fitted clip sounds like the rest of the voice, and no new dependency is needed: the time-stretch libraries
on PyPI are unmaintained (audiotsm, last release 2017), large (librosa's phase vocoder smears speech), or
need a binary we do not ship (pyrubberband needs rubberband).
"""

from __future__ import annotations

import hashlib

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE, resample_pcm


def tempo_key(clip_key: str, tempo: float) -> str:
    """The cache key of a clip played `tempo` times faster: its own key and the tempo (to 0.001)."""
    return hashlib.sha256(f"{clip_key}|tempo={round(float(tempo), 3):.3f}".encode()).hexdigest()


def stretch_clip(samples: np.ndarray, tempo: float) -> np.ndarray:
    """Mono int16 samples at INTERNAL_RATE, `tempo` times faster with their pitch kept."""
    return resample_pcm(np.asarray(samples, dtype=np.int16), INTERNAL_RATE, tempo=tempo)
