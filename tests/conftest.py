"""Shared fixtures: an isolated clip cache, no network, and a decoder that did not write the files."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import responses

from audiogen.dsp.ffmpeg import ffmpeg_exe

RATE = 44100


@pytest.fixture(autouse=True, scope="session")
def _isolated(tmp_path_factory):
    """The whole run (module fixtures too) uses its own clip cache and never touches the network;
    tests that fake gTTS's HTTP turn the network back on for themselves."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "clip-cache"))
        mp.setenv("AUDIOGEN_OFFLINE", "1")
        mp.setenv("AUDIOGEN_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))  # no installed voices
        yield


def decode(path: Path, rate: int = RATE) -> np.ndarray:
    """Decode an MP3 with ffmpeg (not with audiogen's code) to float32 mono."""
    out = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"],
        capture_output=True, check=True,
    ).stdout
    return np.frombuffer(out, dtype=np.int16).astype(np.float32) / 32768.0


def rms_db(x: np.ndarray) -> float:
    if len(x) == 0:
        return -120.0
    return 20 * np.log10(max(1e-9, float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))))


def window(x: np.ndarray, start_ms: float, end_ms: float, rate: int = RATE) -> np.ndarray:
    return x[int(start_ms * rate / 1000) : int(end_ms * rate / 1000)]


def loudness(path: Path) -> tuple[float, float]:
    """Integrated LUFS and true peak (dBTP) measured by ffmpeg's ebur128 filter."""
    err = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr
    summary = err[err.rindex("Summary:"):]
    integrated = float(summary.split("I:")[1].split("LUFS")[0])
    peak = float(summary.split("Peak:")[1].split("dBFS")[0])
    return integrated, peak


def stretches_loudness(path: Path, spans_ms: list[tuple[int, int]], tmp: Path) -> float:
    """Integrated LUFS (ffmpeg's ebur128, not audiogen's meter) of the MP3's stretches `spans_ms`, joined."""
    import wave

    x = decode(path)
    joined = np.concatenate([window(x, a, b) for a, b in spans_ms])
    wav = tmp / f"{path.stem}-stretches.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(joined, -1, 32767 / 32768) * 32768).astype("<i2").tobytes())
    return loudness(wav)[0]


def speech_spans(timeline: dict) -> list[tuple[int, int]]:
    return [(e["start_ms"], e["end_ms"]) for e in timeline["events"] if e["kind"] == "speech"]


def bed_only_spans(timeline: dict, margin_ms: int = 1500) -> list[tuple[int, int]]:
    """Silences with nothing playing, `margin_ms` clear of anything else (the duck's release, fades)."""
    sounds = [(e["start_ms"], e["end_ms"]) for e in timeline["events"] if e["kind"] != "silence"]
    end = timeline["length_ms"]
    out = []
    for e in timeline["events"]:
        if e["kind"] != "silence":
            continue
        a, b = e["start_ms"] + margin_ms, e["end_ms"] - margin_ms
        if a < 8000 or b > end - 8000:  # clear of the bed's fade in and out
            continue
        if b - a >= 1000 and not any(s < b and a < t for s, t in sounds):
            out.append((a, b))
    return out


# -- a fake Google TTS, driven through gTTS's own code --------------------------------------------------------
def lavfi_mp3(tmp_path_factory, name: str, source: str) -> bytes:
    """A real 24 kHz mono MP3 (what Google returns per chunk) of an ffmpeg lavfi `source`."""
    out = tmp_path_factory.mktemp("gtts") / name
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i", source,
         "-ac", "1", "-ar", "24000", "-b:a", "32k", str(out)],
        check=True, capture_output=True,
    )
    return out.read_bytes()


def batchexecute_body(b64: str) -> str:
    """A batchexecute response shaped like Google's; gTTS greps the `jQ1olc` line for the audio."""
    line = json.dumps([["wrb.fr", "jQ1olc", f'["{b64}"]', None, None, None, "generic"]],
                      separators=(",", ":"))
    return f")]}}'\n\n{len(line)}\n{line}\n25\n[[\"e\",4,null,null,143]]\n"


def body_for(data: bytes) -> str:
    """A batchexecute response carrying `data` as the audio."""
    return batchexecute_body(base64.b64encode(data).decode("ascii"))


@pytest.fixture(scope="session")
def mp3(tmp_path_factory) -> bytes:
    """1 s of a 440 Hz tone: what a good answer decodes to."""
    return lavfi_mp3(tmp_path_factory, "tone.mp3", "sine=frequency=440:duration=1")


@pytest.fixture
def audio_body(mp3) -> str:
    return body_for(mp3)


@pytest.fixture
def rsps(monkeypatch):
    """HTTP faked by responses (an unregistered request fails instead of reaching the network)."""
    monkeypatch.delenv("AUDIOGEN_OFFLINE", raising=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def slept() -> list[float]:
    """The engine's backoff sleeps, recorded instead of slept."""
    return []


@pytest.fixture
def write_routine(tmp_path):
    """Write routine YAML (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "routine.yaml") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return p

    return write


def offline_engine() -> str:
    """The engine `auto` narrates with offline here: piper when the extra is installed, else espeak."""
    from audiogen.voice.engines import OFFLINE_PREFERENCE, get_engine

    return next(n for n in OFFLINE_PREFERENCE if get_engine(n).unavailable_reason() is None)


@pytest.fixture(scope="session")
def readme_example(_isolated, tmp_path_factory):
    """The README's Python example, run once (tests/examplekit.py): tests read what it built, never change it."""
    from examplekit import run_readme_python

    return run_readme_python(tmp_path_factory.mktemp("readme-example"))


@pytest.fixture
def encodes(tmp_path, monkeypatch):
    """A function returning how many MP3 encoders ffmpeg started since the fixture began (and since the
    last call): the bundled ffmpeg behind a wrapper script that logs its arguments."""
    real = ffmpeg_exe()
    log = tmp_path / "ffmpeg.log"
    log.write_text("")
    wrapper = tmp_path / "ffmpeg-wrapper"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(wrapper))
    ffmpeg_exe.cache_clear()
    seen = [0]

    def count() -> int:
        lines = [ln for ln in log.read_text().splitlines() if "libmp3lame" in ln]
        new, seen[0] = len(lines) - seen[0], len(lines)
        return new

    yield count
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE")
    ffmpeg_exe.cache_clear()
