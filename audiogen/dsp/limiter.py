"""A look-ahead peak limiter in numpy, for single clips and for the streamed session mix.

The gain needed at each sample (ceiling / |x|, at most 1) is spread over ±`window` samples with a
running minimum (van Herk / Gil-Werman, O(n)) and smoothed with a moving average, so the gain dips a
few milliseconds before a peak and recovers after it: no clicks, and no sample above the ceiling.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE

WINDOW_MS = 3.0
#: Over-ceiling stretches closer than this many samples get one gain computation.
MERGE_GAP = 8192


def running_min(x: np.ndarray, size: int) -> np.ndarray:
    """min(x[i : i + size]) for every i (output is len(x) - size + 1 long)."""
    n = len(x)
    pad = (-n) % size
    padded = np.concatenate([x, np.full(pad, np.inf, dtype=x.dtype)]).reshape(-1, size)
    prefix = np.minimum.accumulate(padded, axis=1).ravel()
    suffix = np.minimum.accumulate(padded[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[: n - size + 1], prefix[size - 1 : n])


#: The session mix uses a slower window: when a quiet session is raised to the loudness target the
#: limiter may work hard on the voice, and gain that moves over ~10 ms instead of ~3 ms distorts less.
MIX_WINDOW_MS = 10.0


def _moving_average(x: np.ndarray, size: int) -> np.ndarray:
    """mean(x[i : i + size]) for every i, in O(n) with a running sum (a convolution would be O(n * size))."""
    c = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    return (c[size:] - c[:-size]) / size


def window_samples(ms: float = WINDOW_MS) -> int:
    return max(1, int(ms * INTERNAL_RATE / 1000))


def gain_curve(x: np.ndarray, ceiling: float, window_ms: float = WINDOW_MS) -> np.ndarray:
    """The smoothed gain that keeps `x` under `ceiling` (1.0 where nothing needs limiting).

    Only the stretches within two windows of a sample over the ceiling can have a gain under 1, so the
    curve is computed there alone: the cost follows the peaks, not the length.
    """
    w = window_samples(window_ms)
    over = np.flatnonzero(np.abs(x) > ceiling)
    gain = np.ones(len(x), dtype=np.float32)
    if not len(over):
        return gain
    reach = 2 * w + 1
    # stretches closer than ~0.2 s are done as one: numpy call overhead would cost more than the gap
    breaks = np.flatnonzero(np.diff(over) > max(2 * reach, MERGE_GAP)) + 1
    for first, last in zip(np.r_[0, breaks], np.r_[breaks, len(over)], strict=True):
        a, b = max(0, over[first] - reach), min(len(x), over[last - 1] + reach + 1)
        gain[a:b] = _gain_curve(x[a:b], ceiling, w)
    return gain


def _gain_curve(x: np.ndarray, ceiling: float, w: int) -> np.ndarray:
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(x), 1e-12)).astype(np.float32)
    floor = running_min(np.pad(need, (w, w), constant_values=1.0), 2 * w + 1)
    smooth = _moving_average(np.pad(floor, (w // 2, w - w // 2), mode="edge"), w + 1)
    return np.minimum(smooth[: len(x)], floor).astype(np.float32)


def limit_peaks(x: np.ndarray, ceiling: float) -> np.ndarray:
    """`x` with every peak above `ceiling` smoothly turned down."""
    if len(x) == 0 or float(np.max(np.abs(x))) <= ceiling:
        return x
    return np.clip(x * gain_curve(x, ceiling), -ceiling, ceiling)


@dataclass
class LimiterStats:
    """What `limit_stream` did, for the build's checks: where it turned the gain down and how far, and the
    samples that reached full scale before it (they would have clipped without it)."""

    #: (sample, gain reduction in dB) at the deepest point of each block the limiter worked on
    cuts: list[tuple[int, float]] = field(default_factory=list)
    #: (first sample, how many) of the samples at or over full scale (|x| >= 1) in each block that had any
    overs: list[tuple[int, int]] = field(default_factory=list)

    @property
    def max_reduction_db(self) -> float:
        return max((db for _, db in self.cuts), default=0.0)

    def _note(self, at: int, raw: np.ndarray, gain: np.ndarray) -> None:
        i = int(np.argmin(gain))
        if gain[i] < 1.0:
            self.cuts.append((at + i, float(-20 * np.log10(max(float(gain[i]), 1e-12)))))
        over = np.flatnonzero(np.abs(raw) >= 1.0)
        if len(over):
            self.overs.append((at + int(over[0]), len(over)))


def limit_stream(blocks: Iterable[np.ndarray], ceiling: float, window_ms: float = MIX_WINDOW_MS,
                 stats: LimiterStats | None = None) -> Iterator[np.ndarray]:
    """A limiter over a block stream, exact across block edges; the same samples out, delayed a little.
    `stats`, if given, records what it did (only where it works: no cost elsewhere)."""
    ctx = 2 * window_samples(window_ms)
    hist = np.zeros(0, dtype=np.float32)  # already emitted: left context
    pending = np.zeros(0, dtype=np.float32)  # not yet emitted: waits for right context
    emitted = 0
    for block in blocks:
        seg = np.concatenate([hist, pending, np.asarray(block, dtype=np.float32)])
        start, end = len(hist), max(len(hist), len(seg) - ctx)
        if end > start:
            out = seg[start:end]
            if max(float(seg.max()), -float(seg.min())) > ceiling:  # the peak, without an array of |seg|
                gain = gain_curve(seg, ceiling, window_ms)[start:end]
                if stats is not None:
                    stats._note(emitted, out, gain)
                out = np.clip(out * gain, -ceiling, ceiling)
            emitted += len(out)
            yield out
        hist, pending = seg[max(0, end - ctx) : end], seg[end:]
    if len(pending):
        seg = np.concatenate([hist, pending])
        out = seg[len(hist) :]
        if float(np.max(np.abs(seg))) > ceiling:
            gain = gain_curve(seg, ceiling, window_ms)[len(hist) :]
            if stats is not None:
                stats._note(emitted, out, gain)
            out = np.clip(out * gain, -ceiling, ceiling)
        yield out
