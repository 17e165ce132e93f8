"""Two builds at once: the same library (or two libraries) into one output folder, with one clip cache.

Both must succeed, every output must be whole, and the manifest (merged under a lock) must list every
session: no lost update.
"""

from __future__ import annotations

import json

import pytest
from buildkit import cache_is_whole, make_library, parts, start_build, visible_outputs_are_whole


@pytest.mark.slow
def test_two_builds_at_once_share_cache_and_output(tmp_path):
    """Same library, same output folder, same clip cache, started together: both succeed, every output is
    whole, and the manifest lists every session (no lost update). Three rounds: cold cache, forced rebuild
    with a warm cache, and two different libraries into one folder."""
    lib = make_library(tmp_path / "lib")
    other = make_library(tmp_path / "other", numbers=(4, 5))
    cache = tmp_path / "cache"
    rounds = [(lib, lib, ()), (lib, lib, ("--force",)), (lib, other, ())]
    for n, (lib_a, lib_b, args) in enumerate(rounds):
        out = tmp_path / ("out-shared" if n < 2 else "out-mixed")
        a = start_build(lib_a, out, cache, "-q", *args)
        b = start_build(lib_b, out, cache, "-q", *args)
        _, err_a = a.communicate(timeout=120)
        _, err_b = b.communicate(timeout=120)
        assert (a.returncode, b.returncode) == (0, 0), (n, err_a, err_b)
        expected = {f"routine-{k}" for k in ((1, 2, 3) if lib_b is lib else (1, 2, 3, 4, 5))}
        manifest = json.loads((out / ".audiogen-manifest.json").read_text())
        assert set(manifest) == expected, (n, sorted(manifest))
        lengths = {slug: entry["length_ms"] for slug, entry in manifest.items()}
        assert visible_outputs_are_whole(out, lengths) == len(expected)
        playlist = (out / "playlist.m3u8").read_text()
        assert all(f"{slug}.mp3" in playlist for slug in expected), (n, playlist)
        assert parts(out) == set()
        assert cache_is_whole(cache) > 0
