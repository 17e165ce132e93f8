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

LIBRARY = "album: Cluster Test\ndefaults: {voice: {engine: espeak}, background: rain, cue: bell,\n" \
          "  pronounce: {gently: jently}}\noutput: {bitrate: 48k}\nvariants: {lengths: [30s]}\n"


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


@pytest.mark.slow
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
        assert abs(ja.pop("first_built") - jb.pop("first_built")) < 600  # when each was built, seconds apart
        assert ja == jb
        assert a.with_suffix(".lrc").read_text() == b.with_suffix(".lrc").read_text()
    def undated(p):  # the feed's dates: when each session was first built
        return re.sub(r"<(lastBuildDate|pubDate)>[^<]*</\1>", "", p.read_text())

    for index in ("playlist.m3u8", "feed.xml", "index.html"):
        assert undated(tmp_path / "local" / index) == undated(tmp_path / "cluster" / index)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_worker_killed_during_a_warm_rebuild_costs_a_retry_not_the_build(tmp_path, monkeypatch):
    """Clips the client already had travel inside their tasks, not as scattered data: a worker that dies
    holding them costs their re-sending, and the sessions that needed them still render."""
    from distributed import Client, LocalCluster

    lib = make_library(tmp_path / "lib", n=6)
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))
    build([lib], BuildOptions(out_dir=tmp_path / "first"))  # every clip in the client's cache
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        rendered = threading.Event()

        def kill_one():  # as soon as the first session is back: the clips are spread over both workers
            rendered.wait(60)
            os.kill(pids[0], signal.SIGKILL)

        killer = threading.Thread(target=kill_one)
        killer.start()
        results = build([lib], BuildOptions(out_dir=tmp_path / "out", scheduler=cluster.scheduler_address,
                                            progress=lambda kind, info: kind == "session" and rendered.set()))
        killer.join()
    assert [r.status for r in results] == ["built"] * 12, [r.error for r in results]
    assert sum(r.synthesized for r in results) == 0
    for r in results:
        assert (decode(r.mp3) == decode(tmp_path / "first" / r.mp3.name)).all()


def test_unreachable_scheduler_is_one_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    """Fails fast: one connection attempt, bounded by AUDIOGEN_SCHEDULER_TIMEOUT (not Dask's own 30 s), before
    any work. Checked on the Client it asks for, not with a clock (Dask itself keeps to the timeout)."""
    lib = make_library(tmp_path / "lib", n=1)
    monkeypatch.setenv("AUDIOGEN_SCHEDULER_TIMEOUT", "1")
    attempts = []
    real_client = distributed.Client

    def client(*args, **kwargs):
        attempts.append((args, kwargs.get("timeout")))
        return real_client(*args, **kwargs)

    monkeypatch.setattr(distributed, "Client", client)  # cluster.connect imports it from distributed when called
    res = CliRunner().invoke(cli, ["build", str(lib), "--scheduler", "tcp://127.0.0.1:9"])
    assert attempts == [(("tcp://127.0.0.1:9",), 1.0)]
    assert res.exit_code == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in res.output and "Traceback" not in res.output
    assert not (lib / "output").exists()


def _own_phrases_library(root, n=3, engines=("espeak",) * 3):
    """Routines with four phrases of their own each (nothing shared), engine per routine."""
    root.mkdir()
    (root / "audiogen.yaml").write_text("album: Overlap\noutput: {bitrate: 48k}\n")
    for i in range(n):
        steps = "".join(f"  - title: Step {j}\n    say: Routine {i}, phrase {j}.\n    duration: 3s\n" for j in range(4))
        (root / f"r{i}.yaml").write_text(f"title: Routine {i}\nvoice: {{engine: {engines[i]}}}\nsteps:\n{steps}")
    return root


