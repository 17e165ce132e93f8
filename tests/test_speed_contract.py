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


# -- a no-op rebuild of a library does nothing ------------------------------------------------------
def _library(folder, n: int):
    folder.mkdir()
    (folder / "audiogen.yaml").write_text("album: Many\ndefaults: {voice: {engine: espeak}}\noutput: {bitrate: 32k}\n")
    for i in range(n):
        (folder / f"r{i:03d}.yaml").write_text(f"title: Routine {i}\nsteps:\n  - title: Only\n"
                                               f"    say: Routine {i}. Rest.\n    duration: 2s\n")
    return folder


def _snapshot(folder):
    """Every file below `folder`: (inode, mtime, size). A rewrite (atomic: a new inode) or a touch shows."""
    return {p.relative_to(folder): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


#: Routines in the library the no-op tests rebuild. They check every routine and every file one by one (statuses,
#: snapshots, loaded modules; counted, not timed), so a library of this size shows what one of 50 would.
N = 20


@pytest.fixture(scope="module")
def built_library(tmp_path_factory):
    from audiogen.build import BuildOptions, build

    tmp = tmp_path_factory.mktemp("many")
    lib = _library(tmp / "lib", N)
    opts = dict(out_dir=tmp / "out", cache=tmp / "cache", offline=True)
    results = build([lib], BuildOptions(**opts))
    assert [r.status for r in results] == ["built"] * N
    return lib, opts


def _cli(args, cache):
    """The `audiogen` command in a fresh process: what a user runs; reports which heavy modules it loaded."""
    import json
    import os
    import subprocess
    import sys

    probe = ("import sys, atexit, json\n"
             "atexit.register(lambda: print(json.dumps(sorted(m for m in ('numpy', 'pydantic', 'yaml', 'PIL') "
             "if m in sys.modules)), file=sys.stderr))\n"
             "from audiogen.cli import main\nsys.argv = ['audiogen'] + sys.argv[1:]\nmain()\n")
    env = dict(os.environ, AUDIOGEN_CACHE_DIR=str(cache), AUDIOGEN_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", probe, *map(str, args)], capture_output=True, text=True, env=env)
    return out.returncode, out.stdout, json.loads(out.stderr.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_no_op_rebuild_of_a_library_renders_narrates_and_rewrites_nothing(built_library, process_starts):
    from audiogen.build import BuildOptions, build

    lib, opts = built_library
    before = _snapshot(opts["out_dir"])
    events = []
    results = build([lib], BuildOptions(**opts, progress=lambda kind, info: events.append(kind)))
    assert [r.status for r in results] == ["skipped"] * N
    assert not {"batch", "narrate", "clip", "narrated", "session"} & set(events)
    assert process_starts == []  # no encoder, no synthesis worker
    assert _snapshot(opts["out_dir"]) == before


@pytest.mark.slow
def test_the_command_line_answers_a_no_op_without_loading_the_library(built_library):
    lib, opts = built_library
    before = _snapshot(opts["out_dir"])
    code, out, loaded = _cli(["build", lib, "-o", opts["out_dir"]], opts["cache"])
    assert code == 0, out
    last = f"Routine {N - 1}"
    assert f"{N} unchanged (skipped)" in out and last in out.replace(f"routine-{N - 1}", last)
    assert loaded == []  # no numpy, pydantic, YAML parser or Pillow: nothing was loaded or rendered
    assert _snapshot(opts["out_dir"]) == before


@pytest.mark.slow
def test_after_one_routine_changes_only_it_is_rebuilt_and_then_nothing(built_library):
    lib, opts = built_library
    (lib / "r007.yaml").write_text("title: Routine 7\nsteps:\n  - title: Only\n    say: Routine 7. Rest now.\n"
                                   "    duration: 2s\n")
    before = _snapshot(opts["out_dir"])
    code, out, loaded = _cli(["build", lib, "-o", opts["out_dir"]], opts["cache"])
    assert code == 0, out
    assert f"1 built, {N - 1} unchanged (skipped)" in out
    after = _snapshot(opts["out_dir"])
    changed = {str(p) for p in after if after[p] != before.get(p)}
    assert "routine-7.mp3" in changed
    assert not {p for p in changed if p.endswith(".mp3") and p != "routine-7.mp3"}  # the others untouched
    code, out, loaded = _cli(["build", lib, "-o", opts["out_dir"]], opts["cache"])
    assert f"{N} unchanged (skipped)" in out and loaded == []
    assert _snapshot(opts["out_dir"]) == after


@pytest.mark.slow
def test_a_deleted_output_takes_the_full_build_which_makes_it_again(built_library):
    lib, opts = built_library
    (opts["out_dir"] / "routine-3.json").unlink()
    code, out, loaded = _cli(["build", lib, "-o", opts["out_dir"]], opts["cache"])
    assert code == 0, out
    assert f"1 built, {N - 1} unchanged (skipped)" in out and "numpy" in loaded
    assert (opts["out_dir"] / "routine-3.json").is_file()


def test_the_fast_path_walks_a_library_as_the_loader_does(tmp_path):
    """One walk serves both (routine/walk.py, standard library only): routines in subfolders and any case of
    .yml count; audiogen.yaml, hidden folders and other files do not."""
    from audiogen.build.noop import routine_files as quick
    from audiogen.routine.library import routine_files as loaders
    from audiogen.routine.walk import routine_files

    assert quick is loaders is routine_files
    lib = _library(tmp_path / "lib", 3)
    (lib / "sub").mkdir()
    (lib / "sub" / "x.YML").write_text("title: X\n")
    (lib / ".hidden").mkdir()
    (lib / ".hidden" / "y.yaml").write_text("title: Y\n")
    (lib / "notes.txt").write_text("-")
    found = [p.relative_to(lib).as_posix() for p in routine_files(lib)]
    assert len(found) == 4 and "sub/x.YML" in found
    assert not any(f.startswith(".hidden") or f in ("audiogen.yaml", "notes.txt") for f in found)


def test_a_changed_library_file_takes_the_full_build_even_with_routines_in_subfolders(tmp_path, monkeypatch):
    from audiogen import api
    from audiogen.build import BuildOptions, build

    monkeypatch.setenv("AUDIOGEN_OFFLINE", "1")
    lib = tmp_path / "lib"
    (lib / "a").mkdir(parents=True)
    (lib / "audiogen.yaml").write_text("album: One\ndefaults: {voice: {engine: espeak}}\n")
    (lib / "a" / "r.yaml").write_text("title: Sub\nsteps:\n  - title: Only\n    say: Rest.\n    duration: 2s\n")
    opts = BuildOptions(out_dir=tmp_path / "out", cache=tmp_path / "cache")
    assert [r.status for r in build([lib], opts)] == ["built"]
    assert [r.status for r in api.unchanged([lib], opts)] == ["skipped"]
    (lib / "audiogen.yaml").write_text("album: Two\ndefaults: {voice: {engine: espeak}}\n")
    assert api.unchanged([lib], opts) is None
    assert [r.status for r in build([lib], opts)] == ["retagged"]  # the album is in every session's tags only
    assert [r.status for r in api.unchanged([lib], opts)] == ["skipped"]
