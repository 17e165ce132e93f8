"""A session's chapter count is bounded by the MP3 table of contents (ID3 CTOC counts entries in one byte):
more than 255 chapters once crashed in tagging, after the whole render, with mutagen's raw ValueError."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from audiogen.cli import cli
from audiogen.plan.planner import MAX_CHAPTERS, plan_routine
from audiogen.routine.errors import RoutineError
from audiogen.routine.loader import load_routine


def routine_file(tmp_path, steps: int, intro: bool) -> str:
    head = "title: Many\nvoice: {engine: espeak}\ncue: none\n" + ("intro: Hi.\n" if intro else "")
    body = "".join(f"  - title: Step {i}\n    hold: 2s\n    sides: [left, right]\n" for i in range(steps))
    p = tmp_path / "many.yaml"
    p.write_text(head + "steps:\n" + body)
    return str(p)


def plan(path: str):
    return plan_routine(load_routine(path), lambda text: 500, lambda ref: 300, estimated=True)


def test_256_chapters_are_refused_with_a_located_hint(tmp_path):
    path = routine_file(tmp_path, 128, intro=False)  # 128 steps x 2 sides
    with pytest.raises(RoutineError) as info:
        plan(path)
    e = info.value
    assert e.path == path and "256 chapters" in e.message and f"limited to {MAX_CHAPTERS}" in e.message
    assert "split the routine" in e.hint


def test_255_chapters_are_planned(tmp_path):
    path = routine_file(tmp_path, 127, intro=True)  # intro + 254 sides
    p = plan(path)
    assert len(p.chapters) == 255 == MAX_CHAPTERS


@pytest.mark.parametrize("command", ["check", "build"])
def test_cli_refuses_256_chapters_without_a_traceback(tmp_path, monkeypatch, command):
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AUDIOGEN_OFFLINE", "1")
    path = routine_file(tmp_path, 128, intro=False)
    args = [command, path] + (["-o", str(tmp_path / "out")] if command == "build" else [])
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output and "range(0, 256)" not in res.output
    assert "256 chapters" in res.output and "split the routine" in res.output and path in res.output
    assert not list((tmp_path / "out").glob("**/*.mp3"))
