"""Mixing by ranges, the bed's analytic loudness and the one-pass leveller (audio.mix, audio.leveling).

The leveller predicts what the limited mix will measure without mixing the session twice; these tests
hold it to the mix it predicts: every session here is really mixed, limited and metered, and the
prediction must agree. (Builds read back with ffmpeg's own loudness meter are in test_library/test_build.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiogen.audio import sounds
from audiogen.audio.leveling import MAKE_UP_MAX_DB, PEAK_CEILING_DB, level_session
from audiogen.audio.mix import Bed, Mixer, mix_blocks
from audiogen.audio.session import load_cue
from audiogen.dsp.ffmpeg import INTERNAL_RATE
from audiogen.dsp.limiter import limit_stream
from audiogen.dsp.loudness import LoudnessMeter
from audiogen.plan.planner import Event, Plan
from audiogen.voice.clips import prepare_speech

RATE = INTERNAL_RATE
CEILING = 10 ** (PEAK_CEILING_DB / 20)


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    """Noise shaped into 4 Hz syllables, then levelled as every engine's clip is (prepare_speech)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    env = np.maximum(0.0, np.sin(2 * np.pi * 4 * t)) ** 3
    x = rng.standard_normal(n) * env
    pcm = (np.clip(x / np.abs(x).max(), -1, 1) * 20000).astype(np.int16)
    return prepare_speech(pcm, RATE).astype(np.float32) / 32768.0


