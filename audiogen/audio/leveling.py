"""Solving the gains that bring a session to its loudness target, before it is rendered once.

A session is voice (speech and cues) over a bed. The voice is mixed alone (cheap: it is mostly
silence, and silent sub-blocks skip the K-weighting), the bed's loudness is computed from its loop
without generating it, and the two are combined as uncorrelated energies, so the gated loudness at
any pair of gains is solved for without mixing again. Where the limiter will work (sub-blocks whose
peaks can reach the ceiling at those gains) those stretches alone are mixed and limited to measure what
it takes, and that is made up (measured again until it lands, at most MAKE_UP_ROUNDS times). The result's
prediction is the loudness reported for the session: it is not metered again while it is encoded.

Two models of "the session's loudness" (`output.loudness_mode`):
- `speech` (the default): the target is the narration's loudness, measured over the speech alone (as
  broadcast dialogue gating does); the bed and cues keep the levels written relative to the voice, so a
  session of long holds is not pulled up until its ambience sits just under the narrator.
- `programme`: the whole mix's integrated loudness, voice and bed together, as music is normalised; a
  session that is mostly bed then has its bed raised too (never above the voice). For playlists mixed
  with other programme-normalised audio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from audiogen.audio.mix import Bed, Mixer, mixdown
from audiogen.dsp.limiter import MIX_WINDOW_MS, gain_curve, window_samples
from audiogen.dsp.loudness import LoudnessMeter, gated_loudness_of
from audiogen.plan.planner import Event, Plan
from audiogen.voice.clips import SPEECH_LUFS

#: The mix limiter's ceiling: room under -1 dBTP for inter-sample peaks and the MP3 encoder's overshoot
#: (measured up to 2.4 dB on a limited voice over a boosted drone at 64 kbit/s).
PEAK_CEILING_DB = -4.0
#: At most this many measure-and-make-up rounds for the limiter's loss (one or two are usually enough).
MAKE_UP_ROUNDS = 4
#: Close enough: meters (and players' meters) disagree by more than this.
MAKE_UP_TOLERANCE = 0.1
#: A make-up smaller than this is not measured again (what the limiter takes of it is ~0.05 LU).
MAKE_UP_TRUSTED = 0.3
#: The most gain added to make up what the limiter takes.
MAKE_UP_MAX_DB = 3.0


@dataclass
class LevelPlan:
    """The gains that bring a session to its loudness target."""

    gain_db: float = 0.0
    bed_gain_db: float = 0.0
    predicted: float | None = None  # LUFS expected after the limiter (over speech, in speech mode)
    programme: float | None = None  # the whole mix's integrated LUFS expected after the limiter
    limited: bool = False  # the limiter works somewhere at these gains
    limiter_db: float = 0.0  # loudness the limiter takes (before the make-up)
    #: (voice and cues, bed) K-weighted mean square of each 100 ms sub-block at no gain, for the build's checks
    energies: tuple[np.ndarray, np.ndarray] | None = None


def session_energies(plan: Plan, load: Callable[[Event], np.ndarray], bed: Bed | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(voice and cues, bed) K-weighted mean square of every 100 ms sub-block, at no gain: the voice mixed
    alone (silent sub-blocks skip the filter), the bed from its loop without generating it."""
    return _energies(Mixer(plan, load, bed))[0]


def _energies(mixer: Mixer) -> tuple[tuple[np.ndarray, np.ndarray], LoudnessMeter, np.ndarray]:
    meter = LoudnessMeter()
    # the bed first: its loop's transforms (~10 MB, whatever the length) come and go before any array as long
    # as the session exists; sub-block peaks reduced as they are made (no array of 10 ms slots)
    bed = mixer.bed.slot_energies(meter.sub, per_sub=True) if mixer.bed is not None else None
    for voice, _ in mixer.blocks(with_bed=False):
        meter.add(voice)
    ev = meter.energies.joined()  # the chunks are not kept besides their concatenation
    eb, pb = bed if bed is not None else (np.zeros_like(ev), np.zeros_like(ev))
    return (ev, eb), meter, pb


