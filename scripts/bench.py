#!/usr/bin/env python3
"""Benchmarks: rendering speed and memory against ffmpeg encoding the same length.

    python scripts/bench.py                 # 10, 30, 60, 120-minute sessions from a warm cache
    python scripts/bench.py --lengths 10,60
    python scripts/bench.py --synth         # cold synthesis: seconds of speech per wall second, per engine
    python scripts/bench.py --library       # 50 routines: cold build, no-op rebuild, --jobs 1 vs 2
    python scripts/bench.py --cluster       # cold Piper library on Dask local:1 vs local:2
    python scripts/bench.py --contract      # issue 16: 1 h and 2 h renders, cold synthesis, 500-routine no-op
    python scripts/bench.py --scale         # issue 16: 500 and 2,000 sessions cold (slope), no-op, one changed
    python scripts/bench.py --render --long # ... and a 718-minute row (sessions stop at 12 h): one pair, ~15 min

The contract modes time whole processes (`audiogen build` through its command line, in a fresh interpreter)
against a floor in the same run, alternating A B A B after a warm-up pair, and print each figure's median
with its min-max spread and the ratio pair by pair: quote the medians; a wide spread says the machine was busy.
The 1- and 2-hour rows are warm rebuilds: the clip cache also holds each session's level record
(audio/levelmemo.py), so they skip the loudness pre-pass; the 12-hour row is a session built for the first
time (its own audio), which measures it (about 0.5 s per audio hour).

Each session is a routine of one-minute fixed steps (speech, counted repetitions, reminders, a cue)
over a looping, ducked rain bed, built by `audiogen.build` in a fresh process with the clip cache
already warm, so what is measured is loading, planning, mixing, encoding and tagging. The baseline is
the bundled ffmpeg alone encoding the same session's audio (from a WAV) at the same settings: LAME's
speed depends on the content (a rain bed encodes about 30% slower than pink noise), so only the same
audio makes the ratio mean "audiogen's overhead over the encoder". Builds and encodes run --repeat times
(default 3), alternating, and the fastest of each counts: on a shared machine other load only ever adds
time (single runs here vary by 15%). Peak memory is the largest seen: the resident memory of the build
process and its ffmpeg encoder together (their PSS, sampled from /proc: see RssSampler).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEP = """\
  - title: Step {i}
    say: Step {i}. Place two fingertips at the centre of your forehead and sweep out to the temples.
    duration: 1m
    repeat: 4
    every: 8s
    remind: {{halfway: true, remaining: [10s]}}
