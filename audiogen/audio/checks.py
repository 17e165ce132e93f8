"""The checks a sound engineer would make on a session, from what the renderer already knows.

Each check is a pure function over the plan (its events and chapters) and numbers the render computed
anyway: the leveller's K-weighted energies of the voice and of the bed per 100 ms sub-block, the gains,
and what the limiter did (`dsp.limiter.LimiterStats`). Nothing here decodes or mixes the session again.

A finding names the check, the chapter (step) and the time, says what is wrong and how to fix it;
`audiogen build` prints it as a warning, puts it in the JSON, and `--strict` fails the session on it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE
from audiogen.dsp.limiter import LimiterStats
from audiogen.dsp.loudness import gated_loudness
from audiogen.plan.planner import Plan

#: Speech should sit at least this far (LU) above the bed under it, after ducking; under ~10 dB a
#: listener with eyes closed strains to follow the words (broadcast mixes keep dialogue 10-20 LU clear).
MIN_SPEECH_TO_BED_DB = 10.0
#: The limiter may shave peaks; cutting more than this is heard as pumping or a flattened voice.
MAX_LIMITER_DB = 3.0
#: Digital silence longer than this (nothing playing, no bed) is taken by some players and car stereos
#: for the end of the track, or skipped ("smart speed", silence trimming).
MAX_SILENCE_MS = 10_000

OVERRUN, BED, LIMITER, CLIPPING, SILENCE, CUE_ON_SPEECH = (
    "overrun", "bed-under-speech", "limiter", "clipping", "silence", "cue-on-speech")
CHECKS = (OVERRUN, BED, LIMITER, CLIPPING, SILENCE, CUE_ON_SPEECH)


@dataclass(frozen=True)
class Finding:
    """One check that failed: which, where (chapter title, ms from the start), what, and how to fix it."""

    check: str
    chapter: str | None
    at_ms: int
    message: str
    hint: str
    value: float | None = None  # the measured figure (dB, ms) the threshold was compared with

    def format(self) -> str:
        """`step 'Neck sweep' at 01:23: <message>; <hint>`: the line a build prints."""
        where = f"step {self.chapter!r} at {clock(self.at_ms)}" if self.chapter else f"at {clock(self.at_ms)}"
        return f"{where}: {self.message}; {self.hint}"

    def to_dict(self) -> dict:
        return {**asdict(self), "time": clock(self.at_ms)}


def clock(ms: float) -> str:
    """`mm:ss` (or `h:mm:ss` from an hour), the way a player shows a position."""
    s = max(0, int(ms // 1000))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


def _chapter_at(plan: Plan, ms: float) -> tuple[int, str | None]:
    """(index, title) of the chapter playing at `ms` (chapters are in order and end to end)."""
    if not plan.chapters:
        return 0, None
    i = max(0, bisect.bisect_right([c.start_ms for c in plan.chapters], ms) - 1)
    return i, plan.chapters[i].title


def _ms(sample: int) -> int:
    return int(sample * 1000 // INTERNAL_RATE)


# -- the checks ----------------------------------------------------------------------------------------
def overruns(plan: Plan) -> list[Finding]:
    """Speech that needs longer than its step's `duration` (the planner grows the step and says so)."""
    out = []
    starts = {c.title: c.start_ms for c in plan.chapters}
    for w in plan.warnings:
        # where the step should have ended: the overrun starts there
        at = starts.get(w.chapter, 0) + w.planned_ms
        out.append(Finding(OVERRUN, w.chapter, at, w.message,
                           "shorten the text or lengthen the duration", float(w.real_ms - w.planned_ms)))
    return out


