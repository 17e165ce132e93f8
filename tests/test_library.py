"""Library builds: defaults, variants, loudness, incremental rebuilds, pruning and parallel jobs."""

import json

import pytest
from click.testing import CliRunner

from audiogen.build import BuildOptions, build
from audiogen.cli import cli

from conftest import RATE, decode, loudness, speech_spans, stretches_loudness

LIBRARY = """\
album: Test Library
author: Tester
defaults:
  voice: {engine: espeak}
  background: {track: drone, volume: -20 dB}
  cue: tick
output: {bitrate: 64k}
variants: {lengths: [40s, 1m]}
"""

ROUTINE_A = """\
title: Alpha
intro: Welcome to alpha.
steps:
  - title: Press
    say: Press gently on the temples.
    duration: 8s
  - title: Sweep
    say: Sweep out to the ears.
    repeat: 3
    every: 3s
outro: Done.
"""

ROUTINE_B = """\
title: Beta
background: none
steps:
  - title: Hold
    say: Rest your palms over your eyes.
    hold: 6s
    remind: {halfway: true}
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    d = tmp_path_factory.mktemp("lib")
    (d / "audiogen.yaml").write_text(LIBRARY)
    (d / "a.yaml").write_text(ROUTINE_A)
    (d / "b.yaml").write_text(ROUTINE_B)
    results = build([d], BuildOptions(jobs=2))
    assert all(r.status == "built" for r in results), [r.error for r in results]
    return d, results


def test_every_routine_and_variant_is_built_and_named(library):
    d, results = library
    names = sorted(r.mp3.name for r in results)
    assert names == ["alpha-1m.mp3", "alpha-40s.mp3", "alpha.mp3", "beta-1m.mp3", "beta-40s.mp3", "beta.mp3"]
    titles = {r.slug: r.title for r in results}
    assert titles["alpha-1m"] == "Alpha (1 min)" and titles["beta-40s"] == "Beta (40s)"


def test_variants_hit_their_length_within_a_second(library):
    d, results = library
    for r in results:
        if r.variant:
            target = {"40s": 40000, "1m": 60000}[r.variant]
            measured = len(decode(r.mp3)) * 1000 / RATE
            assert abs(measured - target) < 1000, (r.mp3.name, measured)


def test_loudness_is_normalised_for_every_session(library, tmp_path):
    """The narration of every session reaches the target (speech-gated loudness, the default), measured on
    the decoded MP3's speech by ffmpeg; true peaks stay under -1 dBTP."""
    d, results = library
    for r in results:
        timeline = json.loads(r.mp3.with_suffix(".json").read_text())
        speech = stretches_loudness(r.mp3, speech_spans(timeline), tmp_path)
        assert abs(speech - (-16.0)) <= 1.0, (r.mp3.name, speech)
        _, peak = loudness(r.mp3)
        assert peak <= -1.0, (r.mp3.name, peak)


