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
import threading
import time
from pathlib import Path

import pytest
from buildkit import cache_is_whole, make_library, parts, start_build, visible_outputs_are_whole, wait_group_gone

from audiogen.routine.atomic import atomic_path, sweep_orphans

#: Where the kill test kills: each moment is chosen by what the build has shown (its progress lines on stderr,
#: or its first MP3 temp file), then a random delay, so every phase is hit without waiting for whole builds.
#: "start": while it starts and sweeps; "narrating": while it synthesises into a cold cache (cache writes);
#: "mp3-write": just after it starts writing an MP3; "rendered 1/": between and inside sessions;
#: "rendered 3/3": while it publishes (feed, page, covers, manifest) after the last session.
PHASES = {"start": 1.5, "narrating": 0.4, "mp3-write": 0.15, "rendered 1/": 0.6, "rendered 3/3": 0.3}
#: SIGKILLs each phase receives (builds that finish before their kill do not count).
KILLS_PER_PHASE = 2


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A library of three small routines, built once completely: its outputs and each session's length."""
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


def _stderr_lines(proc) -> tuple[list[str], threading.Thread]:
    """The build's stderr lines as they come, read by a thread (the test watches them to choose its moment)."""
    lines: list[str] = []

    def read():
        for line in proc.stderr:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return lines, reader


def _wait_for_phase(proc, phase: str, lines: list[str], out: Path, seen: set[Path], timeout: float) -> bool:
    """Wait until the build reaches `phase`; False if it ended (or took `timeout`) first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if phase == "start":
            return True
        if phase == "mp3-write":
            if any(".mp3." in p.name for p in parts(out) - seen):
                return True
        elif any(line.startswith(phase) for line in list(lines)):
            return True
        time.sleep(0.005)
    return False


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_a_partial_file(reference, record_property):
    tmp, lib, lengths, took = reference
    out, cache = tmp / "kill-out", tmp / "kill-cache"
    shutil.copytree(tmp / "ref-out", out)  # kills land while complete outputs are being replaced, too
    rng = random.Random(20240611)
    killed = dict.fromkeys(PHASES, 0)
    finished = swept = mid_write = mp3s_checked = 0
    seen: set[Path] = set()
    checked: dict = {}  # outputs already verified, skipped while unchanged
    i = 0
    while min(killed.values()) < KILLS_PER_PHASE:
        # bounded by builds, not seconds: each one ends within its wait plus the timeouts below, and builds
        # that finish before their kill may not be more than half
        assert i < 2 * KILLS_PER_PHASE * (len(PHASES) + 1), (killed, finished, i)
        force = i % 6 != 5  # every sixth build may find nothing to do: it only sweeps and checks
        need = [p for p in PHASES if killed[p] < KILLS_PER_PHASE]
        phase = need[i % len(need)] if force else "start"
        if i % 4 == 0 or phase == "narrating":
            shutil.rmtree(cache, ignore_errors=True)  # synthesise again: kills land in cache writes too
        proc = start_build(lib, out, cache, *(["--force"] if force else []))
        lines, reader = _stderr_lines(proc)
        reached = _wait_for_phase(proc, phase, lines, out, seen, timeout=4 * took)
        if reached:
            time.sleep(rng.uniform(0.05 if phase == "start" else 0.0, PHASES[phase]))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            if force and reached:
                killed[phase] += 1
        proc.wait(timeout=30)
        reader.join(timeout=30)
        proc.stdout.read()
        proc.stdout.close()
        proc.stderr.close()
        err = "".join(lines)
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
    assert all(n >= KILLS_PER_PHASE for n in killed.values()), killed
    assert mid_write >= 3, f"only {mid_write} kills landed while a file was being written"
    for name, value in dict(kills=sum(killed.values()), killed_mid_write=mid_write, finished_before_kill=finished,
                            temp_files_swept=swept, mp3s_checked=mp3s_checked, build_s=round(took, 2),
                            **{f"killed_{p}": n for p, n in killed.items()}).items():
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
