"""Resampling in process with libsoxr (python-soxr): no ffmpeg process per clip.

Piper and espeak-ng speak at 22.05 kHz and every clip is kept at the internal rate. Starting ffmpeg to
resample one clip cost about 12 of the 16 ms a clip took to prepare; soxr's high-quality setting does
the same in well under a millisecond for a clip of a few seconds, in this process.
"""

from __future__ import annotations

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE


def resample(samples: np.ndarray, src_rate: int, rate: int = INTERNAL_RATE) -> np.ndarray:
    """Mono samples (int16 full scale, or float in [-1, 1]) at `src_rate` -> float32 in [-1, 1] at `rate`."""
    x = np.asarray(samples)
    x = x.astype(np.float32) / np.float32(32768.0) if x.dtype.kind in "iu" else x.astype(np.float32, copy=False)
    if int(src_rate) == int(rate) or not len(x):
        return x
    import soxr  # a C extension loaded only when a clip needs it (imports stay fast)

    return np.asarray(soxr.resample(x, int(src_rate), int(rate), quality="HQ"), dtype=np.float32)