def test_a_routine_renders_as_soon_as_its_clips_are_made_not_after_the_whole_library(tmp_path, monkeypatch):
    """On a worker with one thread, the first routine's render runs as soon as its clips are made, before
    clips of later routines, not after the whole library's narration. Read from the worker's own task stream
    (when each task started), not from the order the client reports results in: the client reports a
    clip late whenever it is busy planning a session, so that order says little about the worker's."""
    from distributed import Client, LocalCluster, get_task_stream

    lib = _own_phrases_library(tmp_path / "lib", n=3)
    for i in (1, 2):  # later routines with enough clips to still be queued when the first one's render comes
        steps = "".join(f"  - title: Step {j}\n    say: Routine {i}, phrase {j}.\n    duration: 3s\n"
                        for j in range(16))
        (lib / f"r{i}.yaml").write_text(f"title: Routine {i}\nvoice: {{engine: espeak}}\nsteps:\n{steps}")
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))
    events = []
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        with get_task_stream(client) as stream:
            res = build([lib], BuildOptions(out_dir=tmp_path / "out", scheduler=cluster.scheduler_address,
                                            progress=lambda kind, info: events.append((kind, info))))
    assert [r.status for r in res] == ["built"] * 3, [r.error for r in res]
    started = sorted((min(s["start"] for s in t["startstops"] if s["action"] == "compute"), t["key"])
                     for t in stream.data)
    kinds = ["clip" if key.startswith("clip-") else "render" if key.startswith("render_remote") else "other"
             for _, key in started]
    assert kinds.count("clip") == 4 + 16 + 16 and kinds.count("render") == 3, kinds
    assert kinds.index("render") < len(kinds) - 1 - kinds[::-1].index("clip"), kinds  # before the last clips
    sessions = [info for k, info in events if k == "session"]
    assert [s["done"] for s in sessions] == [1, 2, 3] and {s["total"] for s in sessions} == {3}


def _break_piper_on_workers():
    from audiogen.routine.errors import EngineError
    from audiogen.voice.engines import get_engine

    def broken(text, voice):
        raise EngineError("Piper crashed on this worker")

    get_engine("piper").synthesize = broken


def test_auto_falls_back_on_a_worker_failure_and_an_explicit_engine_fails_only_its_routine(tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    from audiogen.voice.engines import get_engine

    if get_engine("piper").unavailable_reason() or get_engine("espeak").unavailable_reason():
        pytest.skip("needs Piper and espeak-ng")
    lib = _own_phrases_library(tmp_path / "lib", n=3, engines=("piper", "auto", "espeak"))
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(_break_piper_on_workers)  # the client's own Piper works: only the workers fail
        res = build([lib], BuildOptions(out_dir=tmp_path / "out", scheduler=cluster.scheduler_address))
    by_title = {r.title: r for r in res}
    explicit, auto, espeak = by_title["Routine 0"], by_title["Routine 1"], by_title["Routine 2"]
    assert explicit.status == "failed" and "Piper crashed" in explicit.error.message
    assert auto.status == "built" and auto.engine == "espeak", auto.error
    assert any("piper" in note and "Piper crashed" in note for note in auto.notes)
    assert espeak.status == "built" and espeak.engine == "espeak"
    assert not (tmp_path / "out" / f"{explicit.slug}.mp3").exists()


def test_a_worker_loads_the_piper_voice_once_not_per_clip(tmp_path):
    from distributed import Client, LocalCluster

    from audiogen.build.cluster import synth_clip
    from audiogen.voice.engines import VoiceRequest, get_engine

    if get_engine("piper").unavailable_reason():
        pytest.skip("needs Piper")

    def voices():
        from audiogen.voice.engines import get_engine

        return [id(m.voice) for m in get_engine("piper")._models.values() if m.voice is not None]

    req = VoiceRequest(language="en", name=None, speed=1.0)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.submit(synth_clip, "piper", req, "One.", pure=False).result()
        [first] = client.run(voices).values()
        client.submit(synth_clip, "piper", req, "Two.", pure=False).result()
        [second] = client.run(voices).values()
    assert len(first) == 1 and first == second