def level_session(plan: Plan, load: Callable[[Event], np.ndarray], bed: Bed | None, target: float,
                  ceiling_db: float = PEAK_CEILING_DB, mode: str = "programme") -> LevelPlan:
    """Find the gain (and, in programme mode if needed, a bed boost) that brings the session to `target`.

    The voice may rise until its peaks meet the limiter's ceiling (plus 1.5 dB the limiter takes
    smoothly). In `speech` mode the target is the loudness over the speech alone and the bed is never
    raised apart from the voice. In `programme` mode a session that is mostly bed cannot reach the target
    on the voice alone (gated loudness counts the quiet bed): then the bed is raised too, never above
    the voice's level.
    """
    mixer = Mixer(plan, load, bed)
    energies, meter, pb = _energies(mixer)
    # float32 peaks: the sums they enter are float64 (pb is), exactly as if converted first
    (ev, eb), pv = energies, meter.peaks.joined()

    speech = _speech_subblocks(plan, len(ev), meter.sub) if mode == "speech" else None
    if speech is not None and len(speech) < 4:  # (almost) no speech to measure: level the whole mix
        speech = None
    # Speech mode: the bed sits `volume` under the narration as measured (at target + volume LUFS), whatever
    # gain the voice needs; its boost follows the voice gain. Programme mode: a boost of its own, or none.
    bed_at = target - SPEECH_LUFS

    def bed_for(g: float, b: float) -> float:
        return bed_at - g if speech is not None else b

    def mixed(g: float, b: float, scale: Scale | None, at_speech: bool = False):
        """10^(g/10) ev + 10^((g+b)/10) eb (of the speech sub-blocks alone, if `at_speech`), times the limiter's
        `scale` where it works, a stretch at a time: the same arithmetic as on whole arrays, without a
        session-long array per step of the solve (this runs some 50 times)."""
        cv, ce = 10 ** (g / 10), 10 ** ((g + b) / 10)

        def at(lo: int, hi: int) -> np.ndarray:
            pick = speech[lo:hi] if at_speech else slice(lo, hi)
            energy = cv * ev[pick]
            energy += ce * eb[pick]
            if scale is not None:
                a, z = np.searchsorted(scale[0], [lo, hi])
                if z > a:
                    energy[scale[0][a:z] - lo] *= scale[1][a:z]
            return energy

        return at

    def programme(g: float, b: float, scale: Scale | None = None) -> float:
        """Gated loudness at voice gain g and bed boost b (each sub-block scaled by what the limiter leaves)."""
        return gated_loudness_of(len(ev), mixed(g, b, scale))

    def loudness(g: float, b: float, scale: Scale | None = None) -> float:
        """What the target is measured on: the whole mix, or (speech mode) the speech stretches joined."""
        if speech is None:
            return programme(g, b, scale)
        return gated_loudness_of(len(speech), mixed(g, b, None if scale is None else scale[2], at_speech=True))

    def solve(f, lo: float, hi: float) -> float:
        """The x in [lo, hi] where f(x) is nearest `target` (f rises with x, gating aside)."""
        for _ in range(40):
            mid = (lo + hi) / 2
            if f(mid) < target:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    if not np.isfinite(loudness(0.0, 0.0)):
        return LevelPlan(energies=energies)
    peak_db = 20 * np.log10(meter.peak) if meter.peak > 0 else -120.0
    g_max = ceiling_db - peak_db + 1.5
    g = solve(lambda x: loudness(x, bed_for(x, 0.0)), -60.0, g_max)
    b = bed_for(g, 0.0)
    if speech is None and loudness(g, 0.0) < target - 0.2 and bed is not None and bed.volume_db < 0:
        b = solve(lambda x: loudness(g, x), 0.0, -bed.volume_db)
    level = LevelPlan(g, b, loudness(g, b), programme(g, b))
    # Where the limiter works it takes some loudness. Measure what it leaves of each sub-block it works
    # on (mixing only those stretches), and raise the bed if it was raised, else the gain, to make that
    # up. Raising makes the limiter work harder: the first make-up assumes it takes the same fraction,
    # later ones follow the measured slope (secant), until a measurement lands on the target.
    ceiling = 10 ** (ceiling_db / 20)
    on_bed = speech is None and b > 0 and bed is not None
    lo, hi = (0.0, -bed.volume_db) if on_bed else (g, g + MAKE_UP_MAX_DB)
    tried: list[tuple[float, float]] = []  # (the raised gain, the loudness measured there)
    for _ in range(MAKE_UP_ROUNDS):
        g, b = level.gain_db, level.bed_gain_db
        worked = _limiter_ratios(mixer, g, b, pv, pb, ceiling, meter.sub)
        if worked is None:
            level.energies = energies
            return level
        ratio = _scale(worked, speech)  # sparse: 1 elsewhere (12 hours of ones are 3.5 MB)
        after = loudness(g, b, ratio)
        level = LevelPlan(g, b, after, programme(g, b, ratio), limited=True, limiter_db=loudness(g, b) - after)
        if abs(after - target) < MAKE_UP_TOLERANCE:
            break
        tried.append((b if on_bed else g, after))
        if len(tried) == 1:
            x = solve(lambda v, g=g, r=ratio: loudness(g, v, r) if on_bed else loudness(v, bed_for(v, 0.0), r),
                      lo, hi)
        else:
            (x0, y0), (x1, y1) = tried[-2:]
            x = x1 + (target - y1) * (x1 - x0) / (y1 - y0) if abs(y1 - y0) > 1e-3 else x1
            x = min(max(x, lo), hi)
        if abs(x - tried[-1][0]) < 0.01:
            break  # nothing left to raise
        small = abs(after - target) < MAKE_UP_TRUSTED and len(tried) == 1
        g, b = (g, x) if on_bed else (x, bed_for(x, b))
        level = LevelPlan(g, b, loudness(g, b, ratio) if small else None,
                          programme(g, b, ratio) if small else None, True, level.limiter_db)
        if small:  # the limiter takes a little more of a small make-up: too little to measure again
            break
    level.energies = energies
    return level


