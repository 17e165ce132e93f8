"""Peak memory of a long session in every output format: `python scripts/bench_formats.py [minutes]`.

Each configuration is built in a fresh process (espeak, offline, its own cache and output folder); that
process reports its own peak RSS and the largest of its children's (the ffmpeg encoders it waited for).
No figure is asserted: the point is that memory does not grow with the session (compare 10 and 120 min).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUTINE = """\
title: Long Session
voice: {{engine: espeak}}
cue: chime
background: {{track: rain, volume: -20 dB}}
intro: Welcome to a long session.
steps:
  - title: First half
    say: Rest and breathe.
    hold: {half}s
  - title: Second half
    say: Keep resting.
    hold: {half}s
outro: That is all.
"""
CONFIGS = {
    "mp3": "output:\n  format: mp3\n",
    "m4b": "output:\n  format: m4b\n",
    "opus": "output:\n  format: opus\n",
    "all+split+stems": "output:\n  format: [mp3, m4b, opus]\n  split: steps\n  stems: true\n",
}
CHILD = """
import json, os, resource, sys, threading, time
from pathlib import Path
from audiogen.build import BuildOptions, build

peak = {"ffmpeg": 0, "ffmpeg_sum": 0}
stop = threading.Event()

def watch():  # the ffmpeg children's high-water marks (VmHWM), sampled: one at a time and all at once
    me = str(os.getpid())
    while not stop.wait(0.1):
        total = 0
        for d in Path("/proc").iterdir():
            try:
                stat = (d / "stat").read_text()
                if stat.split(") ")[1].split()[1] != me or "ffmpeg" not in stat.split(" (")[1].split(")")[0]:
                    continue
                kb = int(next(l for l in (d / "status").read_text().splitlines() if l.startswith("VmHWM")).split()[1])
            except (OSError, ValueError, IndexError, StopIteration):
                continue
            peak["ffmpeg"] = max(peak["ffmpeg"], kb)
            total += kb
        peak["ffmpeg_sum"] = max(peak["ffmpeg_sum"], total)

threading.Thread(target=watch, daemon=True).start()
t = time.monotonic()
[r] = build([sys.argv[1]], BuildOptions(out_dir=sys.argv[2], force=True))
stop.set()
assert r.status == "built", r.error
print(json.dumps({"seconds": round(time.monotonic() - t, 1),
                  "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "ffmpeg_mb": peak["ffmpeg"] / 1024, "ffmpeg_sum_mb": peak["ffmpeg_sum"] / 1024}))
"""


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 120
    names = sys.argv[2:] or list(CONFIGS)
    with tempfile.TemporaryDirectory(prefix="audiogen-bench-") as tmp:
        env = {**os.environ, "AUDIOGEN_OFFLINE": "1", "AUDIOGEN_CACHE_DIR": f"{tmp}/cache", "PYTHONPATH": str(ROOT)}
        for name in names:
            lib = Path(tmp) / name
            lib.mkdir()
            (lib / "long.yaml").write_text(ROUTINE.format(half=int(minutes * 30)))
            (lib / "audiogen.yaml").write_text(CONFIGS[name])
            t = time.monotonic()
            out = subprocess.run([sys.executable, "-c", CHILD, str(lib), str(lib / "out")], env=env,
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(name, "failed:", out.stderr[-2000:])
                continue
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            sizes = {p.name: round(p.stat().st_size / 1e6, 1) for p in (lib / "out").iterdir()
                     if p.suffix in (".mp3", ".m4b", ".opus", ".wav")}
            print(f"{name:16} {minutes:g} min: build {figures['seconds']} s (wall {time.monotonic() - t:.0f} s), "
                  f"audiogen peak RSS {figures['self_mb']:.0f} MB, "
                  f"largest ffmpeg encoder {figures['ffmpeg_mb']:.0f} MB, "
                  f"encoders at once {figures['ffmpeg_sum_mb']:.0f} MB; files MB {sizes}", flush=True)
            for p in (lib / "out").rglob("*.wav"):
                p.unlink()


if __name__ == "__main__":
    main()
