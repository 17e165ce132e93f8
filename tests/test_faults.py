"""Faults from outside: gTTS's HTTP layer misbehaving (faked with `responses`), a full disk, an output path
that cannot be a folder, and a file-size limit that stops writes mid-file.

The network tests add what tests/test_gtts.py does not cover (connection resets, a reset in the middle of
the body, HTTP-date Retry-After, 502/504, truncated bodies at many points, silent audio, random garbage)
and run a whole `auto` build through injected faults to prove that no bad clip is ever cached.
"""

from __future__ import annotations

import errno
import io
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import types
import wave
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import numpy as np
import pytest
import requests
import responses
from buildkit import cache_is_whole, make_library, start_build, visible_outputs_are_whole
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from audiogen.routine.errors import NetworkError
from audiogen.voice import engines
from audiogen.voice.engines import VoiceRequest
from audiogen.voice.engines.gtts_engine import GttsEngine

from conftest import RATE, body_for, decode, lavfi_mp3

URL = re.compile(r"https://translate\.google\.[a-z.]+/_/TranslateWebserverUi/data/batchexecute")
ROOT = Path(__file__).resolve().parent.parent


# -- payloads ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def silent_mp3(tmp_path_factory) -> bytes:
    """A well-formed MP3 of 1 s of digital silence: decodes fine, says nothing."""
    return lavfi_mp3(tmp_path_factory, "silence.mp3", "anullsrc=r=24000:cl=mono:d=1")