#: What the limiter leaves of each sub-block it works on: (indices, fractions), and the same in the
#: coordinates of the speech sub-blocks (speech mode), or None there.
Scale = tuple


def _scale(worked: tuple[np.ndarray, np.ndarray], speech: np.ndarray | None) -> Scale:
    idx, r = worked
    if speech is None:
        return idx, r, None
    pos = np.searchsorted(speech, idx)
    ok = pos < len(speech)
    ok[ok] = speech[pos[ok]] == idx[ok]
    return idx, r, (pos[ok], r[ok])


def _speech_subblocks(plan: Plan, n: int, sub: int) -> np.ndarray:
    """Indices of the 100 ms sub-blocks that lie wholly inside speech (what speech-gated loudness measures)."""
    from audiogen.dsp.ffmpeg import INTERNAL_RATE

    keep = np.zeros(n, dtype=bool)
    for e in plan.events:
        if e.kind == "speech":
            first = -(-e.start_ms * INTERNAL_RATE // 1000 // sub)  # the first sub-block starting inside it
            last = e.end_ms * INTERNAL_RATE // 1000 // sub  # the first one ending past it
            keep[first:min(last, n)] = True
    return np.flatnonzero(keep)


def _limiter_ratios(mixer: Mixer, g: float, b: float, pv: np.ndarray, pb: np.ndarray, ceiling: float,
                    sub: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(sub-blocks the limiter works on at gains (g, b), the fraction of energy it leaves in each), or None.

    Only sub-blocks whose voice peak plus bed peak can reach the ceiling are mixed, with enough
    context on each side for the limiter's look-ahead and release. The limiter's gain moves over
    milliseconds, so it takes the same fraction of K-weighted energy as of plain energy: no filter.
    """
    bound = 10 ** (b / 20) * pb  # 10^(g/20) (pv + 10^(b/20) pb), in place: one session-long array
    np.add(pv, bound, out=bound)
    np.multiply(10 ** (g / 20), bound, out=bound)
    hot = np.flatnonzero(bound > ceiling)
    del bound
    if not len(hot):
        return None
    ctx = 4 * window_samples(MIX_WINDOW_MS)
    which, ratios = [], []
    for run in np.split(hot, np.flatnonzero(np.diff(hot) > 1) + 1):
        k0, k1 = int(run[0]), int(run[-1]) + 1
        a0 = k0 * sub - ctx
        lead = k0 * sub - max(0, a0)
        mix = mixdown(*mixer.range(a0, k1 * sub + ctx), g, b)
        inner = slice(lead, lead + (k1 - k0) * sub)
        curve = gain_curve(mix, ceiling, MIX_WINDOW_MS)[inner].reshape(k1 - k0, sub)
        works = np.flatnonzero(curve.min(axis=1) < 1.0)  # the bound was loose elsewhere
        if len(works):
            x = mix[inner].reshape(k1 - k0, sub)[works]
            before = np.einsum("ij,ij->i", x, x, dtype=np.float64)
            x = np.clip(x * curve[works], -ceiling, ceiling)
            after = np.einsum("ij,ij->i", x, x, dtype=np.float64)
            which.append(k0 + works)
            ratios.append(np.where(before > 0, after / np.maximum(before, 1e-30), 1.0))
    if not which:
        return None
    return np.concatenate(which), np.concatenate(ratios)
