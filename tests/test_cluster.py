"""Building on a Dask cluster (LocalCluster, loopback only) gives what a local build gives."""

import json
import os
import re
import signal
import threading
import time

import eyed3
import pytest
from click.testing import CliRunner

from audiogen.build import BuildOptions, build
from audiogen.cli import cli

from conftest import decode

distributed = pytest.importorskip("distributed", reason="pip install 'audiogen[dask]' to test cluster builds")

LIBRARY = "album: Cluster Test\ndefaults: {voice: {engine: espeak}, background: rain, cue: bell}\n" \
          "output: {bitrate: 48k}\nvariants: {lengths: [30s]}\n"


def make_library(root, n=3):
    root.mkdir()
    (root / "audiogen.yaml").write_text(LIBRARY)
    for i in range(n):
        (root / f"r{i}.yaml").write_text(
            f"title: Routine {i}\nintro: Welcome to routine {i}.\nsteps:\n"
            f"  - title: Press\n    say: Press gently, step {i}.\n    duration: 8s\n"
            "  - title: Shared\n    say: This phrase is shared by every routine.\n    repeat: 2\n    every: 3s\n"
        )
    return root


def test_cluster_build_equals_local_build(tmp_path):
    """From the same clips, workers render exactly what this machine renders.

    (espeak-ng and Piper are not bit-exact from one call to the next, so two cold builds differ by a
    few samples wherever they run; the rendering itself is deterministic.)
    """
    lib = make_library(tmp_path / "lib")
    local = build([lib], BuildOptions(out_dir=tmp_path / "local"))
    remote = build([lib], BuildOptions(out_dir=tmp_path / "cluster", scheduler="local:2"))
    assert [r.status for r in remote] == ["built"] * 6, [r.error for r in remote]
    assert sorted(r.mp3.name for r in local) == sorted(r.mp3.name for r in remote)
    for r in local:
        a, b = r.mp3, tmp_path / "cluster" / r.mp3.name
        assert (decode(a) == decode(b)).all()
        ta, tb = eyed3.load(str(a)).tag, eyed3.load(str(b)).tag
        assert (ta.title, ta.album, ta.track_num) == (tb.title, tb.album, tb.track_num)
        assert sorted((c.title, c.times) for c in ta.chapters) == sorted((c.title, c.times) for c in tb.chapters)
        ja, jb = json.loads(a.with_suffix(".json").read_text()), json.loads(b.with_suffix(".json").read_text())
        assert ja == jb
        assert a.with_suffix(".lrc").read_text() == b.with_suffix(".lrc").read_text()
    def undated(p):  # the feed's dates are the files' modification times
        return re.sub(r"<(lastBuildDate|pubDate)>[^<]*</\1>", "", p.read_text())

    for index in ("playlist.m3u8", "feed.xml", "index.html"):
        assert undated(tmp_path / "local" / index) == undated(tmp_path / "cluster" / index)


def test_cold_cluster_build_synthesises_each_phrase_once_and_fills_the_local_cache(tmp_path, monkeypatch):
    lib = make_library(tmp_path / "lib")
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cold-cache"))
    remote = build([lib], BuildOptions(out_dir=tmp_path / "cluster", scheduler="local:2"))
    assert [r.status for r in remote] == ["built"] * 6, [r.error for r in remote]
    # 2 own phrases per routine, plus the shared phrase and two counts: 9 distinct, 9 tasks
    assert sum(r.synthesized for r in remote if r.variant is None) == 3 * 2 + 3
    for r in remote:
        timeline = json.loads(r.mp3.with_suffix(".json").read_text())
        assert abs(len(decode(r.mp3)) * 1000 / 44100 - timeline["length_ms"]) < 50
    # the client filled its own cache from what the workers made: a local rebuild synthesises nothing
    again = build([lib], BuildOptions(out_dir=tmp_path / "again"))
    assert sum(r.synthesized for r in again) == 0


def test_worker_killed_mid_build_costs_a_retry_not_the_build(tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    lib = make_library(tmp_path / "lib", n=4)
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())

        def kill_one():
            time.sleep(1.0)
            os.kill(pids[0], signal.SIGKILL)

        killer = threading.Thread(target=kill_one)
        killer.start()
        results = build([lib], BuildOptions(out_dir=tmp_path / "out", scheduler=cluster.scheduler_address))
        killer.join()
    assert [r.status for r in results] == ["built"] * 8, [r.error for r in results]
    for r in results:
        timeline = json.loads(r.mp3.with_suffix(".json").read_text())
        assert abs(len(decode(r.mp3)) * 1000 / 44100 - timeline["length_ms"]) < 50


def test_unreachable_scheduler_is_one_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    lib = make_library(tmp_path / "lib", n=1)
    monkeypatch.setenv("AUDIOGEN_SCHEDULER_TIMEOUT", "2")
    started = time.monotonic()
    res = CliRunner().invoke(cli, ["build", str(lib), "--scheduler", "tcp://127.0.0.1:9"])
    assert time.monotonic() - started < 15
    assert res.exit_code == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in res.output and "Traceback" not in res.output
    assert not (lib / "output").exists()