class _ResetAfter(io.RawIOBase):
    """A response body that delivers `cut` bytes, then the peer resets the connection."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data, self.pos, self.cut = data, 0, cut

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.pos >= self.cut:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        n = min(len(b), self.cut - self.pos)
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def reset_mid_body(data: str | bytes, fraction: float = 0.5) -> io.BufferedReader:
    raw = data.encode() if isinstance(data, str) else data
    return io.BufferedReader(_ResetAfter(raw, int(len(raw) * fraction)))


def reset_error() -> requests.exceptions.ConnectionError:
    """What requests raises when the peer resets the connection before answering."""
    return requests.exceptions.ConnectionError(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))


# -- engine-level faults -------------------------------------------------------------------------------------


def _no_rate_limit(engine: GttsEngine) -> GttsEngine:
    if hasattr(engine, "limiter"):  # the shared token bucket would make these tests wait in real time
        engine.limiter = types.SimpleNamespace(acquire=lambda: 0.0)
    return engine


@pytest.fixture
def engine(slept) -> GttsEngine:
    return _no_rate_limit(GttsEngine(sleep=slept.append))


def seconds(clip) -> float:
    return len(clip.samples) / clip.rate


def test_connection_reset_is_retried_then_network_error(rsps, engine, slept):
    rsps.add(responses.POST, URL, body=reset_error())
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert "reset" in info.value.message.lower() and "after 4 attempts" in info.value.message
    assert len(rsps.calls) == 4 and len(slept) == 3


def test_connection_reset_once_then_success(rsps, engine, mp3, slept):
    rsps.add(responses.POST, URL, body=reset_error())
    rsps.add(responses.POST, URL, body=body_for(mp3))
    assert seconds(engine.synthesize("Hello.", VoiceRequest())) == pytest.approx(1.0, abs=0.1)
    assert len(rsps.calls) == 2 and len(slept) == 1


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_reset_in_the_middle_of_the_body_is_retried(rsps, engine, mp3, fraction):
    rsps.add(responses.POST, URL, body=reset_mid_body(body_for(mp3), fraction))
    rsps.add(responses.POST, URL, body=body_for(mp3))
    clip = engine.synthesize("Hello.", VoiceRequest())
    assert seconds(clip) == pytest.approx(1.0, abs=0.1)  # the whole answer, never the part before the reset
    assert len(rsps.calls) == 2


@pytest.mark.parametrize("status", [502, 504])
def test_other_5xx_are_retried(rsps, engine, mp3, status, slept):
    rsps.add(responses.POST, URL, status=status, body="<html>Bad Gateway</html>")
    rsps.add(responses.POST, URL, body=body_for(mp3))
    assert seconds(engine.synthesize("Hello.", VoiceRequest())) == pytest.approx(1.0, abs=0.1)
    assert len(rsps.calls) == 2 and len(slept) == 1


def test_429_with_an_http_date_retry_after_waits_until_then(rsps, engine, mp3, slept):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    rsps.add(responses.POST, URL, status=429, headers={"Retry-After": when})
    rsps.add(responses.POST, URL, body=body_for(mp3))
    engine.synthesize("Hello.", VoiceRequest())
    assert len(slept) == 1 and 3.0 <= slept[0] <= 5.0


def test_429_with_a_huge_or_garbled_retry_after(rsps, slept, mp3):
    engine = _no_rate_limit(GttsEngine(sleep=slept.append, max_delay=8.0, backoff=0.5))
    rsps.add(responses.POST, URL, status=429, headers={"Retry-After": "999999999"})
    rsps.add(responses.POST, URL, status=429, headers={"Retry-After": "soon-ish"})
    rsps.add(responses.POST, URL, body=body_for(mp3))
    engine.synthesize("Hello.", VoiceRequest())
    assert slept[0] == 8.0  # capped
    assert 0.0 <= slept[1] <= 1.0  # unreadable: jittered backoff of the second attempt


def test_a_different_fault_on_every_attempt_then_success(rsps, engine, mp3, slept):
    for fault in (dict(status=429), dict(status=503), dict(body=reset_error())):
        rsps.add(responses.POST, URL, **fault)
    rsps.add(responses.POST, URL, body=body_for(mp3))
    assert seconds(engine.synthesize("Hello.", VoiceRequest())) == pytest.approx(1.0, abs=0.1)
    assert len(rsps.calls) == 4 and len(slept) == 3


def test_generic_timeout_is_retried(rsps, engine, slept):
    rsps.add(responses.POST, URL, body=requests.exceptions.Timeout("timed out"))
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert "timeout" in info.value.message and len(rsps.calls) == 4


@pytest.mark.parametrize("exc", [
    socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
    OSError(errno.ENETUNREACH, "Network is unreachable"),
])
def test_no_network_fails_fast_without_retries(rsps, engine, slept, exc):
    rsps.add(responses.POST, URL, body=requests.exceptions.ConnectionError(exc))
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert len(rsps.calls) == 1 and slept == []
    assert "DNS" in info.value.message or "unreachable" in info.value.message


def test_silent_audio_is_garbage_never_a_clip(rsps, engine, silent_mp3):
    rsps.add(responses.POST, URL, body=body_for(silent_mp3))
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert "silent" in info.value.message and len(rsps.calls) == 4


def test_silent_audio_once_then_the_real_answer(rsps, engine, silent_mp3, mp3):
    rsps.add(responses.POST, URL, body=body_for(silent_mp3))
    rsps.add(responses.POST, URL, body=body_for(mp3))
    clip = engine.synthesize("Hello.", VoiceRequest())
    assert int(np.abs(clip.samples.astype(np.int32)).max()) > 1000 and len(rsps.calls) == 2


@pytest.mark.parametrize("cut", [1, 7, 20, 64, 100, 101, 102, 103, 104, 1000, 2000, 2001, -60, -40, -31, -30, -5])
def test_truncated_body_never_yields_a_short_clip(rsps, engine, mp3, cut):
    good = body_for(mp3)
    rsps.add(responses.POST, URL, body=good[:cut])
    rsps.add(responses.POST, URL, body=good)
    clip = engine.synthesize("Hello.", VoiceRequest())
    assert seconds(clip) == pytest.approx(1.0, abs=0.1)  # either the cut answer was whole, or it was retried
    assert len(rsps.calls) in (1, 2)


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_random_garbage_bodies_are_network_errors(monkeypatch, mp3, data):
    """Corrupted answers: a clip that is real (non-silent) audio, or a NetworkError; nothing else escapes."""
    monkeypatch.delenv("AUDIOGEN_OFFLINE", raising=False)
    good = body_for(mp3).encode()
    kind = data.draw(st.sampled_from(["random", "flip", "splice", "cut"]))
    if kind == "random":
        body = data.draw(st.binary(max_size=400))
    elif kind == "flip":
        body = bytearray(good)
        for i in data.draw(st.lists(st.integers(0, len(good) - 1), min_size=1, max_size=8)):
            body[i] = data.draw(st.integers(0, 255))
        body = bytes(body)
    elif kind == "splice":
        i = data.draw(st.integers(0, len(good)))
        body = good[:i] + data.draw(st.binary(max_size=50)) + good[i:]
    else:
        body = good[: data.draw(st.integers(0, len(good)))]
    engine = _no_rate_limit(GttsEngine(sleep=lambda s: None, retries=1))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, URL, body=body)
        try:
            clip = engine.synthesize("Hello.", VoiceRequest())
        except NetworkError as e:
            assert "Google" in e.message
        else:
            assert clip.samples.size > 0 and int(np.abs(clip.samples.astype(np.int32)).max()) > 33


# -- a whole `auto` build through faults: nothing bad reaches the cache -------------------------------------

ROUTINES = {
    "a.yaml": "title: Alpha\nvoice: {engine: auto}\ncue: none\nintro: Welcome to the first session.\nsteps:\n"
              "  - title: One\n    say: Breathe in slowly. [pause 1s] And out again.\n    hold: 1s\n"
              "  - title: Two\n    repeat: 12\n    every: 1s\n",
    "b.yaml": "title: Beta\nvoice: {engine: auto}\ncue: none\nsteps:\n"
              "  - title: Press\n    say: Press your palms gently over your eyes and rest there for a while.\n"
              "    duration: 6s\n    remind: {halfway: true}\n"
              "  - title: Sides\n    say: Sweep out to the temple.\n    hold: 1s\n    sides: [left, right]\n",
    "c.yaml": "title: Gamma\nvoice: {engine: auto}\ncue: none\nsteps:\n"
              "  - title: Stubborn\n    say: Stubborn words that the service never answers properly.\n    hold: 1s\n"
              "  - title: Rest\n    say: Rest now.\n    hold: 1s\n",
}


class FaultyGoogle:
    """A fake Google: the first attempt at every chunk fails (a different fault each time, round robin);
    the second succeeds, except for chunks mentioning "Stubborn", which always fail."""

    def __init__(self, good: bytes, silent: bytes) -> None:
        self.lock = threading.Lock()
        self.attempts: dict[bytes, int] = {}
        self.injected: dict[str, int] = {}
        good_body = body_for(good)
        self.faults = [
            ("429 Retry-After", lambda: (429, {"Retry-After": "1"}, "")),
            ("429", lambda: (429, {}, "")),
            ("500", lambda: (500, {}, "<html>oops</html>")),
            ("503", lambda: (503, {}, "")),
            ("connection reset", reset_error),
            ("read timeout", lambda: requests.exceptions.ReadTimeout("read timed out")),
            ("reset mid-body", lambda: (200, {}, reset_mid_body(good_body, 0.6))),
            ("truncated body", lambda: (200, {}, good_body[: len(good_body) // 2])),
            ("non-audio base64", lambda: (200, {}, body_for(b"<html>not audio</html>" * 30))),
            ("silent audio", lambda: (200, {}, body_for(silent))),
            ("binary body", lambda: (200, {}, b"\xff\xfe\x00 jQ1olc \x80\x81")),
            ("empty 200", lambda: (200, {}, "")),
            ("no audio line", lambda: (200, {}, ")]}'\n\n[[\"wrb.fr\",\"MkEWBc\",null]]\n")),
        ]
        self.rotation = itertools.cycle(self.faults)
        self.good = good_body

    def __call__(self, request):
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        with self.lock:
            n = self.attempts.get(body, 0)
            self.attempts[body] = n + 1
            fail = n == 0 or b"Stubborn" in body
            if fail:
                name, make = next(self.rotation)
                self.injected[name] = self.injected.get(name, 0) + 1
        return make() if fail else (200, {}, self.good)


def assert_cache_is_clean(cache: Path) -> int:
    """Every cached clip is a readable, non-empty, non-silent 16-bit mono WAV; returns how many."""
    clips = sorted(cache.rglob("*.wav"))
    for p in clips:
        with wave.open(str(p), "rb") as w:
            assert w.getnchannels() == 1 and w.getsampwidth() == 2, p
            frames = w.readframes(w.getnframes())
            assert w.getnframes() > 0 and len(frames) == 2 * w.getnframes(), p
        peak = int(np.abs(np.frombuffer(frames, dtype="<i2").astype(np.int32)).max())
        assert peak > 300, f"{p}: a silent clip was cached (peak {peak})"
    return len(clips)


def test_auto_build_through_faults_never_caches_a_bad_clip(tmp_path, monkeypatch, mp3, silent_mp3):
    from click.testing import CliRunner

    from audiogen.cli import cli

    monkeypatch.delenv("AUDIOGEN_OFFLINE", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(cache))
    slept: list[float] = []
    monkeypatch.setitem(engines.ENGINES, "gtts", lambda: _no_rate_limit(GttsEngine(sleep=slept.append)))
    monkeypatch.setattr(engines, "_instances", {})
    lib = tmp_path / "lib"
    lib.mkdir()
    for name, text in ROUTINES.items():
        (lib / name).write_text(text)
    out = tmp_path / "out"
    google = FaultyGoogle(mp3, silent_mp3)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, URL, callback=google)
        res = CliRunner().invoke(cli, ["build", str(lib), "-o", str(out), "-q"])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 0, res.output
    # every kind of fault was injected, most more than once; each chunk cost exactly one retry, except the
    # stubborn one, which used all four attempts
    assert set(google.injected) == {name for name, _ in google.faults}, google.injected
    faults = sum(google.injected.values())
    stubborn = {b: n for b, n in google.attempts.items() if b"Stubborn" in b}
    assert list(stubborn.values()) == [4]
    assert all(n == 2 for b, n in google.attempts.items() if b not in stubborn), google.attempts
    assert faults == len(google.attempts) - 1 + 4 >= 20
    assert len(slept) == faults - 1  # a wait before every retry
    # Alpha and Beta were narrated by gTTS despite the faults; Gamma's stubborn phrase sent auto offline
    timelines = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json") if not p.name.endswith(
        ".chapters.json") and not p.name.startswith(".")}
    assert {t: timelines[t]["engine"] for t in ("alpha", "beta")} == {"alpha": "gtts", "beta": "gtts"}
    assert timelines["gamma"]["engine"] in ("piper", "espeak")
    # nothing bad was cached: the silent, truncated and garbled answers never became clips
    clips = assert_cache_is_clean(cache)
    assert clips >= 12
    for slug, timeline in timelines.items():
        audio = decode(out / f"{slug}.mp3")
        assert abs(len(audio) * 1000 / RATE - timeline["length_ms"]) < 50


# -- a damaged cache ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_damaged_cache_entries_are_made_again_not_used(tmp_path):
    """Clips damaged behind audiogen's back (cut short, header only, another format) are synthesised again:
    never mixed in short, never a crash."""
    lib = make_library(tmp_path / "lib")
    cache, out = tmp_path / "cache", tmp_path / "out"
    proc = start_build(lib, out, cache, "-q")
    assert proc.wait(120) == 0
    lengths = {slug: entry["length_ms"] for slug, entry in
               json.loads((out / ".audiogen-manifest.json").read_text()).items()}
    clips = sorted(cache.rglob("*.wav"))
    assert len(clips) >= 6
    for i, p in enumerate(clips):
        data = p.read_bytes()
        if i % 3 == 0:
            p.write_bytes(data[: len(data) // 2])  # the header promises twice the samples there are
        elif i % 3 == 1:
            p.write_bytes(data[:44])  # the header alone
        else:
            with wave.open(str(p), "rb") as w:
                frames = w.readframes(w.getnframes())
            with wave.open(str(p), "wb") as w:  # a whole WAV, at the wrong rate
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(22050)
                w.writeframes(frames)
    proc = start_build(lib, out, cache, "--force", "-q")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert visible_outputs_are_whole(out, lengths) == 3
    assert cache_is_whole(cache) == len(clips)
    for p in clips:
        with wave.open(str(p), "rb") as w:
            assert w.getframerate() == 44100


# -- disk full, a file in the way, a file-size limit --------------------------------------------------------

LIBRARY = {
    "one.yaml": "title: One\nvoice: {engine: espeak}\ncue: none\nsteps:\n  - title: A\n    say: Hello there.\n"
                "    hold: 3s\n",
    "two.yaml": "title: Two\nvoice: {engine: espeak}\ncue: chime\nsteps:\n  - title: B\n    say: Breathe in.\n"
                "    hold: 4s\n",
}


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name, text in LIBRARY.items():
        (lib / name).write_text(text)
    return lib


def run_build(args: list[str], env_extra: dict | None = None, preexec_fn=None, timeout: float = 60
              ) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUDIOGEN_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "audiogen", "build", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout, preexec_fn=preexec_fn)


def assert_nothing_half_written(out: Path) -> None:
    """Every visible output is whole (MP3s decode to their timeline's length, JSON parses, images open), and
    no temp file is left, hidden or not."""
    if not out.exists():
        return
    left = [p.name for p in out.iterdir() if p.name.endswith(".part")]
    assert left == [], left
    for p in out.iterdir():
        if p.name.startswith(".") and not p.name.startswith((".audiogen-manifest", ".audiogen-index")):
            raise AssertionError(f"unexpected hidden file {p.name}")
        if p.suffix == ".json" and p.stat().st_size:
            json.loads(p.read_text())
        elif p.suffix == ".json":
            raise AssertionError(f"empty {p.name}")
        elif p.suffix == ".png":
            with Image.open(p) as img:
                img.load()
        elif p.suffix == ".mp3":
            timeline = out / f"{p.stem}.json"
            assert timeline.exists(), f"{p.name} without its timeline"
            length = json.loads(timeline.read_text())["length_ms"]
            assert abs(len(decode(p)) * 1000 / RATE - length) < 50, p.name


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error: ")]


@pytest.fixture(params=["64k", "400k"])
def tmpfs(tmp_path, request):
    """A tiny file system: 64k fills on the first cover image, 400k part-way through the first MP3."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={request.param}", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a 64k tmpfs here (needs root): {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_is_a_clear_error_and_leaves_nothing_half_written(library, tmpfs, tmp_path):
    out = tmpfs / "out"
    res = run_build([str(library), "-o", str(out)], {"AUDIOGEN_CACHE_DIR": str(tmp_path / "cache")})
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    errors = _error_lines(res.stderr)
    assert errors, res.stderr
    assert any(str(out) in e for e in errors), errors
    assert not any(".part" in e for e in errors), errors
    assert "disk is full" in res.stderr or "No space left" in res.stderr
    assert_nothing_half_written(out)


def test_output_under_a_regular_file_is_a_clear_error(library, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("I am a file\n")
    out = blocker / "out"
    res = run_build([str(library), "-o", str(out)], {"AUDIOGEN_CACHE_DIR": str(tmp_path / "cache")})
    assert "Traceback" not in res.stderr + res.stdout, res.stderr[-2000:]
    assert res.returncode == 1
    errors = _error_lines(res.stderr)
    assert errors and all(str(blocker) in e for e in errors), res.stderr
    assert "not a folder" in res.stderr or "Not a directory" in res.stderr
    assert blocker.read_text() == "I am a file\n"


def _limit_file_size(limit: int):
    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("where", [
    "cover",
    "tags",
    "encoder",
])
def test_file_size_limit_mid_write_is_a_clear_error_without_partial_files(library, tmp_path, where):
    """EFBIG part-way through a file: the cover image (20 KB limit), the ID3 tags with the cover embedded
    (200 KB: the MP3 stream fits, its tags do not), or the MP3 stream itself (60 KB, small cover)."""
    out = tmp_path / "out"
    target = [str(library), "-o", str(out)]
    limit = {"cover": 20_000, "tags": 200_000, "encoder": 60_000}[where]
    if where == "encoder":  # one routine file (no library indexes), a tiny cover, 20 s of audio
        Image.new("RGB", (8, 8), "red").save(library / "tiny.png")
        long = library / "long.yaml"
        long.write_text(LIBRARY["one.yaml"].replace("hold: 3s", "hold: 20s").replace("Hello there.", "Hi.")
                        + "cover: tiny.png\n")  # "Hi." is a 40 KB clip: the cache fits under the limit
        target = [str(long), "-o", str(out)]
    res = run_build(target, {"AUDIOGEN_CACHE_DIR": str(tmp_path / "cache")}, preexec_fn=_limit_file_size(limit))
    assert "Traceback" not in res.stderr + res.stdout, res.stderr[-2000:]
    assert res.returncode == 1
    errors = _error_lines(res.stderr)
    assert errors and any(str(out) in e for e in errors), res.stderr
    assert not any(".part" in e for e in errors), errors  # the file the user knows, not a hidden temp file
    assert "too large" in res.stderr.lower()
    assert_nothing_half_written(out)
    big = [p.name for p in out.iterdir() if p.stat().st_size >= limit] if out.exists() else []
    assert big == []
