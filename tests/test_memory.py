"""Memory flat with session length (issue 16): the leveller's per-100-ms state is the only session-long
state, its intermediates are made a stretch at a time, and all of it gives the same numbers to the bit as
the whole-array arithmetic it replaced (so renders do not change).

Asserted on the mechanism (what is allocated, counted by tracemalloc, which is deterministic), never on RSS
or time."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import audiogen.dsp.loudness as loudness
from audiogen.audio import sounds
from audiogen.audio.mix import Bed, BedTrack
from audiogen.dsp.ffmpeg import INTERNAL_RATE
from audiogen.dsp.loudness import LoudnessMeter, gated_loudness, periodic_slot_stats
from audiogen.plan.planner import Event

SUB = INTERNAL_RATE // 10


def reference_gate(sub: np.ndarray) -> float:
    """gated_loudness as it was written on whole arrays (before it was made a stretch at a time)."""
    if len(sub) < 4:
        return float("-inf")
    blocks = np.lib.stride_tricks.sliding_window_view(sub, 4).mean(axis=1)
    with np.errstate(divide="ignore"):
        loud = -0.691 + 10 * np.log10(blocks)
    gated = blocks[loud > -70.0]
    if not len(gated):
        return float("-inf")
    relative = -0.691 + 10 * np.log10(gated.mean()) - 10.0
    with np.errstate(divide="ignore"):
        final = gated[-0.691 + 10 * np.log10(gated) > relative]
    return float(-0.691 + 10 * np.log10(final.mean()))


@pytest.mark.parametrize("chunk", [5, 64, 1 << 16])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gate_by_stretches_is_the_whole_array_gate_to_the_bit(monkeypatch, chunk, seed):
    monkeypatch.setattr(loudness, "_GATE_CHUNK", chunk)
    rng = np.random.default_rng(seed)
    sub = rng.lognormal(-8, 3, 3000)  # loud and quiet stretches, some under the absolute gate
    sub[rng.integers(0, 3000, 800)] = 0.0  # and silence
    assert gated_loudness(sub) == reference_gate(sub)
    assert gated_loudness(np.zeros(100)) == reference_gate(np.zeros(100)) == float("-inf")


def test_meter_keeps_chunks_not_a_piece_per_block():
    """12 hours of 5 s blocks once left 17,000 small arrays on the heap; the values are the same."""
    rng = np.random.default_rng(3)
    meter = LoudnessMeter()
    for i in range(300):
        block = (rng.standard_normal(INTERNAL_RATE // 2 + 7 * i) * 0.1).astype(np.float32)
        block[: 3 * SUB] = 0  # silent sub-blocks skip the transform
        meter.add(block)
    assert len(meter.energies.chunks) <= 2 and len(meter.peaks.chunks) <= 2
    assert meter.subblock_peaks().dtype == np.float32 and meter.subblock_energies().dtype == np.float64
    # the same numbers as metering the whole stream at once
    again = LoudnessMeter()
    rng = np.random.default_rng(3)
    whole = []
    for i in range(300):
        block = (rng.standard_normal(INTERNAL_RATE // 2 + 7 * i) * 0.1).astype(np.float32)
        block[: 3 * SUB] = 0
        whole.append(block)
    again.add(np.concatenate(whole))
    np.testing.assert_array_equal(meter.subblock_peaks(), again.subblock_peaks())
    np.testing.assert_allclose(meter.subblock_energies(), again.subblock_energies(), rtol=1e-12)
    assert meter.integrated() == gated_loudness(meter.subblock_energies())


def _track(total_s: float) -> BedTrack:
    loop = np.asarray(sounds.ambience("rain"), dtype=np.float32)
    events = [Event("speech", t * 1000, t * 1000 + 2500, role="say", text="x") for t in range(10, int(total_s), 37)]
    return BedTrack(Bed(loop, -18.0, -8.0, 3000, 4000), events, int(total_s * INTERNAL_RATE))


def test_bed_peaks_per_sub_block_are_the_slot_peaks_reduced():
    bed = _track(7 * 60 + 13.37)  # several chunks and a part-filled last sub-block
    e_slots, p_slots = bed.slot_energies(SUB)
    e_subs, p_subs = bed.slot_energies(SUB, per_sub=True)
    per = SUB // BedTrack.SLOT
    np.testing.assert_array_equal(e_subs, e_slots)
    assert len(p_subs) == len(e_subs)
    np.testing.assert_array_equal(p_subs, p_slots[: len(p_subs) * per].reshape(-1, per).max(axis=1))


def test_a_long_bed_is_analysed_without_an_array_of_its_slots():
    """Twelve hours of 10 ms slots in float64 are 35 MB: the leveller's path never allocates them; it holds
    the sub-block results (7 MB) and a working set bounded by the loop's length (its transforms), not the
    session's."""
    bed = _track(12 * 3600)
    periodic_slot_stats(bed.loop, BedTrack.SLOT)  # warm caches (the K-weighting's transform)
    tracemalloc.start()
    try:
        e, p = bed.slot_energies(SUB, per_sub=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    slots = bed.total // BedTrack.SLOT
    results = e.nbytes + p.nbytes
    loop = bed.loop.nbytes
    assert peak < results + 2 * loop, (peak, results, loop)
    assert peak < slots * 8 / 2  # not even half an array of slots


def test_joining_a_meters_numbers_lets_each_chunk_go():
    meter = LoudnessMeter()
    rng = np.random.default_rng(4)
    for _ in range(40):
        meter.add((rng.standard_normal(INTERNAL_RATE * 5) * 0.1).astype(np.float32))
    meter.energies.CHUNK = meter.peaks.CHUNK = 64  # (set after the first chunk: joining handles any size)
    for _ in range(5):
        meter.add((rng.standard_normal(INTERNAL_RATE * 5) * 0.1).astype(np.float32))
    want_e, want_p = meter.subblock_energies(), meter.subblock_peaks()
    e, p = meter.energies.joined(), meter.peaks.joined()
    np.testing.assert_array_equal(e, want_e)
    np.testing.assert_array_equal(p, want_p)
    assert meter.energies.chunks == [e] and meter.energies.joined() is e  # kept, not copied again
    assert meter.integrated() == gated_loudness(want_e)
    meter.add(np.full(SUB, 0.5, dtype=np.float32))  # appending again after a join
    assert len(meter.subblock_energies()) == len(want_e) + 1
