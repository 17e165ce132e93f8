"""Mixing a planned session into PCM blocks: voice clips, cues and a ducked, looping bed.

Time is linear in session length and memory is bounded: the mix is made block by block, clips are
loaded when they start and dropped when they end, and nothing holds the whole session.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE
from audiogen.plan.planner import Event, Plan

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
    """How far (0..1) the bed is ducked at each sample: trapezoids around merged speech intervals.

    Spans whose ramps would touch are merged, so every sample lies in at most one span's ramped
    extent [start - attack, end + release]: the amount anywhere is found by one binary search.
    """

    def __init__(self, events: list[Event]) -> None:
        a, r = ms_to_samples(DUCK_ATTACK_MS), ms_to_samples(DUCK_RELEASE_MS)
        spans: list[list[int]] = []
        for e in sorted((e for e in events if e.kind == "speech"), key=lambda e: e.start_ms):
            s, t = ms_to_samples(e.start_ms), ms_to_samples(e.end_ms)
            if spans and s - a <= spans[-1][1] + r:  # ramps would touch: one longer duck
                spans[-1][1] = max(spans[-1][1], t)
            else:
                spans.append([s, t])
        self.starts = np.array([s for s, _ in spans], dtype=np.int64)
        self.stops = np.array([t for _, t in spans], dtype=np.int64)
        self.a, self.r = a, r

    def _trapezoid(self, idx: np.ndarray, s, t) -> np.ndarray:
        """The duck amount at `idx` under the span [s, t) (or spans, element-wise): ramps up, holds, ramps down."""
        return np.clip(np.minimum((idx - (s - self.a)) / self.a, ((t + self.r) - idx) / self.r), 0.0, 1.0)

    def at(self, idx: np.ndarray) -> np.ndarray:
        """The duck amount at sample positions `idx` (any order), float32."""
        if not len(self.starts):
            return np.zeros(len(idx), dtype=np.float32)
        i = np.minimum(np.searchsorted(self.stops + self.r, idx, side="right"), len(self.starts) - 1)
        return self._trapezoid(idx, self.starts[i], self.stops[i]).astype(np.float32)

    def amount(self, b0: int, b1: int) -> np.ndarray | None:
        """The duck amount over samples [b0, b1), or None where nothing is ducked; work only where it is."""
        i = int(np.searchsorted(self.stops + self.r, b0, side="right"))
        out = None
        while i < len(self.starts) and int(self.starts[i]) - self.a < b1:
            s, t = int(self.starts[i]), int(self.stops[i])
            lo, hi = max(b0, s - self.a), min(b1, t + self.r)
            if out is None:
                out = np.zeros(b1 - b0, dtype=np.float32)
            out[lo - b0 : hi - b0] = self._trapezoid(np.arange(lo, hi, dtype=np.float32), s, t)
            i += 1
        return out


class BedTrack:
    """The bed as heard under one session: the loop tiled, at its level, faded, and ducked under speech."""

    SLOT = INTERNAL_RATE // 100  # 10 ms: the resolution of the bed's analytic energy and peak

    def __init__(self, bed: Bed, events: list[Event], total: int) -> None:
        self.bed, self.total = bed, total
        self.loop = np.ascontiguousarray(bed.loop, dtype=np.float32)
        self.duck = _DuckEnvelope(events)
        self.fade_in, self.fade_out = ms_to_samples(bed.fade_in_ms), ms_to_samples(bed.fade_out_ms)
        self.level = np.float32(10 ** (bed.volume_db / 20))
        self.depth = bed.duck_db

    def gain(self, idx: np.ndarray) -> np.ndarray:
        """The bed's gain (level, duck, fades) at sample positions `idx`, float32."""
        return self._gain(idx, self.duck.at(idx) if self.depth else None)

    def _gain(self, idx: np.ndarray | range, amount: np.ndarray | None) -> np.ndarray:
        """The gain at `idx` given the duck `amount` there (None: not ducked)."""
        if amount is not None:  # level x e^(amount x depth), made in `amount`'s buffer (no temporaries)
            np.multiply(amount, np.float32(self.depth * np.log(10) / 20), out=amount)
            g = np.exp(amount, out=amount)
            g *= self.level
        else:
            g = np.full(len(idx), self.level, dtype=np.float32)
        if isinstance(idx, range):  # a block: the fades where they are under 1, a stretch at a time
            b0, b1 = idx.start, idx.stop
            if self.fade_in and b0 < self.fade_in:
                self._ramp(g, b0, b0, min(b1, self.fade_in), lambda i: i / self.fade_in)
            if self.fade_out and b1 - 1 >= self.total - self.fade_out:
                self._ramp(g, b0, max(b0, self.total - self.fade_out), b1,
                           lambda i: (self.total - i) / self.fade_out)
            return g
        lo, hi = idx.min(), idx.max()
        if self.fade_in and lo < self.fade_in:
            g *= np.clip(np.asarray(idx) / self.fade_in, 0.0, 1.0).astype(np.float32)
        if self.fade_out and hi >= self.total - self.fade_out:
            g *= np.clip((self.total - np.asarray(idx)) / self.fade_out, 0.0, 1.0).astype(np.float32)
        return g

    #: Samples of a fade computed at a time (its float64 ramp for a whole block would be 7 MB of temporaries).
    RAMP_CHUNK = 1 << 16

    def _ramp(self, g: np.ndarray, b0: int, lo: int, hi: int, fade) -> None:
        """g (the gain from sample b0 on) times clip(fade(i), 0, 1) for the samples i in [lo, hi): the same
        numbers as over the whole block (elsewhere the clipped fade is 1)."""
        for c0 in range(lo, hi, self.RAMP_CHUNK):
            c1 = min(hi, c0 + self.RAMP_CHUNK)
            g[c0 - b0 : c1 - b0] *= np.clip(fade(np.arange(c0, c1)), 0.0, 1.0).astype(np.float32)

    def block(self, b0: int, b1: int) -> np.ndarray:
        """Bed samples [b0, b1) of the session."""
        n, size = b1 - b0, len(self.loop)
        out = np.empty(n, dtype=np.float32)
        pos, at = b0 % size, 0
        while at < n:  # the loop tiled by slices: no index arrays
            take = min(n - at, size - pos)
            out[at : at + take] = self.loop[pos : pos + take]
            at, pos = at + take, 0
        amount = self.duck.amount(b0, b1) if self.depth else None
        faded = (self.fade_in and b0 < self.fade_in) or (self.fade_out and b1 > self.total - self.fade_out)
        if amount is not None or faded:
            out *= self._gain(range(b0, b1), amount)
        else:
            out *= self.level
        return out

    def slot_energies(self, sub: int, *, per_sub: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(K-weighted mean square of every whole `sub`-sample sub-block, peak bound of every 10 ms slot).

        `per_sub`: the peak bound of every whole sub-block instead (the largest of its slots'), reduced a
        minute at a time, so a long session never holds a slot array (12 hours of 10 ms slots in float64
        are 35 MB; its 100 ms sub-blocks 3.5 MB).

        Computed without generating the bed: the loop is K-weighted once (it is periodic, so the
        filter's output is too), and each 10 ms slot of the session is that loop's energy at the
        slot's position times the gain there squared; the gain moves over hundreds of ms, so this
        agrees with metering the generated bed to a few hundredths of a dB.
        """
        from audiogen.dsp.loudness import periodic_slot_stats

        slot, size = self.SLOT, len(self.loop)
        energy, peak = periodic_slot_stats(self.loop, slot)
        per = sub // slot
        n_sub, n_slots = self.total // sub, self.total // slot
        sub_e, slot_peak = np.zeros(n_sub), np.zeros(n_sub if per_sub else n_slots)
        chunk = per * 600  # a minute of slots at a time: memory does not grow with the session
        for j0 in range(0, n_slots, chunk):
            j = np.arange(j0, min(n_slots, j0 + chunk), dtype=np.int64)
            m, frac = np.divmod(j * slot % size, slot)
            nxt = (m + 1) % len(energy)
            e = energy[m] + (frac / slot) * (energy[nxt] - energy[m])
            centres = j * slot + slot // 2
            g = self.gain(centres).astype(np.float64)
            # the gain's largest value in a slot is at one of its ends (ramps are monotonic over 10 ms)
            g_hi = np.maximum(self.gain(j * slot), self.gain(np.minimum(j * slot + slot, self.total)))
            p = np.maximum(peak[m], peak[nxt]) * np.maximum(g_hi, g)
            whole = min(len(j), n_sub * per - j0) // per * per
            if not per_sub:
                slot_peak[j] = p
            if whole > 0:
                k0 = j0 // per
                if per_sub:  # chunks start on a sub-block (chunk is a multiple of per)
                    slot_peak[k0 : k0 + whole // per] = p[:whole].reshape(-1, per).max(axis=1)
                sub_e[k0 : k0 + whole // per] = (e[:whole] * g[:whole] ** 2).reshape(-1, per).sum(axis=1) / sub
        return sub_e, slot_peak


class Mixer:
    """Mixes a planned session: as a stream of blocks, or any range on its own (the same samples)."""

    def __init__(self, plan: Plan, load: Callable[[Event], np.ndarray], bed: Bed | None = None) -> None:
        self.plan, self.load = plan, load
        self.total = ms_to_samples(plan.length_ms)
        self.audible = sorted((e for e in plan.events if e.kind in ("speech", "cue")), key=lambda e: e.start_ms)
        self.starts = [ms_to_samples(e.start_ms) for e in self.audible]
        # the longest event (plus slack for rounding) bounds how far back a range must look for sounds
        self.reach = max((ms_to_samples(e.length_ms) for e in self.audible), default=0) + INTERNAL_RATE
        self.bed = BedTrack(bed, self.audible, self.total) if bed is not None else None

    @staticmethod
    def _add(voice: np.ndarray, b0: int, sounds: Iterable[tuple[int, np.ndarray]]) -> None:
        b1 = b0 + len(voice)
        for s, x in sounds:
            lo, hi = max(s, b0), min(s + len(x), b1)
            if hi > lo:
                voice[lo - b0 : hi - b0] += x[lo - s : hi - s]

    def blocks(self, block: int = BLOCK_SAMPLES, *, with_bed: bool = True
               ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Yield (voice and cues, bed) float32 blocks, loading each sound when it starts."""
        bed = self.bed if with_bed else None
        active: list[tuple[int, np.ndarray]] = []  # (start sample, samples)
        nxt = 0
        for b0 in range(0, self.total, block):
            b1 = min(self.total, b0 + block)
            while nxt < len(self.audible) and self.starts[nxt] < b1:
                active.append((self.starts[nxt], self.load(self.audible[nxt])))
                nxt += 1
            voice = np.zeros(b1 - b0, dtype=np.float32)
            self._add(voice, b0, active)
            active = [(s, x) for s, x in active if s + len(x) > b1]
            yield voice, (bed.block(b0, b1) if bed is not None else None)

    def range(self, b0: int, b1: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(voice and cues, bed) for samples [b0, b1) alone, equal to the same stretch of `blocks`."""
        b0, b1 = max(0, b0), min(self.total, b1)
        lo = bisect.bisect_left(self.starts, b0 - self.reach)
        hi = bisect.bisect_left(self.starts, b1)
        voice = np.zeros(max(0, b1 - b0), dtype=np.float32)
        self._add(voice, b0, ((self.starts[i], self.load(self.audible[i])) for i in range(lo, hi)))
        return voice, (self.bed.block(b0, b1) if self.bed is not None and b1 > b0 else None)


def mix_parts(
    plan: Plan,
    load: Callable[[Event], np.ndarray],
    bed: Bed | None = None,
    *,
    block: int = BLOCK_SAMPLES,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Yield (voice and cues, bed) float32 mono blocks at INTERNAL_RATE, exactly plan.length_ms long."""
    return Mixer(plan, load, bed).blocks(block)


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
    for voice, under in mix_parts(plan, load, bed, block=block):
        yield mixdown(voice, under, gain_db, bed_gain_db)


def mixdown(voice: np.ndarray, under: np.ndarray | None, gain_db: float, bed_gain_db: float) -> np.ndarray:
    """Voice plus bed, `bed_gain_db` on the bed and `gain_db` on both, in `voice`'s buffer (`under`'s is used
    too): a block's mix makes no new array."""
    out = voice
    if under is not None:
        if bed_gain_db:
            under *= np.float32(10 ** (bed_gain_db / 20))
        out += under
    if gain_db:
        out *= np.float32(10 ** (gain_db / 20))
    return out
