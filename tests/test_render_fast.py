"""The warm render's shortcuts change no sample: the leveller's answer read back from the clip cache on a
rebuild of the same mix (no clip decoded for the loudness pre-pass), and the encoder fed from buffers that
go round instead of new bytes per block."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from audiogen.audio.encode import int16_into, to_int16
from audiogen.build import BuildOptions, build
from audiogen.voice.cache import ClipCache

from conftest import decode

ROUTINE = """\
title: Warm Render
voice: {{engine: espeak}}
cue: chime
background: {{track: rain, volume: {volume} dB}}
intro: Welcome. Settle in.
steps:
  - title: Sweep
    say: Place two fingertips at the centre of your forehead and sweep out to the temples.
    repeat: 2
    every: 4s
  - title: Rest
    say: Rest your hands over your eyes and breathe slowly.
    duration: 8s
    remind: {{halfway: true}}
outro: That is all.
"""


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Every clip read from the clip cache (its key), in order: counted, the clip still read for real."""
    seen: list[str] = []
    real = ClipCache.load

    def counted(self, key):
        seen.append(key)
        return real(self, key)

    monkeypatch.setattr(ClipCache, "load", counted)
    return seen


def _build(lib, out, cache, monkeypatch, force=False):
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(cache))
    [r] = build([lib], BuildOptions(out_dir=out, force=force))
    assert r.status == "built", r.error
    return r, json.loads(r.mp3.with_suffix(".json").read_text())


def _library(tmp_path, volume=-20):
    lib = tmp_path / "lib"
    lib.mkdir(exist_ok=True)
    (lib / "r.yaml").write_text(ROUTINE.format(volume=volume))
    return lib


def test_a_forced_rebuild_reads_the_level_back_and_decodes_no_clip_for_it(tmp_path, monkeypatch, loads):
    lib, cache = _library(tmp_path), tmp_path / "cache"
    first, meta1 = _build(lib, tmp_path / "out", cache, monkeypatch)
    mp3 = first.mp3.read_bytes()
    made = len(loads)
    loads.clear()
    again, meta2 = _build(lib, tmp_path / "out", cache, monkeypatch, force=True)
    # the first build read each long clip twice (pre-pass, then mix); the rebuild only for the mix
    assert 0 < len(loads) < made
    assert again.mp3.read_bytes() == mp3  # the same samples, and the same bytes
    for key in ("loudness_lufs", "programme_lufs", "checks", "limiter_db"):
        assert meta2[key] == meta1[key]
    assert list((cache / "levels").glob("*/*.json"))


def test_a_changed_mix_is_measured_again_and_matches_a_fresh_cache(tmp_path, monkeypatch, loads):
    lib, cache = _library(tmp_path, volume=-20), tmp_path / "cache"
    _build(lib, tmp_path / "out", cache, monkeypatch)
    _library(tmp_path, volume=-12)  # a louder bed: other gains, another key
    changed, meta = _build(lib, tmp_path / "out", cache, monkeypatch)
    assert len(list((cache / "levels").glob("*/*.json"))) == 2
    shutil.rmtree(cache / "levels")  # the same clips, nothing kept: measured from scratch
    fresh, meta_fresh = _build(lib, tmp_path / "fresh", cache, monkeypatch)
    np.testing.assert_array_equal(decode(changed.mp3), decode(fresh.mp3))
    assert meta["loudness_lufs"] == meta_fresh["loudness_lufs"]
    assert meta["checks"] == meta_fresh["checks"]


def test_a_damaged_level_record_is_measured_again(tmp_path, monkeypatch, loads):
    lib, cache = _library(tmp_path), tmp_path / "cache"
    first, _ = _build(lib, tmp_path / "out", cache, monkeypatch)
    mp3 = first.mp3.read_bytes()
    [record] = (cache / "levels").glob("*/*.json")
    record.write_text('{"format": 1, "gain_db": ')
    made = len(loads)
    loads.clear()
    again, _ = _build(lib, tmp_path / "out", cache, monkeypatch, force=True)
    assert len(loads) == made  # measured again, as the first time
    assert again.mp3.read_bytes() == mp3
    json.loads(record.read_text())  # and kept again, whole


def test_int16_into_a_reused_buffer_is_to_int16_exactly():
    rng = np.random.default_rng(7)
    edges = np.array([1.0, -1.0, 32767 / 32768, -32768 / 32768, 1.0000001, -1.0000001, 1e9, -1e9, np.inf, -np.inf,
                      0.5 / 32768, -0.5 / 32768, 1.5 / 32768, -1.5 / 32768, 0.0, -0.0])
    ramp = np.arange(-70_000, 70_000) / 32768 + 0.3 / 32768
    for x in (rng.normal(0, 0.8, 200_000), edges, ramp):
        block = x.astype(np.float32)
        scratch, out = np.empty(len(block) + 3, np.float32), np.full(len(block) + 3, 7, "<i2")
        assert int16_into(block, scratch, out).tobytes() == to_int16(block)
    wide = rng.normal(0, 0.8, 1000)  # float64 is scaled as to_int16 does it, in float64
    assert int16_into(wide, np.empty(1000, np.float32), np.empty(1000, "<i2")).tobytes() == to_int16(wide)


def test_cache_clear_and_a_full_prune_take_the_level_records_too(tmp_path, monkeypatch, loads):
    lib, cache = _library(tmp_path), tmp_path / "cache"
    _build(lib, tmp_path / "out", cache, monkeypatch)
    assert list((cache / "levels").glob("*/*.json"))
    ClipCache(cache).prune(0)
    assert not list((cache / "clips").glob("*/*.wav")) and not list((cache / "levels").glob("*/*.json"))
    _build(lib, tmp_path / "out", cache, monkeypatch, force=True)
    ClipCache(cache).prune(10**12)  # everything fits: nothing goes
    assert list((cache / "levels").glob("*/*.json"))
    ClipCache(cache).clear()
    assert not (cache / "levels").exists()
