"""A clip as the cache keeps it: engine audio resampled to the internal rate, edges trimmed, levelled."""

from __future__ import annotations

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE, resample_pcm
from audiogen.dsp.limiter import limit_peaks
from audiogen.dsp.loudness import LoudnessMeter
from audiogen.dsp.resample import resample

#: Spoken clips are levelled to this loudness (LUFS; beds use it as their RMS reference) ...
SPEECH_LUFS = -20.0
#: ... and their peaks limited to 8 dB above it (like broadcast speech): a session that is mostly silence
#: still reaches -16 LUFS integrated with true peaks under -1 dBTP, and words stay clear on a phone speaker.
SPEECH_PEAK = 10 ** (-12 / 20)

def prepare_speech(samples: np.ndarray, rate: int, tempo: float = 1.0) -> np.ndarray:
    """Engine audio -> the cache's form: internal rate, edges trimmed to 30 ms, level normalised."""
    if abs(tempo - 1.0) > 1e-6:  # a tempo change needs ffmpeg's atempo (no engine asks for it today)
        x = resample_pcm(samples, rate, tempo=tempo).astype(np.float32) / 32768.0
    else:  # in process: starting ffmpeg was most of a clip's cost
        x = resample(samples, rate)
    loud = np.flatnonzero(np.abs(x) > 10 ** (-50 / 20))
    if len(loud):
        pad = int(0.03 * INTERNAL_RATE)
        x = x[max(0, loud[0] - pad) : loud[-1] + pad]
    level = _speech_level_db(x)
    if level is not None:
        # limiting lowers the level a little: correct the gain on the original until it lands
        gain = SPEECH_LUFS - level
        for _ in range(4):
            y = limit_peaks(x * (10 ** (gain / 20)), SPEECH_PEAK)
            got = _speech_level_db(y)
            if got is None or abs(got - SPEECH_LUFS) < 0.1:
                break
            gain += SPEECH_LUFS - got
        x = y
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def _speech_level_db(x: np.ndarray) -> float | None:
    """A clip's loudness (LUFS, gated like a whole programme); active-sample RMS for very short clips."""
    meter = LoudnessMeter()
    meter.add(x)
    lufs = meter.integrated()
    if np.isfinite(lufs):
        return lufs
    active = x[np.abs(x) > 10 ** (-45 / 20)]
    if not len(active):
        return None
    return 20 * np.log10(float(np.sqrt(np.mean(active**2))))