def test_defaults_apply_and_routine_values_win(library):
    d, _ = library
    a = json.loads((d / "output" / "alpha.json").read_text())
    b = json.loads((d / "output" / "beta.json").read_text())
    assert a["engine"] == "espeak" and a["album"] == "Test Library" and a["artist"] == "Tester"
    assert any(e.get("sound") == "tick" for e in a["events"])
    assert a["track"] == 1 and b["track"] == 2
    # beta says background: none; alpha has the drone bed: silence is silent only in beta
    beta_audio = decode(d / "output" / "beta.mp3")
    assert float(abs(beta_audio[: RATE // 2]).max()) < 1e-3


def test_unchanged_library_rebuild_does_nothing_and_says_so(library):
    d, _ = library
    mtimes = {p.name: p.stat().st_mtime_ns for p in (d / "output").glob("*.mp3")}
    res = CliRunner().invoke(cli, ["build", str(d)])
    assert res.exit_code == 0, res.output
    assert "6 unchanged (skipped); nothing to do: no synthesis, no rendering" in res.output
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in (d / "output").glob("*.mp3")}


def test_changing_one_routine_rebuilds_only_it(tmp_path):
    d = tmp_path / "lib"
    d.mkdir()
    (d / "audiogen.yaml").write_text("defaults: {voice: {engine: espeak}, cue: none}\noutput: {bitrate: 32k}\n")
    (d / "a.yaml").write_text("title: A\nsteps:\n  - title: x\n    say: One.\n")
    (d / "b.yaml").write_text("title: B\nsteps:\n  - title: x\n    say: Two.\n")
    build([d])
    (d / "b.yaml").write_text("title: B\nsteps:\n  - title: x\n    say: Two, changed.\n")
    results = {r.slug: r for r in build([d])}
    assert results["a"].status == "skipped" and results["a"].synthesized == 0
    assert results["b"].status == "built" and results["b"].synthesized == 1
    forced = build([d], BuildOptions(force=True))
    assert [r.status for r in forced] == ["built", "built"]
    assert sum(r.synthesized for r in forced) == 0  # forced rebuilds re-render from the cache


def test_deleted_routine_is_reported_then_pruned(tmp_path):
    d = tmp_path / "lib"
    d.mkdir()
    (d / "audiogen.yaml").write_text("defaults: {voice: {engine: espeak}, cue: none}\n")
    (d / "a.yaml").write_text("title: A\nsteps:\n  - title: x\n    say: One.\n")
    (d / "b.yaml").write_text("title: B\nsteps:\n  - title: x\n    say: Two.\n")
    build([d])
    (d / "b.yaml").unlink()
    res = CliRunner().invoke(cli, ["build", str(d)])
    assert "output/b.mp3 has no routine any more (--prune removes it)" in res.output
    assert (d / "output" / "b.mp3").exists()
    side = (".json", ".lrc", ".vtt", ".srt", ".png")
    assert all((d / "output" / f"b{ext}").exists() for ext in side)
    res = CliRunner().invoke(cli, ["build", str(d), "--prune"])
    assert "removed" in res.output and not (d / "output" / "b.mp3").exists()
    assert not (d / "output" / "b.json").exists() and (d / "output" / "a.mp3").exists()
    assert not any((d / "output" / f"b{ext}").exists() for ext in side)
    assert all((d / "output" / f"a{ext}").exists() for ext in side)


def test_variant_shorter_than_speech_is_a_clear_error(tmp_path):
    d = tmp_path / "lib"
    d.mkdir()
    (d / "audiogen.yaml").write_text("defaults: {voice: {engine: espeak}}\nvariants: {lengths: [10s]}\n")
    (d / "a.yaml").write_text("title: Long\nsteps:\n  - title: x\n    say: " + "Breathe in slowly. " * 8 + "\n")
    res = CliRunner().invoke(cli, ["build", str(d)])
    assert res.exit_code == 1
    assert "cannot make 'Long' 0:10.0 long: its speech alone takes" in res.output
    assert (d / "output" / "long.mp3").exists()  # the routine itself still builds


def test_parallel_and_serial_builds_write_the_same_audio(tmp_path):
    d = tmp_path / "lib"
    d.mkdir()
    (d / "audiogen.yaml").write_text("defaults: {voice: {engine: espeak}, background: rain}\n"
                                     "output: {bitrate: 32k}\n")
    for i in range(3):
        (d / f"r{i}.yaml").write_text(f"title: R{i}\nsteps:\n  - title: x\n    say: Routine {i}.\n    hold: 3s\n")
    build([d], BuildOptions(out_dir=tmp_path / "serial", jobs=1))
    build([d], BuildOptions(out_dir=tmp_path / "parallel", jobs=2))
    for i in range(3):
        a, b = decode(tmp_path / "serial" / f"r{i}.mp3"), decode(tmp_path / "parallel" / f"r{i}.mp3")
        assert len(a) == len(b) and float(abs(a - b).max()) == 0.0


def test_library_config_errors_are_located(tmp_path):
    d = tmp_path / "lib"
    d.mkdir()
    (d / "audiogen.yaml").write_text("album: X\ndefaults:\n  voice: {engnie: espeak}\n")
    (d / "a.yaml").write_text("title: A\nsteps:\n  - title: x\n    say: One.\n")
    res = CliRunner().invoke(cli, ["build", str(d)])
    assert res.exit_code == 1
    assert "audiogen.yaml:3:11: unknown key 'engnie'" in res.output and "did you mean 'engine'?" in res.output