def _session(minutes: float, *, every_s: float = 20.0, talk_s: float = 4.0, cue: bool = True):
    """A plan with a phrase every `every_s` seconds (and a cue before some), plus its loader."""
    clips = {f"p{i}": _speechlike(talk_s + i % 3, seed=i) for i in range(5)}
    chime = load_cue("chime", None)  # at the level a build plays cues
    events, t, i = [], 1000, 0
    total = int(minutes * 60000)
    while t + 8000 < total:
        if cue and i % 4 == 0:
            events.append(Event("cue", t, t + len(chime) * 1000 // RATE, sound="chime"))
            t += 1200
        text = f"p{i % 5}"
        n_ms = len(clips[text]) * 1000 // RATE
        events.append(Event("speech", t, t + n_ms, text=text))
        t += int(every_s * 1000)
        i += 1
    plan = Plan("test", total, [], events)

    def load(e: Event) -> np.ndarray:
        return clips[e.text] if e.kind == "speech" else chime

    return plan, load


def _bed(track: str = "rain", volume: float = -18.0, duck: float = -8.0) -> Bed:
    return Bed(np.asarray(sounds.ambience(track)), volume, duck, 3000, 4000)


def _measure(plan, load, bed, level) -> tuple[float, float]:
    """(LUFS, sample peak) of the session mixed and limited at `level`'s gains, as render_audio does."""
    meter = LoudnessMeter()
    for block in limit_stream(mix_blocks(plan, load, bed, gain_db=level.gain_db, bed_gain_db=level.bed_gain_db),
                              CEILING):
        meter.add(block)
    return meter.integrated(), meter.peak


@pytest.fixture(scope="module")
def session():
    return _session(3.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 3 * 60 * RATE - 1), st.integers(1, 4 * RATE))
def test_any_range_mixes_the_same_samples_as_the_stream(session, start, size):
    plan, load = session
    mixer = Mixer(plan, load, _bed())
    voice, under = mixer.range(start, start + size)
    stream = [np.concatenate(parts) for parts in zip(*mixer.blocks(block=RATE), strict=True)]
    end = min(start + size, len(stream[0]))
    np.testing.assert_array_equal(voice, stream[0][start:end])
    np.testing.assert_allclose(under, stream[1][start:end], rtol=0, atol=1e-6)


def test_bed_gain_follows_level_duck_and_fades(session):
    plan, load = session
    mixer = Mixer(plan, load, _bed(volume=-18.0, duck=-8.0))
    bed = mixer.bed
    speech = next(e for e in plan.events if e.kind == "speech")
    mid = (speech.start_ms + speech.end_ms) // 2 * RATE // 1000
    quiet = speech.end_ms * RATE // 1000 + 2 * RATE  # well after the release
    with np.errstate(divide="ignore"):
        gains = 20 * np.log10(bed.gain(np.array([mid, quiet, 0, bed.total - 1])))
    assert gains[0] == pytest.approx(-26.0, abs=0.01)  # level + duck while speech plays
    assert gains[1] == pytest.approx(-18.0, abs=0.01)
    assert gains[2] < -60 and gains[3] < -60  # fades start and end in silence
    # the block path (slices, duck only where it is) gives the same gain as the point lookup
    b0 = mid - RATE
    block = bed.block(b0, b0 + 2 * RATE)
    loop = np.resize(bed.loop, b0 + 2 * RATE)[b0:]
    np.testing.assert_allclose(block, loop * bed.gain(np.arange(b0, b0 + 2 * RATE)), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("track", ["rain", "ocean", "drone", "pink-noise"])
def test_analytic_bed_loudness_matches_metering_the_generated_bed(session, track):
    plan, load = session
    mixer = Mixer(plan, load, _bed(track))
    meter = LoudnessMeter()
    for _, under in mixer.blocks():
        meter.add(under)
    measured = meter.subblock_energies()
    analytic, peaks = mixer.bed.slot_energies(meter.sub)
    assert len(analytic) == len(measured)
    total_db = 10 * np.log10(analytic.sum() / measured.sum())
    assert abs(total_db) < 0.05, total_db
    audible = measured > 1e-9
    per_block = np.abs(10 * np.log10(analytic[audible] / measured[audible]))
    assert np.median(per_block) < 0.05 and per_block.max() < 0.6, (np.median(per_block), per_block.max())
    # the peak bound of each 10 ms slot is a bound: the generated bed never exceeds it
    bed_samples = np.concatenate([under for _, under in mixer.blocks()])
    slot = len(bed_samples) // len(peaks)
    real = np.abs(bed_samples[: len(peaks) * slot]).reshape(len(peaks), slot).max(axis=1)
    assert np.all(real <= peaks * 1.0001 + 1e-7)


@pytest.mark.parametrize(
    "case",
    [
        "voice only",  # no bed: the voice alone is raised, its peaks limited a little
        "rain bed",  # a mostly-bed session: the bed is raised under the limiter
        "drone bed",  # a loud, steady bed the limiter works on all the time
        "dense talk",  # speech most of the time
    ],
)
def test_prediction_matches_the_limited_mix(case):
    plan, load = _session(2.0, every_s=6.0 if case == "dense talk" else 20.0)
    bed = {"voice only": None, "rain bed": _bed("rain"), "drone bed": _bed("drone", volume=-6.0),
           "dense talk": _bed("ocean")}[case]
    level = level_session(plan, load, bed, -16.0)
    lufs, peak = _measure(plan, load, bed, level)
    assert level.predicted == pytest.approx(lufs, abs=0.1), level
    assert lufs == pytest.approx(-16.0, abs=0.2), level
    assert peak <= CEILING + 1e-6


def test_limiter_loss_is_made_up():
    """A target the voice reaches only with its peaks pushed into the limiter: the leveller raises the
    gain past the peaks' headroom and still lands on the target (measured, not guessed)."""
    plan, load = _session(1.5, every_s=6.0)
    level = level_session(plan, load, None, -15.5)
    peak = max(float(np.abs(load(e)).max()) for e in plan.events)
    within_headroom = PEAK_CEILING_DB - 20 * np.log10(peak) + 1.5  # the most gain before any make-up
    assert level.limited and level.gain_db > within_headroom + 0.2, level
    lufs, peak = _measure(plan, load, None, level)
    assert lufs == pytest.approx(-15.5, abs=0.1), level
    assert level.predicted == pytest.approx(lufs, abs=0.1)
    assert peak <= CEILING + 1e-6


def test_the_limiter_is_not_pushed_without_bound():
    """A target far beyond the voice's peaks: the gain stops MAKE_UP_MAX_DB past what the peaks allow
    (the session comes out quieter, and the build warns) instead of crushing the speech."""
    plan, load = _session(1.5, every_s=6.0)
    first = level_session(plan, load, None, -15.99)
    level = level_session(plan, load, None, -10.0)
    assert level.gain_db <= first.gain_db + MAKE_UP_MAX_DB + 0.6
    lufs, _ = _measure(plan, load, None, level)
    assert lufs < -13.0
    assert level.predicted is None or level.predicted == pytest.approx(lufs, abs=0.15)


def test_a_bed_at_its_limit_falls_short_and_says_so():
    """Mostly a quiet bed, raised as far as it may go (to the voice's level): the target is out of reach,
    and the prediction says how far, for the build's warning."""
    plan, load = _session(1.5)
    bed = _bed("pink-noise", volume=-30.0)
    level = level_session(plan, load, bed, -12.0)
    assert level.bed_gain_db == pytest.approx(30.0)
    lufs, _ = _measure(plan, load, bed, level)
    assert lufs < -13.0
    assert level.predicted == pytest.approx(lufs, abs=0.15)


def test_silence_gets_no_gain():
    plan = Plan("quiet", 5000, [], [])
    level = level_session(plan, lambda e: np.zeros(0, np.float32), None, -16.0)
    assert level.gain_db == 0.0 and level.predicted is None
