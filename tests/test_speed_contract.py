"""The speed contract's checkable parts (issue 16): what a build must not do, counted, not timed.

Timings live in scripts/bench.py; these tests count work instead: files an ambience is read back from,
processes started while clips are made, and files a no-op rebuild touches.
"""

from __future__ import annotations

import numpy as np
import pytest

from audiogen.audio import sounds

LOW_RATE = 8000


@pytest.fixture
def fresh_ambience_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))
    sounds._cached_ambience.cache_clear()
    yield tmp_path / "cache" / "sounds"
    sounds._cached_ambience.cache_clear()


def test_a_generated_ambience_is_stored_and_read_back_unchanged(fresh_ambience_cache):
    first = sounds.ambience("rain", LOW_RATE)
    [stored] = fresh_ambience_cache.glob("rain-8000-*.npy")
    assert np.array_equal(np.load(stored), sounds._generate_ambience("rain", LOW_RATE).astype(np.float32))
    sounds._cached_ambience.cache_clear()
    again = sounds.ambience("rain", LOW_RATE)
    assert np.array_equal(first, again)
    assert not again.flags.writeable
    np.save(stored, np.full(len(first), 0.25, dtype=np.float32))  # a later process reads the file, not the maker
    sounds._cached_ambience.cache_clear()
    assert np.all(sounds.ambience("rain", LOW_RATE) == 0.25)


def test_a_damaged_stored_ambience_is_made_again(fresh_ambience_cache):
    sounds.ambience("drone", LOW_RATE)
    [stored] = fresh_ambience_cache.glob("drone-8000-*.npy")
    stored.write_bytes(b"\x93NUMPY broken")
    sounds._cached_ambience.cache_clear()
    x = sounds.ambience("drone", LOW_RATE)
    assert np.array_equal(x, sounds._generate_ambience("drone", LOW_RATE).astype(np.float32))
    assert np.array_equal(np.load(stored), x)  # and the file is whole again


# -- no process per clip ---------------------------------------------------------------------------
_STARTS: list[tuple[str, str]] | None = None  # (audit event, program) while a test counts, else None


def _audit(event: str, args: tuple) -> None:
    if _STARTS is not None and event in ("subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn",
                                         "os.exec", "os.spawn", "os.system"):
        _STARTS.append((event, str(args[0]) if args else ""))


_HOOKED: list[bool] = []


@pytest.fixture
def process_starts():
    """Every process this test's own Python process starts (an audit hook: nothing of ours is replaced)."""
    import sys

    global _STARTS
    if not _HOOKED:  # audit hooks cannot be removed: one for the whole session, counting only inside a test
        sys.addaudithook(_audit)
        _HOOKED.append(True)
    _STARTS = []
    try:
        yield _STARTS
    finally:
        _STARTS = None


PHRASES = ["Welcome to the evening session.", "Lower your shoulders.", "Breathe in through the nose.",
           "Sweep out to the temples.", "Rest your hands in your lap.", "Smooth the brow.",
           "Let the jaw go soft.", "That is all for tonight."]


def _cold_routine(tmp_path, engine: str):
    steps = "".join(f"  - title: Step {i}\n    say: {text}\n    hold: 1s\n" for i, text in enumerate(PHRASES[1:-1]))
    src = tmp_path / "cold.yaml"
    src.write_text(f"title: Cold\nvoice: {{engine: {engine}}}\ncue: chime\nbackground: rain\n"
                   f"intro: {PHRASES[0]}\nsteps:\n{steps}outro: {PHRASES[-1]}\n")
    return src


@pytest.mark.parametrize("engine", ["espeak", pytest.param("piper", marks=pytest.mark.slow)])
def test_a_cold_build_starts_no_process_per_clip(tmp_path, monkeypatch, process_starts, engine):
    """Every phrase is synthesised and prepared in this process (one worker), so every process the build
    starts is seen: the MP3 encoder and nothing else, however many clips were made."""
    from audiogen.build import BuildOptions, build
    from audiogen.dsp.ffmpeg import ffmpeg_exe
    from audiogen.voice.engines import get_engine

    reason = get_engine(engine).unavailable_reason()
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv("AUDIOGEN_WORKERS", "1")
    monkeypatch.setenv("ORT_DISABLE_TELEMETRY", "1")
    ffmpeg_exe()  # (imageio-ffmpeg finds its binary without a process; resolved outside the count anyway)
    del process_starts[:]
    [result] = build([_cold_routine(tmp_path, engine)],
                     BuildOptions(out_dir=tmp_path / "out", cache=tmp_path / "cache", offline=True))
    assert result.status == "built", result.error
    assert result.synthesized >= len(PHRASES)
    assert process_starts == [("subprocess.Popen", ffmpeg_exe())]
