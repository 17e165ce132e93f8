"""The documented Python API (audiogen.api, re-exported by the package): complete, typed, path-agnostic."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import eyed3
import pytest

import audiogen
from audiogen import api

from conftest import decode

ROUTINE = """\
title: API Session
voice: {engine: espeak}
cue: none
steps:
  - title: One
    say: Press gently.
    hold: 2s
"""
README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_package_exports_exactly_the_api():
    assert set(audiogen.__all__) == set(api.__all__) | {"__version__"}
    for name in api.__all__:
        assert getattr(audiogen, name) is getattr(api, name)
    assert callable(audiogen.build) and audiogen.build is api.build  # not the build/ subpackage


def test_every_function_is_typed_and_documented():
    for name in api.__all__:
        obj = getattr(api, name)
        assert inspect.getdoc(obj), name
        if inspect.isfunction(obj):
            sig = inspect.signature(obj)
            assert sig.return_annotation is not inspect.Signature.empty, name
            for p in sig.parameters.values():
                assert p.annotation is not inspect.Parameter.empty, (name, p.name)


def test_the_readme_lists_the_whole_api():
    text = README.read_text("utf-8")
    section = text[text.index("## Python API"):]
    section = section[: section.index("\n## ", 4)]
    listed = set(re.findall(r"`audiogen\.(\w+)", section))
    assert set(api.__all__) <= listed, set(api.__all__) - listed


def test_paths_may_be_strings_everywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(ROUTINE)
    routine = audiogen.load_routine("r.yaml")
    assert routine.title == "API Session" and routine.base_dir == tmp_path
    assert audiogen.plan_file("r.yaml").length_ms > 2000
    [checked] = audiogen.check("r.yaml")
    assert checked.error is None and checked.title == "API Session"

    results = audiogen.build("r.yaml", audiogen.BuildOptions(out_dir="out", cache=str(tmp_path / "cache")))
    [r] = results
    assert r.status == "built", r.error
    assert r.mp3 == Path("out") / "api-session.mp3"
    assert eyed3.load(str(tmp_path / "out" / "api-session.mp3")).tag.title == "API Session"
    assert len(decode(tmp_path / "out" / "api-session.mp3")) / 44100 > 2.0
    assert list((tmp_path / "cache").rglob("*.wav")), "the cache given as a string was used"

    one = audiogen.build_routine("r.yaml", "out2", audiogen.BuildOptions(cache=str(tmp_path / "cache")))
    assert one.status == "built" and (tmp_path / "out2" / "api-session.mp3").is_file()
    assert one.synthesized == 0  # the clips came from that same cache


def test_new_routine_writes_a_scaffold_that_checks(tmp_path):
    path = audiogen.new_routine("Evening Calm", str(tmp_path))
    assert path == tmp_path / "evening-calm.yaml"
    [checked] = audiogen.check([path])
    assert checked.error is None and checked.title == "Evening Calm"
    with pytest.raises(audiogen.AudiogenError, match="already exists"):
        audiogen.new_routine("Evening Calm", tmp_path)


def test_voices_is_the_same_report_as_the_command(tmp_path):
    from click.testing import CliRunner

    from audiogen.cli import cli

    report = audiogen.voices("en", offline=True)
    out = CliRunner().invoke(cli, ["voices", "--json", "--offline", "-l", "en"]).output
    assert json.loads(out) == report
    assert report["auto"]["order"][0] == "gtts" and "offline mode" in report["auto"]["skipped"]["gtts"]
