"""Every shipped example and the README's example routine keep their bed at the written level: built as a user
would (speech-gated loudness, the default), decoded, and measured by ffmpeg's ebur128 (not audiogen's meter)
over the speech stretches and the bed-only stretches of the timeline, separately.

The shipped examples the README's Python example builds (as a user would: engine auto, offline) are
measured in that build, made once per test session (tests/examplekit.py; test_readme runs it too); any other
example is built here, narrated by espeak (fast; the levels do not depend on the voice: every clip is
levelled alike). Run with `-s` to see the figures.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from audiogen.build import BuildOptions, build
from audiogen.routine.library import config_for
from audiogen.routine.loader import load_routine

from conftest import bed_only_spans, speech_spans, stretches_loudness

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*/*.yaml"))
EXAMPLES = [p for p in EXAMPLES if p.name != "audiogen.yaml"]


def _readme_routines() -> list[str]:
    import yaml

    text = (ROOT / "README.md").read_text("utf-8")
    return [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S)
            if lang == "yaml" and "steps" in (yaml.safe_load(body) or {})]


def _measure(tmp_path: Path, src: Path, built=None) -> tuple[float, float, float] | None:
    """(speech LUFS, bed-only LUFS, the written volume) of `src` built, or None without a bed. `built`: an
    already built session of `src` to measure (only read), else `src` is built here."""
    routine = load_routine(src, defaults=config_for(src).defaults or None)
    if routine.background is None:
        return None
    mp3 = built
    if mp3 is None:
        [r] = build([src], BuildOptions(out_dir=tmp_path / "out", engine="espeak"))
        assert r.status == "built", r.error
        mp3 = r.mp3
    timeline = json.loads(mp3.with_suffix(".json").read_text())
    beds = bed_only_spans(timeline)
    assert sum(b - a for a, b in beds) >= 5000, "too little bed alone to measure"
    speech = stretches_loudness(mp3, speech_spans(timeline), tmp_path)
    bed = stretches_loudness(mp3, beds, tmp_path)
    return speech, bed, routine.background.volume


def _report(name: str, got: tuple[float, float, float]) -> None:
    speech, bed, volume = got
    print(f"\n{name}: speech {speech:.1f} LUFS, bed alone {bed:.1f} LUFS: bed {bed - speech:+.1f} dB "
          f"relative (written {volume:+g} dB)")


@pytest.mark.slow
@pytest.mark.parametrize("src", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_a_shipped_example_keeps_its_bed_at_the_written_level(tmp_path, src, readme_example):
    got = _measure(tmp_path, src, readme_example.built(src))
    if got is None:
        pytest.skip(f"{src.name} has no background")
    _report(src.stem, got)
    speech, bed, volume = got
    assert abs(speech - (-16.0)) <= 1.0, speech
    assert abs((bed - speech) - volume) <= 1.5, got


@pytest.mark.slow
@pytest.mark.parametrize("text", _readme_routines())
def test_the_readme_routine_keeps_its_bed_at_the_written_level(tmp_path, text):
    src = tmp_path / "src" / "readme.yaml"
    src.parent.mkdir()
    src.write_text(text)
    for asset in (ROOT / "examples").glob("*/*"):  # a README routine may name a file beside it
        if asset.suffix.lower() in (".wav", ".mp3", ".png", ".jpg"):
            shutil.copy(asset, src.parent)
    got = _measure(tmp_path, src)
    if got is None:
        pytest.skip("the README routine has no background")
    _report("README " + (re.search(r"title:\s*(.+)", text).group(1)), got)
    speech, bed, volume = got
    assert abs(speech - (-16.0)) <= 1.0, speech
    assert abs((bed - speech) - volume) <= 1.5, got