"""


def routine_text(minutes: int) -> str:
    head = ("title: Bench {m} minutes\nvoice: {{engine: espeak}}\ncue: chime\n"
            "background: {{track: rain, volume: -18 dB}}\nintro: Welcome.\noutro: Goodbye.\nsteps:\n")
    # ten distinct step texts, reused: the warm cache holds them all; a routine has at most 500 steps and
    # an ID3 table of contents at most 255 chapters, so 12 hours are 3-minute steps (the same speech and
    # cues, a third as dense)
    step = 1 if minutes <= 250 else 3
    text = STEP.replace("duration: 1m", f"duration: {step}m")
    return head.format(m=minutes) + "".join(text.format(i=i % 10) for i in range(minutes // step))


def child_build(path: str, out: str) -> None:
    from audiogen.build import BuildOptions, build

    sampler = RssSampler()
    sampler.start()
    t = time.perf_counter()
    [r] = build([path], BuildOptions(out_dir=Path(out), force=True))
    wall = time.perf_counter() - t
    sampler.stop()
    if r.status != "built":
        raise SystemExit(f"build failed: {r.error}")
    print(json.dumps({"wall": wall, "rss_kb": sampler.peak_kb, "length_ms": r.length_ms}))


class RssSampler(threading.Thread):
    """Peak memory of this process and its child processes together, sampled every 20 ms from /proc.

    Each process counts its proportional set size (PSS: a page shared by two processes counts half to
    each), so the sum is the memory the build really holds. Plain VmRSS double-counts: for the moment
    between fork and exec, the encoder's child is a copy of this process sharing all its pages, and a
    sampler that lands there reports twice the build (getrusage's children ru_maxrss has the same flaw);
    such a child is not counted.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = 0
        self._stop_event = threading.Event()

    @staticmethod
    def _rss_kb(pid: int | str) -> int:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _children(self) -> list[str]:
        """Child processes that run a program of their own.

        A child that has not exec'd yet is skipped: subprocess starts ffmpeg with vfork, and until the
        exec the child shares this process's memory, which /proc then shows twice.
        """
        kids = []
        me = os.readlink("/proc/self/exe")
        for task in Path("/proc/self/task").iterdir():
            try:
                kids += [k for k in (task / "children").read_text().split() if os.readlink(f"/proc/{k}/exe") != me]
            except OSError:
                pass
        return kids

    def run(self) -> None:
        while not self._stop_event.is_set():
            total = self._rss_kb("self") + sum(self._rss_kb(k) for k in self._children())
            self.peak_kb = max(self.peak_kb, total)
            self._stop_event.wait(0.02)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def child_ffmpeg(path: str, out: str) -> None:
    """Baseline: ffmpeg alone encoding the very same session audio (mixed to a WAV first, untimed)."""
    from audiogen.audio.encode import to_int16
    from audiogen.audio.mix import mix_blocks
    from audiogen.audio.session import cue_samples, load_bed
    from audiogen.build.jobs import plan_session
    from audiogen.dsp.ffmpeg import INTERNAL_RATE, ffmpeg_exe
    from audiogen.plan.planner import spoken_texts
    from audiogen.routine.loader import load_routine
    from audiogen.voice.cache import ClipCache
    from audiogen.voice.narrate import Narrator

    routine = load_routine(path)
    cache = ClipCache()
    narration = Narrator(cache).narrate(routine, spoken_texts(routine))
    cues = cue_samples(routine)
    _, plan = plan_session(routine, narration, cues)

    def load(e):
        if e.kind == "speech":
            return cache.load(narration.keys[e.text]) / 32768.0
        return cues[e.sound]

    wav = Path(out).with_suffix(".wav")
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(INTERNAL_RATE)
        for block in mix_blocks(plan, load, load_bed(routine)):
            w.writeframes(to_int16(block))
    t = time.perf_counter()
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-ac", "1", "-c:a", "libmp3lame",
                    "-b:a", "96k", "-ar", "44100", "-f", "mp3", out], check=True)
    wall = time.perf_counter() - t
    wav.unlink()
    print(json.dumps({"wall": wall, "rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=os.environ)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_synthesis(engines: tuple[str, ...] = ("piper", "espeak"), workers: tuple[int, ...] | None = None,
                    library: Path = ROOT / "examples" / "facial-massage") -> list[dict]:
    """Cold-cache synthesis of every phrase of the example library: 1 worker (in process) vs the pool.

    Each run gets a fresh, empty clip cache and a fresh Narrator, and narrates all the library's routines'
    phrases in one `Narrator.prefetch` batch (a phrase shared by routines is made once). Wall time
    includes loading the voice (in this process for 1 worker, in the workers for the pool).
    """
    from audiogen.plan.planner import spoken_texts
    from audiogen.routine.library import load_library_config, routine_files
    from audiogen.routine.loader import load_routine
    from audiogen.voice.cache import ClipCache
    from audiogen.voice.engines import get_engine
    from audiogen.voice.narrate import Narrator

    config = load_library_config(library)
    routines = [load_routine(f, defaults=config.defaults or None) for f in routine_files(library)]
    # every phrase for every engine: drop voice names meant for one engine (06 asks espeak for en-gb)
    routines = [r.model_copy(update={"voice": r.voice.model_copy(update={"name": None})}) for r in routines]
    batch = [(r, spoken_texts(r)) for r in routines]
    counts = workers or tuple(dict.fromkeys((1, os.cpu_count() or 1)))
    rows = []
    print(f"{len({t for _, texts in batch for t in texts})} distinct phrases in {len(batch)} routines; "
          f"{os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f} (other processes on these cores slow the pool most)")
    print(f"{'engine':<7} {'workers':>7} {'clips':>5} {'speech_s':>8} {'wall_s':>7} {'speech/wall':>11} "
          f"{'speedup':>7} {'pool start_s':>12}")
    for name in engines:
        reason = get_engine(name).unavailable_reason()
        if reason:
            print(f"{name:<7} skipped: {reason}")
            continue
        base = None
        for n in counts:
            with tempfile.TemporaryDirectory() as tmp, \
                    Narrator(ClipCache(tmp), engine=name, offline=True, workers=n) as narrator:
                t = time.perf_counter()
                narrator.prefetch(batch)
                wall = time.perf_counter() - t
                pool = narrator._pools.get(name)
                start = pool.startup_s if pool is not None else None
            speech = sum(b.speech_s for b in narrator.batches)
            clips = sum(b.clips for b in narrator.batches)
            base = base or wall
            row = {"engine": name, "workers": n, "clips": clips, "speech_s": speech, "wall_s": wall,
                   "speech_per_wall": speech / wall, "speedup": base / wall, "pool_start_s": start,
                   "modes": sorted({b.mode for b in narrator.batches})}
            rows.append(row)
            print(f"{name:<7} {n:>7} {clips:>5} {speech:>8.1f} {wall:>7.2f} {speech / wall:>10.1f}x "
                  f"{base / wall:>6.2f}x {'' if start is None else f'{start:.2f}':>12}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return rows


# -- library builds (issue: batch-build a session library) -------------------------------------------------
LIB_STEP = """\
  - title: Step {j}
    say: Routine {i}, step {j}. Glide your fingertips slowly from the centre outward, then rest.
    duration: 20s
"""


def bench_library(n: int = 50) -> None:
    """A 50-routine library: cold build, no-op rebuild, warm full rebuild with --jobs 1 and 2."""
    from audiogen.build import BuildOptions, build

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AUDIOGEN_CACHE_DIR"] = str(Path(tmp) / "cache")
        os.environ["AUDIOGEN_OFFLINE"] = "1"
        lib = Path(tmp) / "lib"
        lib.mkdir()
        (lib / "audiogen.yaml").write_text("album: Bench\ndefaults: {voice: {engine: espeak}, background: rain}\n"
                                           "output: {bitrate: 64k}\n")
        for i in range(n):
            (lib / f"r{i:02d}.yaml").write_text(f"title: Routine {i}\nintro: Routine {i}.\nsteps:\n"
                                                + "".join(LIB_STEP.format(i=i, j=j) for j in range(3)))
        rows = []
        t = time.perf_counter()
        results = build([lib], BuildOptions(jobs=2))
        rows.append(("cold build (espeak, --jobs 2)", time.perf_counter() - t, results))
        t = time.perf_counter()
        results = build([lib], BuildOptions(jobs=2))
        rows.append(("no-op rebuild", time.perf_counter() - t, results))
        for jobs in (1, 2):
            t = time.perf_counter()
            results = build([lib], BuildOptions(jobs=jobs, force=True))
            rows.append((f"warm full rebuild, --jobs {jobs}", time.perf_counter() - t, results))
        audio_min = sum(r.length_ms for r in rows[0][2] if r.length_ms) / 60000
        print(f"\n{n}-routine library ({audio_min:.0f} min of audio)")
        print(f"{'build':<32} {'wall':>8} {'built':>6} {'skipped':>8} {'synth':>6}")
        for name, wall, res in rows:
            built = sum(r.status == "built" for r in res)
            skipped = sum(r.status == "skipped" for r in res)
            synth = sum(r.synthesized for r in res)
            print(f"{name:<32} {wall:>7.2f}s {built:>6} {skipped:>8} {synth:>6}")
        print(f"speed-up of --jobs 2 over --jobs 1: {rows[2][1] / rows[3][1]:.2f}x")


def bench_cluster(routines: int = 8) -> None:
    """A cold Piper-narrated library on local:1 vs local:2 Dask workers (issue: build on a cluster).

    Besides the wall time, each run prints where it went: LocalCluster start-up; when the first and last
    clip and session arrived (the stages overlap); the client's own work (planning and covers, fetching
    clips into its cache, its CPU time, which on a 2-core machine competes with the workers); and per
    worker its busy time (Dask's task stream), idle time and Piper model load (its first clip task over
    the median one). CPU seconds of all processes show whether the cores were saturated.
    """
    import resource
    import statistics

    from audiogen.build import BuildOptions, build, cluster

    examples = sorted((ROOT / "examples" / "facial-massage").glob("0*.yaml"))

    def cpu(kind: int) -> float:
        u = resource.getrusage(kind)
        return u.ru_utime + u.ru_stime

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AUDIOGEN_OFFLINE"] = "1"
        lib = Path(tmp) / "lib"
        lib.mkdir()
        (lib / "audiogen.yaml").write_text("album: Cluster bench\ndefaults: {voice: {engine: piper}}\n"
                                           "output: {bitrate: 64k}\n")
        for i in range(routines):  # the examples, then copies with their own words (no shared clips)
            src = examples[i % len(examples)].read_text().replace("engine: espeak", "engine: piper")
            src = src.replace("name: en-gb", "name: null")
            if i >= len(examples):
                src = src.replace("title: ", f"title: Round {i} ", 1).replace("say: ", f"say: Round {i}. ")
            (lib / f"r{i}.yaml").write_text(src)

        probe: dict = {}
        connect, close, pipeline = cluster.connect, cluster.close, cluster.build_on_cluster

        def timed_connect(address, timeout=None):
            t = time.perf_counter()
            client = connect(address, timeout)
            probe["startup"], probe["ready"] = time.perf_counter() - t, time.time()
            client.get_task_stream(start=probe["ready"])  # turns the scheduler's task stream on
            return client

        def probed_close(client):
            probe["stream"] = client.get_task_stream(start=probe["ready"])
            close(client)

        def probed_pipeline(*args, **kwargs):
            probe["stats"] = pipeline(*args, **kwargs)
            return probe["stats"]

        def on_progress(kind, info):
            if kind == "clip" and not info["hit"] or kind == "session":
                probe.setdefault(kind, []).append(time.time())

        cluster.connect, cluster.close, cluster.build_on_cluster = timed_connect, probed_close, probed_pipeline
        print(f"\ncold Piper library of {routines} routines on a Dask LocalCluster "
              f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f})")
        print(f"{'scheduler':<10} {'wall':>8} {'clip tasks':>11} {'session tasks':>14} {'audio':>8}")
        walls, notes = {}, []
        try:
            for workers in (1, 2):
                probe.clear()
                os.environ["AUDIOGEN_CACHE_DIR"] = str(Path(tmp) / f"cache{workers}")
                cpu0, kids0 = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                res = build([lib], BuildOptions(out_dir=Path(tmp) / f"out{workers}", scheduler=f"local:{workers}",
                                                progress=on_progress))
                walls[workers] = time.perf_counter() - t
                end = time.time()
                client_cpu, kids_cpu = cpu(resource.RUSAGE_SELF) - cpu0, cpu(resource.RUSAGE_CHILDREN) - kids0
                failed = [r for r in res if r.status != "built"]
                if failed:
                    raise SystemExit(f"cluster build failed: {failed[0].error}")
                stats = probe["stats"]
                audio = sum(r.length_ms for r in res) / 60000
                print(f"local:{workers:<4} {walls[workers]:>7.1f}s {stats.clip_tasks:>11} {stats.session_tasks:>14} "
                      f"{audio:>6.1f}m", flush=True)
                ready, clips, sessions = probe["ready"], probe["clip"], probe["session"]
                lines = [f"local:{workers}: start-up {probe['startup']:.1f}s; clips +{clips[0] - ready:.1f}s to "
                         f"+{clips[-1] - ready:.1f}s, sessions +{sessions[0] - ready:.1f}s to "
                         f"+{sessions[-1] - ready:.1f}s, end +{end - ready:.1f}s (from the cluster being up)",
                         f"  client: prepare {stats.prepare_s:.1f}s, clips fetched and cached {stats.fetch_s:.1f}s, "
                         f"CPU {client_cpu:.1f}s; workers and encoders CPU {kids_cpu:.1f}s; all "
                         f"{client_cpu + kids_cpu:.1f} CPU-s = {(client_cpu + kids_cpu) / walls[workers]:.2f} "
                         "cores busy on average"]
                tasks: dict[str, list] = {}
                for task in probe["stream"]:
                    for ss in task["startstops"]:
                        if ss["action"] == "compute":
                            tasks.setdefault(task["worker"], []).append((ss["start"], ss["stop"], str(task["key"])))
                for n, (_, done) in enumerate(sorted(tasks.items()), start=1):
                    done.sort()
                    busy = {k: sum(b - a for a, b, key in done if key.startswith(k)) for k in ("clip", "render")}
                    clip_s = [b - a for a, b, key in done if key.startswith("clip")]
                    load = clip_s[0] - statistics.median(clip_s) if clip_s else 0.0
                    lines.append(f"  worker {n}: {sum(k.startswith('clip') for *_, k in done)} clips "
                                 f"{busy['clip']:.1f}s, {sum(k.startswith('render') for *_, k in done)} sessions "
                                 f"{busy['render']:.1f}s, idle {end - ready - sum(busy.values()):.1f}s "
                                 f"(after its last task {end - done[-1][1]:.1f}s), model load ~{load:.1f}s")
                notes += lines
        finally:
            cluster.connect, cluster.close, cluster.build_on_cluster = connect, close, pipeline
        print(f"speed-up local:2 over local:1: {walls[1] / walls[2]:.2f}x")
        print("\n".join(notes))


# -- the speed contract (issue 16): every figure against a floor measured in the same run, alternating ----
def _stats(xs: list[float]) -> str:
    import statistics

    return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"


def _timed(argv: list[str], env: dict | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS in KB) of one process run to the end: the kernel's own accounting (wait4).

    The peak is the largest of the process and the children it reaped (for a build, the MP3 encoder:
    ~33 MB, far under the build's own)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env or os.environ)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    if proc.returncode:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, usage.ru_maxrss


def _alternate(a, b, runs: int, warmup: bool = True) -> tuple[list, list]:
    """Run a() and b() in turn, A B A B ..., after one warm-up of each: a slow spell of the machine hits both."""
    if warmup:
        a(), b()
    ra, rb = [], []
    for _ in range(runs):
        ra.append(a())
        rb.append(b())
    return ra, rb


def child_cli(out_json: str, *argv: str) -> None:
    """The `audiogen` command in this process; at exit, its own peak memory (VmHWM) and its children's."""
    import atexit

    def hwm(pid) -> int:
        try:
            return next(int(x.split()[1]) for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if x.startswith("VmHWM"))
        except (OSError, StopIteration):
            return 0

    # The encoder's own peak: VmHWM of each child once it runs ffmpeg (its own memory after exec; the
    # kernel's RUSAGE_CHILDREN maximum also counts the moment before exec, a copy of this process).
    encoder = [0]
    me = os.readlink("/proc/self/exe")
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            for pid in RssSampler._children(None):
                try:
                    if os.readlink(f"/proc/{pid}/exe") != me:
                        encoder[0] = max(encoder[0], hwm(pid))
                except OSError:
                    pass

    threading.Thread(target=watch, daemon=True).start()

    def report() -> None:
        done.set()
        Path(out_json).write_text(json.dumps({"own_kb": hwm("self"), "children_kb": encoder[0]}))

    atexit.register(report)
    sys.argv = ["audiogen", *argv]
    from audiogen.cli import main as cli_main

    cli_main()


def write_session_wav(src: Path, wav: Path) -> None:
    """The session's own audio, mixed to a WAV once (untimed): what the floor encodes."""
    run_child("--child-wav", str(src), str(wav))


def child_wav(path: str, wav: str) -> None:
    from audiogen.audio.encode import to_int16
    from audiogen.audio.mix import mix_blocks
    from audiogen.audio.session import cue_samples, load_bed
    from audiogen.build.jobs import plan_session
    from audiogen.dsp.ffmpeg import INTERNAL_RATE
    from audiogen.plan.planner import spoken_texts
    from audiogen.routine.loader import load_routine
    from audiogen.voice.cache import ClipCache
    from audiogen.voice.narrate import Narrator

    routine = load_routine(path)
    cache = ClipCache()
    narration = Narrator(cache).narrate(routine, spoken_texts(routine))
    cues = cue_samples(routine)
    _, plan = plan_session(routine, narration, cues)

    def load(e):
        return cache.load(narration.keys[e.text]) / 32768.0 if e.kind == "speech" else cues[e.sound]

    with wave.open(wav, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(INTERNAL_RATE)
        for block in mix_blocks(plan, load, load_bed(routine)):
            w.writeframes(to_int16(block))
    print(json.dumps({"length_ms": plan.length_ms}))


def bench_render(lengths: list[int], runs: int, long_runs: int = 1) -> list[dict]:
    """`audiogen build --force` of an L-minute session (warm clip cache) against the bundled ffmpeg encoding
    that session's decoded audio (WAV) with the same settings, alternating; ratio pair by pair.

    Sessions longer than an hour are floored by the hour's WAV concatenated (ffmpeg's concat demuxer): the
    same content, so LAME's speed (which depends on it) is the same, without a 4 GB file for 12 hours.
    """
    from audiogen.dsp.ffmpeg import ffmpeg_exe

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, AUDIOGEN_CACHE_DIR=str(tmp / "cache"), AUDIOGEN_OFFLINE="1")
        os.environ.update(env)
        hour = tmp / "h60.yaml"
        hour.write_text(routine_text(60))
        run_child("--child-build", str(hour), str(tmp / "warm"))  # warms the clip cache (and the beds)
        wav = tmp / "h60.wav"
        write_session_wav(hour, wav)
        print(f"\nrender: `audiogen build --force` vs the bundled ffmpeg encoding the same audio at 96k "
              f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}); median (min-max) of {runs} pairs")
        print(f"{'session':>8} {'build_s':>20} {'floor_s':>20} {'ratio':>20} {'own MB':>7} {'encoder MB':>10} "
              f"{'floor MB':>8} {'s/audio-h':>9}")
        for minutes in lengths:
            src = tmp / f"s{minutes}.yaml"
            src.write_text(routine_text(minutes))
            if minutes == 60:
                inputs = ["-i", str(wav)]
            elif minutes > 120:  # its own audio (other steps): mixed to a WAV too (4 GB for 12 hours)
                own = tmp / f"s{minutes}.wav"
                write_session_wav(src, own)
                inputs = ["-i", str(own)]
            else:
                listing = tmp / f"list{minutes}.txt"
                listing.write_text("".join(f"file '{wav}'\n" for _ in range(max(1, round(minutes / 60)))))
                inputs = ["-f", "concat", "-safe", "0", "-i", str(listing)]
            floor_argv = [ffmpeg_exe(), "-v", "error", "-y", *inputs, "-ac", "1", "-c:a", "libmp3lame",
                          "-b:a", "96k", "-ar", "44100", "-f", "mp3", str(tmp / "floor.mp3")]
            mem = tmp / "mem.json"
            build_argv = [sys.executable, __file__, "--child-cli", str(mem), "build", str(src),
                          "-o", str(tmp / "out"), "--force", "-q"]
            mems = []

            def a(build_argv=build_argv, mem=mem, mems=mems):
                w, _ = _timed(build_argv, env)
                mems.append(json.loads(mem.read_text()))
                return w

            n = runs if minutes <= 120 else long_runs
            warm = minutes == lengths[0] and minutes <= 120
            builds, floors_ = _alternate(a, lambda f=floor_argv: _timed(f, env), n, warmup=warm)
            floors = [f for f, _ in floors_]
            ratios = [x / y for x, y in zip(builds, floors, strict=True)]
            own = max(m["own_kb"] for m in mems) / 1024
            enc = max(m["children_kb"] for m in mems) / 1024
            row = {"minutes": minutes, "build_s": builds, "floor_s": floors, "ratios": ratios, "own_mb": own,
                   "encoder_mb": enc, "floor_mb": max(r for _, r in floors_) / 1024}
            rows.append(row)
            import statistics

            print(f"{minutes:>6}m {_stats(builds):>20} {_stats(floors):>20} {_stats(ratios):>20} {own:>7.0f} "
                  f"{enc:>10.0f} {row['floor_mb']:>8.0f} {statistics.median(builds) * 60 / minutes:>9.1f}",
                  flush=True)
        if len(rows) > 1:
            import statistics

            base = rows[0]
            for r in rows[1:]:
                slope = (statistics.median(r["ratios"]) / statistics.median(base["ratios"]))
                print(f"time per audio hour, {r['minutes']}m against {base['minutes']}m (as ratios to their floors): "
                      f"{slope:.3f} (linear within 5% means 0.95-1.05); own memory {r['own_mb']:.0f} MB against "
                      f"{base['own_mb']:.0f} MB")
    return rows


def child_synth(engine: str, phrases: int, mode: str, cache_dir: str) -> None:
    """Cold synthesis in this process (one worker): wall, and the engine's own synthesis time (the floor)."""
    from audiogen.plan.planner import spoken_texts
    from audiogen.routine.library import load_library_config, routine_files
    from audiogen.routine.loader import load_routine
    from audiogen.voice import clips
    from audiogen.voice.cache import ClipCache
    from audiogen.voice.engines import get_engine
    from audiogen.voice.narrate import Narrator

    if mode == "ffmpeg":  # as before issue 16: one ffmpeg process per clip to resample it
        from audiogen.dsp.ffmpeg import resample_pcm

        clips.resample = lambda x, rate: resample_pcm(x, rate).astype(np.float32) / 32768.0
    import numpy as np

    lib = ROOT / "examples" / "facial-massage"
    config = load_library_config(lib)
    routines = [load_routine(f, defaults=config.defaults or None) for f in routine_files(lib)]
    routines = [r.model_copy(update={"voice": r.voice.model_copy(update={"name": None})}) for r in routines]
    seen: list[str] = []
    batch = []
    for r in routines:
        texts = [t for t in spoken_texts(r) if t not in seen][: max(0, phrases - len(seen))]
        seen += texts
        if texts:
            batch.append((r, texts))
    eng = get_engine(engine)
    spent = [0.0]
    real = type(eng).synthesize

    def timed(self, *a, **k):
        t = time.perf_counter()
        try:
            return real(self, *a, **k)
        finally:
            spent[0] += time.perf_counter() - t

    type(eng).synthesize = timed
    t = time.perf_counter()
    with Narrator(ClipCache(cache_dir), engine=engine, offline=True, workers=1) as narrator:
        narrator.prefetch(batch)
    wall = time.perf_counter() - t
    print(json.dumps({"wall": wall, "engine_s": spent[0], "clips": len(seen)}))


def bench_synth_cold(runs: int, phrases: int, engines=("espeak", "piper")) -> None:
    """Cold synthesis per engine, one worker: in-process resampling (now) vs an ffmpeg per clip (before),
    alternating; each against its floor, the engine's own synthesis time in the same run."""
    from audiogen.voice.engines import get_engine

    print(f"\ncold synthesis of {phrases} phrases of the example library, one worker; ratio = wall / the "
          f"engine's own synthesis time in that run; median (min-max) of {runs} pairs (load "
          f"{os.getloadavg()[0]:.1f})")
    print(f"{'engine':<7} {'resampling':<18} {'wall_s':>20} {'engine_s':>20} {'ratio':>20}")
    for engine in engines:
        reason = get_engine(engine).unavailable_reason()
        if reason:
            print(f"{engine:<7} skipped: {reason}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            k = [0]

            def one(mode, k=k, engine=engine, tmp=tmp):
                k[0] += 1
                return run_child("--child-synth", engine, str(phrases), mode, str(Path(tmp) / f"c{k[0]}"))

            now, before = _alternate(lambda: one("soxr"), lambda: one("ffmpeg"), runs)
        for label, res in (("in process (soxr)", now), ("ffmpeg per clip", before)):
            print(f"{engine:<7} {label:<18} {_stats([r['wall'] for r in res]):>20} "
                  f"{_stats([r['engine_s'] for r in res]):>20} {_stats([r['wall'] / r['engine_s'] for r in res]):>20}",
                  flush=True)
        print(f"{engine:<7} speed-up of in process over ffmpeg per clip: "
              f"{_stats([b['wall'] / a['wall'] for a, b in zip(now, before, strict=True)])}")


#: A routine the size of the shipped examples (~1.3 KB: eight steps, markup, repeats, sides, reminders) with
#: short silences: loading it costs what loading a real routine does, rendering it little. Its speech is
#: the same in every routine (a warm cache serves them all); only the title differs.
LIBRARY_ROUTINE = """\
title: Routine {i}
description: A generated routine of the benchmark library, number {i}, shaped like the examples.
cue: chime
background: {{track: rain, volume: -20 dB}}
intro: Welcome. Sit comfortably, and let your shoulders drop.
steps:
  - title: Warm up
    say: Rub your palms together until they feel warm. [pause 1s] Now press them over your face.
    hold: {hold}s
  - title: Forehead sweep
    say: Sweep out from the centre of your forehead to the temples.
    repeat: 2
    every: 3s
    count: true
  - title: Jawline lift
    say: Make a V with your fingers and glide from chin to ear.
    duration: 10s
    sides: [left, right]
    side_prompt: Now the {{side}} side.
  - title: Cheekbones
    say: Press gently under the cheekbones, [cue bell] then release.
    hold: 1s
  - title: Temples
    say: Small circles on the temples.
    duration: 6s
    remind: {{halfway: true}}
  - title: Neck
    say: Stroke down the sides of the neck.
    repeat: 2
    every: 3s
  - title: Eyes
    say: Rest your palms over your eyes.
    hold: 1s
  - title: Close
    say: Lower your hands slowly.
    hold: 1s
outro: Finish by pressing your palms over your eyes for three slow breaths.
"""


def bench_noop(n: int, runs: int) -> None:
    """An n-routine library of example-sized routines (LIBRARY_ROUTINE): cold build, then its no-op rebuild
    through the CLI against the interpreter's own start (`python -c pass`), and a one-routine change against
    building that routine alone."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, AUDIOGEN_CACHE_DIR=str(tmp / "cache"), AUDIOGEN_OFFLINE="1")
        lib = tmp / "lib"
        lib.mkdir()
        (lib / "audiogen.yaml").write_text("album: Bench\ndefaults: {voice: {engine: espeak}}\n"
                                           "output: {bitrate: 32k}\n")
        for i in range(n):
            (lib / f"r{i:03d}.yaml").write_text(LIBRARY_ROUTINE.format(i=i, hold=1))
        cli = [sys.executable, "-m", "audiogen.cli"]
        t = time.perf_counter()
        _timed([*cli, "build", str(lib), "-o", str(tmp / "out"), "-q"], env)
        cold = time.perf_counter() - t
        print(f"\n{n}-routine library: cold build {cold:.1f}s; no-op rebuild through the CLI against "
              f"`python -c pass`; median (min-max) of {runs} pairs (load {os.getloadavg()[0]:.1f})")
        noop, floor = _alternate(lambda: _timed([*cli, "build", str(lib), "-o", str(tmp / "out"), "-q"], env)[0],
                                 lambda: _timed([sys.executable, "-c", "pass"], env)[0], runs)
        print(f"no-op rebuild {_stats(noop)} s; interpreter start {_stats(floor)} s; "
              f"ratio {_stats([a / b for a, b in zip(noop, floor, strict=True)])}")
        k = [0]
        target = lib / "r007.yaml"

        def change():
            k[0] += 1
            target.write_text(LIBRARY_ROUTINE.format(i=7, hold=1 + k[0] % 2))
            return _run([*cli, "build", str(lib), "-o", str(tmp / "out"), "-q"], env)

        def alone():
            return _run([*cli, "build", str(target), "-o", str(tmp / "alone"), "--force", "-q"], env)

        changed, single = _alternate(change, alone, runs)
        for what in ("wall", "cpu"):  # CPU (the process and its ffmpeg): what a busy machine disturbs least
            print(f"one routine changed ({what}) {_stats([r[what] for r in changed])} s; that routine built alone "
                  f"{_stats([r[what] for r in single])} s; ratio "
                  f"{_stats([x[what] / y[what] for x, y in zip(changed, single, strict=True)])}")


def _run(argv: list[str], env: dict) -> dict:
    """One process run to the end: wall seconds, CPU seconds (its own and its children's, ffmpeg included)
    and peak RSS (KB), from the kernel's accounting (wait4)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{argv[:4]} failed: {err[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_kb": usage.ru_maxrss}


def scale_library(lib: Path, routines: int, lengths: str | None) -> None:
    """`routines` one-step routines over a few distinct phrases (a warm cache serves them all), with length
    variants when `lengths` is given (e.g. "10s, 15s, 20s": four sessions per routine)."""
    lib.mkdir(parents=True, exist_ok=True)
    config = "album: Bench\ndefaults: {voice: {engine: espeak}}\noutput: {bitrate: 32k}\n"
    if lengths:
        config += f"variants: {{lengths: [{lengths}]}}\n"
    (lib / "audiogen.yaml").write_text(config)
    for i in range(routines):
        (lib / f"r{i:03d}.yaml").write_text(f"title: Routine {i}\nsteps:\n  - title: Only\n"
                                            f"    say: Rest {i % 10}.\n    duration: 3s\n")


def bench_scale(runs: int, small: int = 125, large: int = 500) -> None:
    """Issue 16, libraries at scale: `small` and `large` routines with three length variants each (4 sessions
    per routine: 500 and 2,000), built cold from a warm clip cache (time and memory per session: the slope),
    then at 2,000 sessions the no-op rebuild against `python -c pass` and one routine changed against that
    routine built alone (its four sessions), alternating."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, AUDIOGEN_CACHE_DIR=str(tmp / "cache"), AUDIOGEN_OFFLINE="1")
        cli = [sys.executable, "-m", "audiogen.cli"]
        warm = tmp / "warm"
        scale_library(warm, 10, None)  # the ten phrases, synthesised once
        _run([*cli, "build", str(warm), "-o", str(tmp / "warm-out"), "-q"], env)
        rows = {}
        for n in (small, large):
            lib = tmp / f"lib{n}"
            scale_library(lib, n, "10s, 15s, 20s")
            rows[n] = _run([*cli, "build", str(lib), "-o", str(tmp / f"out{n}"), "-q"], env)
        print(f"\nlibraries at scale (warm clip cache, one-step routines x 4 lengths; load {os.getloadavg()[0]:.1f})")
        print(f"{'sessions':>9} {'cold build':>11} {'per session':>12} {'CPU/session':>12} {'peak RSS':>9}")
        for n, r in rows.items():
            print(f"{4 * n:>9} {r['wall']:>10.1f}s {r['wall'] / (4 * n) * 1000:>10.0f}ms "
                  f"{r['cpu'] / (4 * n) * 1000:>10.0f}ms {r['rss_kb'] / 1024:>7.0f}MB")
        a, b = rows[small], rows[large]
        slope = b["wall"] / large / (a["wall"] / small)
        print(f"per-session slope {4 * large} vs {4 * small} sessions: wall {slope:.2f}x,"
              f" CPU {b['cpu'] / large / (a['cpu'] / small):.2f}x (1.00 = linear); peak RSS "
              f"{b['rss_kb'] / a['rss_kb']:.2f}x for {large / small:.0f}x the sessions")
        lib, out = tmp / f"lib{large}", tmp / f"out{large}"
        noop, floor = _alternate(lambda: _run([*cli, "build", str(lib), "-o", str(out), "-q"], env),
                                 lambda: _run([sys.executable, "-c", "pass"], env), runs)
        ratios = [x["wall"] / y["wall"] for x, y in zip(noop, floor, strict=True)]
        print(f"{4 * large}-session no-op rebuild {_stats([r['wall'] for r in noop])} s; interpreter start "
              f"{_stats([r['wall'] for r in floor])} s; ratio {_stats(ratios)}")
        k = [0]
        target = lib / "r007.yaml"

        def change():
            k[0] += 1
            target.write_text(f"title: Routine 7\nsteps:\n  - title: Only\n    say: Rest 7.\n"
                              f"    duration: {3 + k[0] % 2}s\n")
            return _run([*cli, "build", str(lib), "-o", str(out), "-q"], env)

        def alone():
            return _run([*cli, "build", str(target), "-o", str(tmp / "alone"), "--force", "-q"], env)

        changed, single = _alternate(change, alone, runs)
        for what in ("wall", "cpu"):
            print(f"one routine changed ({what}) {_stats([r[what] for r in changed])} s; that routine built alone "
                  f"{_stats([r[what] for r in single])} s; ratio "
                  f"{_stats([x[what] / y[what] for x, y in zip(changed, single, strict=True)])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="10,30,60,120", help="session lengths in minutes")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest counts (default 3)")
    ap.add_argument("--synth", action="store_true", help="cold-cache synthesis speed, 1 worker vs the pool")
    ap.add_argument("--library", action="store_true", help="50-routine library: no-op and warm rebuilds")
    ap.add_argument("--cluster", action="store_true", help="cold Piper library on Dask local:1 vs local:2")
    ap.add_argument("--render", action="store_true", help="the contract: 1 h and 2 h sessions against the "
                    "encode floor, alternating (median and spread), own and encoder memory apart")
    ap.add_argument("--long", action="store_true", help="with --render: also the 12-hour row (one pair)")
    ap.add_argument("--synth-cold", action="store_true", help="cold synthesis per engine: in process vs ffmpeg")
    ap.add_argument("--phrases", type=int, default=30, help="phrases for --synth-cold (default 30)")
    ap.add_argument("--noop", type=int, nargs="?", const=500, help="N-routine library no-op rebuild (default 500)")
    ap.add_argument("--scale", action="store_true", help="libraries at scale: 500 and 2,000 sessions (with "
                    "variants) cold, and at 2,000 the no-op and one routine changed (about 15 minutes)")
    ap.add_argument("--contract", action="store_true", help="--render --synth-cold --noop 500 together")
    ap.add_argument("--child-cli", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    ap.add_argument("--child-wav", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--child-synth", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--child-build", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--child-ffmpeg", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_cli:
        return child_cli(*args.child_cli)
    if args.child_wav:
        return child_wav(*args.child_wav)
    if args.child_synth:
        e, n, mode, cache = args.child_synth
        return child_synth(e, int(n), mode, cache)
    if args.render or args.contract:
        bench_render([int(x) for x in args.lengths.split(",")] if args.lengths != "10,30,60,120" else
                     [60, 120] + ([718] if args.long else []), args.repeat)
    if args.synth_cold or args.contract:
        bench_synth_cold(args.repeat, args.phrases)
    if args.noop or args.contract:
        bench_noop(args.noop or 500, args.repeat)
    if args.scale:
        bench_scale(args.repeat)
    if args.render or args.contract or args.synth_cold or args.noop or args.scale:
        return
    if args.child_build:
        return child_build(*args.child_build)
    if args.child_ffmpeg:
        return child_ffmpeg(*args.child_ffmpeg)
    if args.synth:
        bench_synthesis()
        return
    if args.library:
        bench_library()
        return
    if args.cluster:
        bench_cluster()
        return

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AUDIOGEN_CACHE_DIR"] = str(Path(tmp) / "cache")
        os.environ["AUDIOGEN_OFFLINE"] = "1"
        print(f"{'session':>8} {'length':>8} {'ffmpeg':>8} {'build':>8} {'ratio':>6} {'peak mem':>9}")
        for minutes in [int(x) for x in args.lengths.split(",")]:
            src = Path(tmp) / f"bench{minutes}.yaml"
            src.write_text(routine_text(minutes))
            run_child("--child-build", str(src), str(Path(tmp) / "warm"))  # warm the cache
            builds, encodes = [], []
            for _ in range(args.repeat):  # alternated, so a slow spell of the machine hits both
                builds.append(run_child("--child-build", str(src), str(Path(tmp) / "out")))
                encodes.append(run_child("--child-ffmpeg", str(src), str(Path(tmp) / "ref.mp3")))
            b = dict(min(builds, key=lambda r: r["wall"]), rss_kb=max(r["rss_kb"] for r in builds))
            f = min(encodes, key=lambda r: r["wall"])
            print(f"{minutes:>6}m {b['length_ms'] / 60000:>7.1f}m {f['wall']:>7.2f}s {b['wall']:>7.2f}s "
                  f"{b['wall'] / f['wall']:>5.2f}x {b['rss_kb'] / 1024:>7.0f}MB", flush=True)


if __name__ == "__main__":
    main()
