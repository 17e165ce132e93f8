"""Pace tones for breathing steps: a soft tone that glides up through an inhale and down through an exhale.

Generated at render time (numpy), exactly as long as its phase, so a listener can follow the breathing with
no words. The tone starts on the phase's first sample with a short attack, and fades out to silence a little
before the phase ends, so each phase's onset is clean (and measurable) even when phases follow each other
without a hold.
"""

from __future__ import annotations

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE

#: The glide: a fifth, low to high on an inhale (A3 to E4), high to low on an exhale.
LOW_HZ = 220.0
HIGH_HZ = 330.0
#: Peak level: soft, about 8 dB under the voice's limited peaks (speech clips peak at -12 dBFS).
TONE_PEAK = 10 ** (-20 / 20)
#: A second harmonic this much quieter keeps the tone audible on small phone speakers.
HARMONIC = 0.25
ATTACK_MS = 20
#: Silence at the end of each tone (at most), before the next phase's tone begins.
GAP_MS = 80
RELEASE_MS = 400


def parse_tone_ref(ref: str) -> tuple[str, int] | None:
    """`tone:rise:4000` -> ("rise", 4000); None for any other sound name."""
    parts = ref.split(":")
    if len(parts) != 3 or parts[0] != "tone" or parts[1] not in ("rise", "fall") or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def is_tone(ref: str) -> bool:
    return parse_tone_ref(ref) is not None


def pace_tone(kind: str, ms: int, rate: int = INTERNAL_RATE) -> np.ndarray:
    """A `kind` ("rise" or "fall") tone exactly `ms` long at `rate`, float32 mono."""
    n = int(round(ms * rate / 1000))
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    f0, f1 = (LOW_HZ, HIGH_HZ) if kind == "rise" else (HIGH_HZ, LOW_HZ)
    t = np.arange(n, dtype=np.float64) / rate
    length = n / rate
    ratio = f1 / f0
    # an exponential glide (equal musical steps per second): f(t) = f0 * ratio**(t/T), phase its integral
    phase = 2 * np.pi * f0 * length / np.log(ratio) * (ratio ** (t / length) - 1)
    x = np.sin(phase) + HARMONIC * np.sin(2 * phase)
    x *= TONE_PEAK / (1 + HARMONIC)
    x *= _envelope(n, rate)
    return x.astype(np.float32)


def _envelope(n: int, rate: int) -> np.ndarray:
    """Raised-cosine attack from the first sample; raised-cosine release ending `gap` before the end."""
    env = np.ones(n, dtype=np.float64)
    gap = min(int(GAP_MS * rate / 1000), n // 10)
    attack = max(1, min(int(ATTACK_MS * rate / 1000), n // 10))
    release = max(1, min(int(RELEASE_MS * rate / 1000), (n - gap - attack) * 3 // 10 or 1))
    env[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    stop = n - gap
    env[stop:] = 0.0
    lo = max(attack, stop - release)
    env[lo:stop] = 0.5 + 0.5 * np.cos(np.pi * np.arange(stop - lo) / max(1, stop - lo))
    return env


def tone(ref: str, rate: int = INTERNAL_RATE) -> np.ndarray:
    """The samples of a tone sound name (see parse_tone_ref)."""
    parsed = parse_tone_ref(ref)
    if parsed is None:
        raise ValueError(f"not a pace tone: {ref!r}")
    return pace_tone(*parsed, rate=rate)
