"""Shared by the crash, concurrency and fault tests: a small espeak library, builds run as real processes,
and checks that every visible output (and every cached clip) is whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import wave
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

from conftest import RATE, decode

ROOT = Path(__file__).resolve().parent.parent
ROUTINE = """\
title: Routine {n}
voice: {{engine: espeak}}
cue: chime
background: {{track: rain, volume: -20 dB}}
intro: Welcome to session {n}.
steps:
  - title: First
    say: Breathe in slowly and gently, number {n}.
    hold: 2s
  - title: Second
    say: Sweep out to the temples.
    repeat: 2
    every: 2s
  - title: Third
    say: Rest your hands.
    duration: 4s
    remind: {{halfway: true}}
outro: That is all for session {n}.
"""


def make_library(folder: Path, numbers=(1, 2, 3), extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        (folder / f"r{n}.yaml").write_text(ROUTINE.format(n=n) + extra)
    return folder


def start_build(lib: Path, out: Path, cache: Path, *args: str) -> subprocess.Popen:
    """`python -m audiogen build LIB -o OUT` offline, in its own process group (its ffmpeg and worker
    processes too), output piped."""
    env = {**os.environ, "AUDIOGEN_OFFLINE": "1", "AUDIOGEN_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "audiogen", "build", str(lib), "-o", str(out), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                            start_new_session=True)


def wait_group_gone(pgid: int, timeout: float = 5.0) -> None:
    """Every process of the build's group has exited (no ffmpeg or worker left running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError(f"processes of group {pgid} still running {timeout} s after the build ended")


def visible_outputs_are_whole(out: Path, lengths: dict[str, int], seen: dict | None = None) -> int:
    """No visible file in `out` is partial; returns how many MP3s were decoded.

    `lengths`: each session's planned length (ms), from a reference build, for an MP3 whose timeline a
    kill prevented. `seen`: files already checked, by identity (inode, size, mtime), skipped when unchanged.
    """
    mp3s = 0
    for p in sorted(out.iterdir()) if out.exists() else []:
        if p.name.endswith(".part") or p.name.endswith(".lock"):
            continue
        ident = (_ident(p), _ident(out / f"{p.stem}.json")) if p.suffix == ".mp3" else _ident(p)
        if seen is not None:
            if seen.get(p.name) == ident:
                continue
            seen[p.name] = ident
        if p.suffix == ".json":
            data = json.loads(p.read_text("utf-8"))
            if p.stem in lengths:
                assert abs(data["length_ms"] - lengths[p.stem]) < 50, p.name
        elif p.suffix == ".mp3":
            sidecar = out / f"{p.stem}.json"
            want = lengths[p.stem]
            if sidecar.exists():
                want = json.loads(sidecar.read_text("utf-8"))["length_ms"]
            got = len(decode(p)) * 1000 / RATE
            assert abs(got - want) < 50, f"{p.name}: {got:.0f} ms, its timeline says {want} ms"
            mp3s += 1
        elif p.suffix in (".png", ".jpg"):
            with Image.open(p) as img:
                img.load()
        elif p.suffix == ".xml":
            ET.parse(p)
        elif p.suffix == ".html":
            assert p.read_text("utf-8").rstrip().endswith("</html>"), p.name
        elif p.suffix in (".lrc", ".m3u8", ".vtt", ".srt", ".js", ".webmanifest"):
            assert p.read_text("utf-8").strip(), p.name
        else:
            raise AssertionError(f"unexpected output {p.name}")
    return mp3s


def _ident(p: Path) -> tuple | None:
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def cache_is_whole(cache: Path) -> int:
    """Every clip in the cache opens as a WAV and has all its frames; returns how many."""
    n = 0
    for p in cache.rglob("*.wav"):
        with wave.open(str(p), "rb") as w:
            frames = w.getnframes()
            assert frames > 0, p
            assert len(w.readframes(frames)) == frames * w.getsampwidth() * w.getnchannels(), p
        n += 1
    return n


def parts(folder: Path) -> set[Path]:
    return set(folder.glob(".*.part")) if folder.exists() else set()
