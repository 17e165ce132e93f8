"""Crashes: real `audiogen build` processes killed with SIGKILL at random moments, and the temp-file protocol
(atomic_path / sweep_orphans) that makes that safe.

After every kill nothing visible is partial: each MP3 decodes (with ffmpeg) to its timeline's length, each
JSON parses, each image opens, each cached clip is a whole WAV; hidden `.*.part` temp files may remain
after a kill, and the next build that gets going removes them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
from buildkit import cache_is_whole, make_library, parts, start_build, visible_outputs_are_whole, wait_group_gone

from audiogen.routine.atomic import atomic_path, sweep_orphans

#: How many SIGKILLs the kill test delivers (builds that finish before their kill do not count).
KILLS = 15


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A library of three small routines, built once completely: its outputs, each session's length, and how
    long a build takes here (kills are spread over that time, however fast or loaded this machine is)."""
    tmp = tmp_path_factory.mktemp("crash")
    lib = make_library(tmp / "lib")
    cache, out = tmp / "cache", tmp / "ref-out"
    start = time.monotonic()
    proc = start_build(lib, out, cache, "-q")
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - start
    assert proc.returncode == 0, err
    lengths = {p.stem: json.loads(p.read_text())["length_ms"] for p in out.glob("routine-*.json")
               if not p.name.endswith(".chapters.json")}
    assert sorted(lengths) == ["routine-1", "routine-2", "routine-3"]
    return tmp, lib, lengths, took


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_a_partial_file(reference, record_property):
    tmp, lib, lengths, took = reference
    out, cache = tmp / "kill-out", tmp / "kill-cache"
    shutil.copytree(tmp / "ref-out", out)  # kills land while complete outputs are being replaced, too
    rng = random.Random(20240611)
    kills = finished = swept = mid_write = mp3s_checked = 0
    seen: set[Path] = set()
    checked: dict = {}  # outputs already verified, skipped while unchanged
    i = 0
    while kills < KILLS:
        # bounded by builds, not seconds: each one ends within its sleep plus communicate's timeout below, and
        # builds that finish before their kill may not be more than 2 in 3
        assert i < 3 * KILLS, (kills, finished, i)
        if i % 4 == 0:
            shutil.rmtree(cache, ignore_errors=True)  # synthesise again: kills land in cache writes too
        force = i % 5 != 0  # every fifth build may find nothing to do: it only sweeps and checks
        proc = start_build(lib, out, cache, *(["--force"] if force else []))
        if i % 2 or not force:  # at a random moment of the build
            time.sleep(rng.uniform(0.05, max(0.5, 0.85 * took)))
        else:  # just after it starts writing an output (an MP3 takes a while): mid-write
            deadline = time.monotonic() + 2 * took
            while proc.poll() is None and time.monotonic() < deadline and not any(
                    ".mp3." in p.name for p in parts(out) - seen):
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.15))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        _, err = proc.communicate(timeout=30)
        wait_group_gone(proc.pid)
        if proc.returncode == 0:
            finished += 1
        else:
            assert proc.returncode == -signal.SIGKILL, err
        if "narrating" in err or proc.returncode == 0:  # got past its start, where it sweeps orphans
            assert not (seen & parts(out)), "a build left a killed build's temp files in place"
            swept += len(seen)
        mp3s_checked += visible_outputs_are_whole(out, lengths, checked)
        cache_is_whole(cache)
        seen = parts(out)
        mid_write += bool(seen or list(cache.rglob(".*.part")))
        i += 1
    # a final build completes, removes every temp file, and everything it leaves is whole
    proc = start_build(lib, out, cache)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert parts(out) == set()
    assert visible_outputs_are_whole(out, lengths) == 3
    assert cache_is_whole(cache) > 0
    manifest = json.loads((out / ".audiogen-manifest.json").read_text())
    assert sorted(manifest) == sorted(lengths)
    assert kills == KILLS
    assert mid_write >= 3, f"only {mid_write} kills landed while a file was being written"
    for name, value in dict(kills=kills, killed_mid_write=mid_write, finished_before_kill=finished,
                            temp_files_swept=swept, mp3s_checked=mp3s_checked, build_s=round(took, 2)).items():
        record_property(name, value)


