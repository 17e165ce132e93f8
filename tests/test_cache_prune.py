"""`audiogen cache prune --max-size` and `cache info`: least recently used clips go first, the limit holds,
and a clip a running build uses is kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from buildkit import ROOT, start_build
from click.testing import CliRunner

from audiogen.cli import cli
from audiogen.voice.cache import ClipCache, parse_size

from conftest import RATE, decode

DAY = 86400


def fill(root: Path, n: int, seconds: float = 1.0) -> tuple[ClipCache, list[str]]:
    """`n` clips, the first used longest ago (a day apart), each `seconds` long; their keys, oldest first."""
    cache = ClipCache(root)
    keys = []
    now = time.time()
    for i in range(n):
        key = f"{i:02x}" + "ab" * 31
        cache.put(key, (np.arange(int(RATE * seconds)) % 200 * 50).astype(np.int16))
        t = now - (n - i) * DAY
        os.utime(cache.path(key), (t, t))
        keys.append(key)
    return cache, keys


def on_disk(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "clips").glob("*/*.wav"))


def left(cache: ClipCache, keys: list[str]) -> list[str]:
    return [k for k in keys if cache.path(k).exists()]


def test_parse_size_units():
    assert parse_size("500MB") == 500_000_000
    assert parse_size("1.5 GB") == 1_500_000_000
    assert parse_size("300MiB") == 300 * 2**20
    assert parse_size("0") == 0
    with pytest.raises(ValueError, match="500MB"):
        parse_size("lots")
    with pytest.raises(ValueError):
        parse_size("5 parsecs")


def test_prune_honours_the_size_and_keeps_the_newest(tmp_path):
    cache, keys = fill(tmp_path / "c", 10)
    clip = on_disk(tmp_path / "c") // 10
    r = cache.prune(int(clip * 3.5))
    assert on_disk(tmp_path / "c") <= clip * 3.5
    assert left(cache, keys) == keys[-3:]  # the three most recently used
    assert (r.removed, r.kept, r.in_use) == (7, 3, 0)
    assert r.bytes == on_disk(tmp_path / "c")


def test_using_a_clip_makes_it_recent(tmp_path):
    cache, keys = fill(tmp_path / "c", 6)
    cache.load(keys[0])  # the oldest, used now by a render
    assert cache.length_ms(keys[1]) is not None  # and the next one found by a narration
    clip = on_disk(tmp_path / "c") // 6
    cache.prune(clip * 2)
    assert left(cache, keys) == keys[:2]


def test_prune_zero_empties_the_cache(tmp_path):
    cache, keys = fill(tmp_path / "c", 4)
    assert cache.prune(0).removed == 4
    assert on_disk(tmp_path / "c") == 0


def test_cli_prune_and_info(tmp_path, monkeypatch):
    root = tmp_path / "c"
    cache, keys = fill(root, 8)
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(root))
    runner = CliRunner()
    info = runner.invoke(cli, ["cache", "info"])
    assert info.exit_code == 0, info.output
    assert "8 clips" in info.output
    oldest = time.strftime("%Y-%m-%d", time.localtime(os.stat(cache.path(keys[0])).st_mtime))
    assert f"least recently used {oldest}" in info.output
    size = on_disk(root)
    limit = size // 2
    r = runner.invoke(cli, ["cache", "prune", "--max-size", f"{limit}B"])
    assert r.exit_code == 0, r.output
    assert "removed 4 clips" in r.output
    assert on_disk(root) <= limit
    assert left(cache, keys) == keys[4:]
    bad = runner.invoke(cli, ["cache", "prune", "--max-size", "half"])
    assert bad.exit_code == 2 and "500MB" in bad.output and "Traceback" not in bad.output


def test_stale_build_markers_do_not_protect_anything(tmp_path):
    """A build that was killed leaves its lock file unlocked: prune removes it and prunes as usual."""
    cache, keys = fill(tmp_path / "c", 3)
    code = (f"import os; from audiogen.voice.cache import ClipCache; c = ClipCache({str(tmp_path / 'c')!r}); "
            "m = c.in_use(); m.__enter__(); c.touch({k!r}); os._exit(9)").format(k=keys[0])
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert list((tmp_path / "c" / "builds").glob("*.lock"))  # left behind by the killed process
    r = cache.prune(0)
    assert r.removed == 3 and r.in_use == 0
    assert not list((tmp_path / "c" / "builds").glob("*.lock"))


LONG = """\
title: Long Enough
voice: {engine: espeak}
cue: chime
background: {track: rain, volume: -20 dB}
intro: Welcome to a session that takes a while to render.
steps:
  - title: Rest
    say: Rest now.
    hold: 12m
outro: That is all.
"""


@pytest.mark.slow
def test_prune_keeps_the_clips_of_a_running_build(tmp_path):
    lib, out, root = tmp_path / "lib", tmp_path / "out", tmp_path / "cache"
    lib.mkdir()
    (lib / "long.yaml").write_text(LONG.replace("hold: 12m", "hold: 1s"))  # the same clips, quick to render
    first = start_build(lib, out, root)
    assert first.wait(300) == 0, first.stderr.read()
    (lib / "long.yaml").write_text(LONG)  # the next build renders 12 minutes from those cached clips
    theirs = sorted((root / "clips").glob("*/*.wav"))
    assert theirs
    long_ago = time.time() - 30 * DAY
    for p in theirs:
        os.utime(p, (long_ago, long_ago))
    cache, others = fill(root, 5)  # clips no running build uses, used more recently than the build's
    (out / "long-enough.mp3").unlink()  # so the next build renders again, from the cache

    build = start_build(lib, out, root)
    try:
        deadline = time.monotonic() + 120
        while not all(p.stat().st_mtime > long_ago + DAY for p in theirs):  # found (touched) by the build
            assert build.poll() is None, "the build ended before the test could prune beside it"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.killpg(build.pid, signal.SIGSTOP)  # hold the build mid-render while the cache is pruned
        try:
            r = cache.prune(0)
        finally:
            os.killpg(build.pid, signal.SIGCONT)
        assert r.in_use == len(theirs)
        assert all(p.exists() for p in theirs)
        assert left(cache, others) == []  # the limit still applies to every clip the build does not use
        assert build.wait(300) == 0, build.stderr.read()
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
            build.wait()
    t = json.loads((out / "long-enough.json").read_text("utf-8"))
    assert abs(len(decode(out / "long-enough.mp3")) * 1000 / RATE - t["length_ms"]) < 50
    # the build is over: nothing protects its clips now
    assert cache.prune(0).removed == len(theirs)
