#!/usr/bin/env python3
"""Benchmarks: rendering speed and memory against ffmpeg encoding the same length.

    python scripts/bench.py                 # 10, 30, 60, 120-minute sessions from a warm cache
    python scripts/bench.py --lengths 10,60

Each session is a routine of one-minute fixed steps (speech, counted repetitions, reminders, a cue)
over a looping, ducked rain bed, built by `audiogen.build` in a fresh process with the clip cache
already warm, so what is measured is loading, planning, mixing, encoding and tagging. The baseline is
the bundled ffmpeg alone encoding the same session's audio (from a WAV) at the same settings: LAME's
speed depends on the content (a rain bed encodes about 30% slower than pink noise), so only the same
audio makes the ratio mean "audiogen's overhead over the encoder". Peak RSS covers the build process and its
ffmpeg encoder, sampled together from /proc.
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
    # ten distinct step texts, reused: the warm cache holds them all
    return head.format(m=minutes) + "".join(STEP.format(i=i % 10) for i in range(minutes))


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
    """Peak of (this process + its child processes) resident memory, sampled every 20 ms from /proc.

    getrusage's ru_maxrss of children counts the pages a child shared with Python before it exec'd
    ffmpeg, so it overstates the encoder; /proc's VmRSS of the running ffmpeg does not.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = 0
        self._stop_event = threading.Event()

    @staticmethod
    def _rss_kb(pid: int | str) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _children(self) -> list[str]:
        kids = []
        for task in Path("/proc/self/task").iterdir():
            try:
                kids += (task / "children").read_text().split()
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
    from audiogen.build import cue_lengths, load_bed, plan_session
    from audiogen.cache import ClipCache
    from audiogen.ffmpeg import INTERNAL_RATE, ffmpeg_exe
    from audiogen.loader import load_routine
    from audiogen.narrate import Narrator
    from audiogen.planner import spoken_texts
    from audiogen.render import mix_blocks, to_int16

    routine = load_routine(path)
    cache = ClipCache()
    narration = Narrator(cache).narrate(routine, spoken_texts(routine))
    cues = cue_lengths(routine)
    plan = plan_session(routine, narration, cues)

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="10,30,60,120", help="session lengths in minutes")
    ap.add_argument("--child-build", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--child-ffmpeg", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_build:
        return child_build(*args.child_build)
    if args.child_ffmpeg:
        return child_ffmpeg(*args.child_ffmpeg)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AUDIOGEN_CACHE_DIR"] = str(Path(tmp) / "cache")
        os.environ["AUDIOGEN_OFFLINE"] = "1"
        print(f"{'session':>8} {'length':>8} {'ffmpeg':>8} {'build':>8} {'ratio':>6} {'peak RSS':>9}")
        for minutes in [int(x) for x in args.lengths.split(",")]:
            src = Path(tmp) / f"bench{minutes}.yaml"
            src.write_text(routine_text(minutes))
            run_child("--child-build", str(src), str(Path(tmp) / "warm"))  # warm the cache
            b = run_child("--child-build", str(src), str(Path(tmp) / "out"))
            f = run_child("--child-ffmpeg", str(src), str(Path(tmp) / "ref.mp3"))
            print(f"{minutes:>6}m {b['length_ms'] / 60000:>7.1f}m {f['wall']:>7.2f}s {b['wall']:>7.2f}s "
                  f"{b['wall'] / f['wall']:>5.2f}x {b['rss_kb'] / 1024:>7.0f}MB", flush=True)


if __name__ == "__main__":
    main()