def bed_under_speech(plan: Plan, voice_energy: np.ndarray, bed_energy: np.ndarray, bed_gain_db: float,
                     loudness_mode: str = "speech", sub: int = INTERNAL_RATE // 10) -> list[Finding]:
    """Chapters where the speech is less than MIN_SPEECH_TO_BED_DB louder than the bed under it.

    Both energies are K-weighted mean squares per `sub`-sample block at no gain (the leveller's); the voice
    gain is common to both, the bed's own gain (`bed_gain_db`) and its duck are in the bed's energy. The
    ratio is taken over the sub-blocks lying wholly inside each chapter's speech, joined, as a loudness
    meter gated to speech would hear them; the time given is the speech event where it is lowest.
    """
    n = min(len(voice_energy), len(bed_energy))
    bed_scale = 10 ** (bed_gain_db / 10)
    per_chapter: dict[int, list[tuple[int, float, float]]] = {}
    picks: dict[int, list[np.ndarray]] = {}
    for e in plan.events:
        if e.kind != "speech":
            continue
        first = -(-e.start_ms * INTERNAL_RATE // 1000 // sub)
        last = min(e.end_ms * INTERNAL_RATE // 1000 // sub, n)
        if last <= first:
            continue
        v = float(np.sum(voice_energy[first:last]))
        b = float(np.sum(bed_energy[first:last])) * bed_scale
        per_chapter.setdefault(e.chapter, []).append((e.start_ms, v, b))
        picks.setdefault(e.chapter, []).append(np.arange(first, last))
    out = []
    for ci, parts in sorted(per_chapter.items()):
        v, b = sum(p[1] for p in parts), sum(p[2] for p in parts)
        if b <= 0 or v <= 0:
            continue
        ratio = 10 * np.log10(v / b)
        k = np.concatenate(picks[ci])
        if len(k) >= 4:  # gated like a loudness meter (the pauses between words do not count)
            lv, lb = gated_loudness(voice_energy[k]), gated_loudness(bed_energy[k] * bed_scale)
            if np.isfinite(lv) and np.isfinite(lb):
                ratio = lv - lb
        if ratio >= MIN_SPEECH_TO_BED_DB:
            continue
        worst = min(parts, key=lambda p: p[1] / p[2] if p[2] > 0 else np.inf)
        hint = "lower background.volume or deepen background.duck (e.g. duck: -12 dB)"
        if loudness_mode == "programme" and bed_gain_db > 0.5:
            hint = (f"programme loudness raised the bed {bed_gain_db:.1f} dB; output.loudness_mode: speech keeps "
                    "it where it is written, or " + hint)
        title = plan.chapters[ci].title if ci < len(plan.chapters) else None
        what = (f"the speech is only {ratio:.1f} dB louder than the bed under it" if ratio >= 0 else
                f"the bed is {-ratio:.1f} dB louder than the speech over it")
        out.append(Finding(BED, title, worst[0], f"{what}, under the {MIN_SPEECH_TO_BED_DB:g} dB that keeps the "
                           "words clear", hint, round(float(ratio), 2)))
    return out


def limiter(plan: Plan, stats: LimiterStats) -> list[Finding]:
    """Chapters where the limiter cut the gain by more than MAX_LIMITER_DB (the deepest cut in each)."""
    worst: dict[int, tuple[float, int]] = {}
    for sample, db in stats.cuts:
        if db > MAX_LIMITER_DB:
            ci, _ = _chapter_at(plan, _ms(sample))
            if db > worst.get(ci, (0.0, 0))[0]:
                worst[ci] = (db, sample)
    return [Finding(LIMITER, _chapter_at(plan, _ms(s))[1], _ms(s),
                    f"the limiter cut the peaks by {db:.1f} dB, more than the {MAX_LIMITER_DB:g} dB it can take "
                    "unheard (the voice sounds squashed)",
                    "lower output.loudness or the routine's loudness:, or background.volume if the bed pushes "
                    "the peaks", round(db, 2))
            for _, (db, s) in sorted(worst.items())]


def clipping(plan: Plan, stats: LimiterStats) -> list[Finding]:
    """Chapters where the mix reached full scale (0 dBFS) before the limiter: samples that would have
    clipped; the limiter caught them (the MP3 itself stays under its ceiling), at the cost of a deep cut."""
    by_chapter: dict[int, list[int]] = {}
    for sample, count in stats.overs:
        ci, _ = _chapter_at(plan, _ms(sample))
        got = by_chapter.setdefault(ci, [sample, 0])
        got[1] += count
    return [Finding(CLIPPING, _chapter_at(plan, _ms(s))[1], _ms(s),
                    f"{count} sample{'s' if count != 1 else ''} reached full scale before the limiter, which "
                    "would have clipped (the limiter turned them down)",
                    "lower output.loudness or the routine's loudness:, or background.volume", float(count))
            for _, (s, count) in sorted(by_chapter.items())]


def _audible(plan: Plan) -> list[tuple[int, int]]:
    spans = sorted((e.start_ms, e.end_ms) for e in plan.events if e.kind in ("speech", "cue"))
    merged: list[list[int]] = []
    for s, t in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], t)
        else:
            merged.append([s, t])
    return [(s, t) for s, t in merged]


def silences(plan: Plan, has_bed: bool) -> list[Finding]:
    """Stretches over MAX_SILENCE_MS where nothing plays at all (no bed, no speech, no cue)."""
    if has_bed:
        return []
    out, t = [], 0
    for s, e in [*_audible(plan), (plan.length_ms, plan.length_ms)]:
        if s - t > MAX_SILENCE_MS:
            out.append(Finding(SILENCE, _chapter_at(plan, t)[1], t,
                               f"{(s - t) / 1000:.0f} s of digital silence with no bed: some players take more "
                               f"than {MAX_SILENCE_MS // 1000} s of it for the end of the track, or skip it",
                               "add a background (e.g. background: {track: rain, volume: -30 dB}), a reminder "
                               "(remind:), or shorten the hold", float(s - t)))
        t = max(t, e)
    return out


def cues_on_speech(plan: Plan) -> list[Finding]:
    """Cue sounds that play while speech does (a chime over the words masks them)."""
    speech = sorted((e.start_ms, e.end_ms, e.text or "") for e in plan.events if e.kind == "speech")
    starts = [s for s, _, _ in speech]
    reach = np.maximum.accumulate([t for _, t, _ in speech]) if speech else []  # the latest end so far
    out = []
    for c in sorted((e for e in plan.events if e.kind == "cue" and e.role != "tone"), key=lambda e: e.start_ms):
        j, hit = bisect.bisect_left(starts, c.end_ms) - 1, None  # speech starting before the cue ends ...
        while j >= 0 and reach[j] > c.start_ms:  # ... and, with it or before it, ending after the cue starts
            if speech[j][1] > c.start_ms:
                hit = speech[j]
            j -= 1
        if hit is None:
            continue
        at = max(c.start_ms, hit[0])
        words = hit[2] if len(hit[2]) <= 40 else hit[2][:39] + "…"
        out.append(Finding(CUE_ON_SPEECH, _chapter_at(plan, at)[1], at,
                           f"the cue {c.sound!r} plays over the speech {words!r}",
                           "move the cue or the speech so they do not meet, or drop one", float(
                               min(c.end_ms, hit[1]) - at)))
    return out


def session_checks(plan: Plan, *, has_bed: bool, energies: tuple[np.ndarray, np.ndarray] | None = None,
                   bed_gain_db: float = 0.0, loudness_mode: str = "speech",
                   limiter_stats: LimiterStats | None = None, earlier: Iterable[Finding] = ()) -> list[Finding]:
    """Every check on a rendered session but the overrun (the planner's, reported before rendering),
    in the order of the time they point at. `earlier`: the bed check's findings, if taken before the render
    (render_audio does, so the per-100-ms energies are not held while the session is encoded)."""
    found: list[Finding] = list(earlier)
    if has_bed and energies is not None:
        found += bed_under_speech(plan, energies[0], energies[1], bed_gain_db, loudness_mode)
    if limiter_stats is not None:
        found += limiter(plan, limiter_stats) + clipping(plan, limiter_stats)
    found += silences(plan, has_bed) + cues_on_speech(plan)
    return sorted(found, key=lambda f: (f.at_ms, CHECKS.index(f.check)))


def formatted(findings: Iterable[Finding]) -> list[str]:
    return [f.format() for f in findings]
