"""The speed contract's checkable parts (issue 16): what a build must not do, counted, not timed.

Timings live in scripts/bench.py; these tests count work instead: files an ambience is read back from,
processes started while clips are made, and files a no-op rebuild touches.
"""

from __future__ import annotations

import numpy as np
import pytest

from audiogen.audio import sounds

LOW_RATE = 8000


@pytest.fixture
def fresh_ambience_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))
    sounds._cached_ambience.cache_clear()
    yield tmp_path / "cache" / "sounds"
    sounds._cached_ambience.cache_clear()


def test_a_generated_ambience_is_stored_and_read_back_unchanged(fresh_ambience_cache):
    first = sounds.ambience("rain", LOW_RATE)
    [stored] = fresh_ambience_cache.glob("rain-8000-*.npy")
    assert np.array_equal(np.load(stored), sounds._generate_ambience("rain", LOW_RATE).astype(np.float32))
    sounds._cached_ambience.cache_clear()
    again = sounds.ambience("rain", LOW_RATE)
    assert np.array_equal(first, again)
    assert not again.flags.writeable
    np.save(stored, np.full(len(first), 0.25, dtype=np.float32))  # a later process reads the file, not the maker
    sounds._cached_ambience.cache_clear()
    assert np.all(sounds.ambience("rain", LOW_RATE) == 0.25)


def test_a_damaged_stored_ambience_is_made_again(fresh_ambience_cache):
    sounds.ambience("drone", LOW_RATE)
    [stored] = fresh_ambience_cache.glob("drone-8000-*.npy")
    stored.write_bytes(b"\x93NUMPY broken")
    sounds._cached_ambience.cache_clear()
    x = sounds.ambience("drone", LOW_RATE)
    assert np.array_equal(x, sounds._generate_ambience("drone", LOW_RATE).astype(np.float32))
    assert np.array_equal(np.load(stored), x)  # and the file is whole again