# -- the temp-file protocol itself --------------------------------------------------------------------------


def test_sweeper_racing_a_new_temp_file_cannot_make_a_partial_file_visible(tmp_path, monkeypatch):
    """Another build's sweep_orphans runs between mkstemp and flock (the file is not locked yet), and again
    while the writer writes. The writer must still publish exactly what it wrote."""
    import fcntl

    from audiogen.routine import atomic

    real_flock = fcntl.flock
    raced = []

    def flock_after_a_sweep(fd, op):
        if not raced:
            raced.append(fd)
            raced.append(sweep_orphans(tmp_path))  # the window a concurrent build can hit
        return real_flock(fd, op)

    monkeypatch.setattr(atomic.fcntl, "flock", flock_after_a_sweep)
    target = tmp_path / "session.json"
    with atomic_path(target) as tmp:
        with open(tmp, "w") as f:
            f.write('{"first half": 1, ')
        monkeypatch.setattr(atomic.fcntl, "flock", real_flock)
        sweep_orphans(tmp_path)  # a concurrent build starts while we write
        with open(tmp, "a") as f:
            f.write('"second half": 2}')
    assert raced[1] == 1  # the sweep really took the writer's fresh temp file
    assert json.loads(target.read_text()) == {"first half": 1, "second half": 2}
    assert parts(tmp_path) == set()


def test_orphans_are_swept_but_a_live_writer_is_not(tmp_path):
    orphan = tmp_path / ".old.mp3.abc123.part"
    orphan.write_bytes(b"half")
    with atomic_path(tmp_path / "new.mp3") as tmp:
        tmp.write_bytes(b"being written")
        assert sweep_orphans(tmp_path) == 1
        assert tmp.exists() and not orphan.exists()
    assert (tmp_path / "new.mp3").read_bytes() == b"being written"


def test_atomic_writes_never_touch_the_process_umask(tmp_path, monkeypatch):
    """os.umask is process-wide: set to 0 for a moment, another thread's new cache folder gets mode 0o777."""
    from audiogen.routine import atomic

    calls = []
    monkeypatch.setattr(atomic.os, "umask", lambda *a: calls.append(a) or 0o022)
    for i in range(3):
        atomic.write_text(tmp_path / f"f{i}.txt", "x")
    assert calls == []
    assert (tmp_path / "f0.txt").stat().st_mode & 0o777 == 0o666 & ~atomic._umask()


def test_failed_write_leaves_neither_target_nor_temp(tmp_path):
    target = tmp_path / "x.mp3"
    target.write_bytes(b"old complete file")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"new but")
            raise RuntimeError("encoder died")
    assert target.read_bytes() == b"old complete file"
    assert parts(tmp_path) == set()


def test_first_clip_stored_sweeps_killed_syntheses_from_every_cache_folder(tmp_path):
    import numpy as np

    from audiogen.voice.cache import ClipCache

    cache = ClipCache(tmp_path)
    orphans = []
    for d in ("00", "7f", "ff"):
        (tmp_path / "clips" / d).mkdir(parents=True)
        orphans.append(tmp_path / "clips" / d / f".{d}{'0' * 62}.wav.k1ll3d.part")
        orphans[-1].write_bytes(b"RIFF half a clip")
    with atomic_path(tmp_path / "clips" / "7f" / ("7f" + "1" * 62 + ".wav")) as live:  # another build, writing
        live.write_bytes(b"RIFF")
        cache.put("ab" * 32, np.full(4410, 1000, dtype=np.int16))
        assert not any(p.exists() for p in orphans)
        assert live.exists()
    assert cache.length_ms("ab" * 32) == 100
