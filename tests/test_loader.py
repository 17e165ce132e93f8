"""Bad input: one located message with a hint, exit 1, nothing written, never a traceback."""

import pytest
from click.testing import CliRunner

from audiogen.cli import cli
from audiogen.routine.errors import RoutineError
from audiogen.routine.loader import load_routine, parse_routine

GOOD = """\
title: Morning Lift
steps:
  - title: Warm up
    say: Rub your palms together.
    hold: 20s
"""


def error_of(text: str) -> RoutineError:
    with pytest.raises(RoutineError) as e:
        parse_routine(text, "r.yaml")
    return e.value


def test_good_routine_loads():
    r = parse_routine(GOOD, "r.yaml")
    assert r.title == "Morning Lift"
    assert r.steps[0].hold == 20000
    assert r.cue == "chime" and r.background is None


def test_unknown_key_is_located_with_suggestion():
    e = error_of(GOOD.replace("    hold: 20s", "    hlod: 20s"))
    assert (e.line, e.column) == (5, 5)
    assert "unknown key 'hlod'" in e.message
    assert e.hint == "did you mean 'hold'?"
    assert e.field == "steps[0].hlod"


def test_unknown_nested_key_suggests_from_its_own_model():
    e = error_of(GOOD + "voice:\n  engin: espeak\n")
    assert (e.line, e.column) == (7, 3)
    assert e.hint == "did you mean 'engine'?"


def test_bad_duration_quotes_value_at_its_position():
    e = error_of(GOOD.replace("hold: 20s", "hold: 20 secs"))
    assert (e.line, e.column) == (5, 11)
    assert "'20 secs'" in e.message
    assert "1m30s" in e.message


def test_wrong_type_is_located():
    e = error_of(GOOD + "  - title: Strokes\n    repeat: six\n    every: 5s\n")
    assert e.line == 7 and e.field == "steps[1].repeat"
    assert "six" in e.message and e.hint == "write a whole number, e.g. 6"


def test_engine_typo_suggests_choice():
    e = error_of(GOOD + "voice: {engine: espek}\n")
    assert "'espek' is not one of" in e.message and e.hint == "did you mean 'espeak'?"


def test_yaml_syntax_error_has_line_and_column():
    e = error_of("title: x\nsteps:\n  - title: [unclosed\n")
    assert e.message.startswith("YAML syntax error")
    assert e.line is not None and e.column is not None


def test_empty_and_comment_only_files():
    for text in ("", "   \n", "# just a comment\n"):
        e = error_of(text)
        assert e.message == "file is empty" and "audiogen new" in e.hint


def test_missing_title_points_at_mapping():
    e = error_of("steps:\n  - title: a\n    hold: 1\n")
    assert "missing required key 'title'" in e.message and e.line == 1


def test_hold_and_duration_are_exclusive():
    e = error_of(GOOD.replace("hold: 20s", "hold: 20s\n    duration: 1m"))
    assert "either hold or duration" in e.message and e.line == 3


def test_python_tags_are_refused_not_executed():
    e = error_of("title: !!python/object/apply:os.system ['echo pwned']\nsteps: []\n")
    assert "not allowed" in e.message and e.line == 1


def test_unknown_sound_suggests_builtin():
    e = error_of(GOOD + "cue: chimes\n")
    assert "unknown cue sound 'chimes'" in e.message and e.hint == "did you mean 'chime'?"
    assert e.line == 6


def test_unknown_inline_markup_is_located():
    e = error_of(GOOD.replace("Rub your palms together.", "Rub. [pase 2s] Now."))
    assert "did you mean [pause 2s]" in e.message and e.line == 4


def test_duplicate_keys_are_errors():
    e = error_of(GOOD + "title: Again\n")
    assert "appears twice" in e.message and e.line == 6


def test_alias_bomb_is_refused_quickly():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 8):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]\n"
    e = error_of(bomb)
    assert "YAML nodes" in e.message


def test_binary_and_non_utf8_files(tmp_path):
    b = tmp_path / "b.yaml"
    b.write_bytes(b"\x00\x01\x02title")
    with pytest.raises(RoutineError, match="binary"):
        load_routine(b)
    latin = tmp_path / "l.yaml"
    latin.write_bytes("title: Caf\xe9\nsteps: []\n".encode("latin-1"))
    with pytest.raises(RoutineError, match="UTF-8") as e:
        load_routine(latin)
    assert e.value.line == 1


def test_negative_and_zero_values():
    assert "negative" in error_of(GOOD.replace("hold: 20s", "hold: -5")).message
    e = error_of(GOOD.replace("hold: 20s", "repeat: 0\n    every: 5s"))
    assert e.field == "steps[0].repeat"


def test_reminder_longer_than_step():
    e = error_of(GOOD.replace("hold: 20s", "duration: 10s\n    remind: {remaining: [30s]}"))
    assert "does not fit" in e.message


def test_check_cli_reports_one_located_error_and_exit_1(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(GOOD.replace("hold:", "hodl:"))
    res = CliRunner().invoke(cli, ["check", str(p)])
    assert res.exit_code == 1
    assert f"{p}:5:5: unknown key 'hodl'" in res.output
    assert "did you mean 'hold'?" in res.output
    assert "Traceback" not in res.output


def test_build_of_invalid_routine_writes_nothing(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(GOOD.replace("20s", "twenty"))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["build", str(p), "-o", str(out)])
    assert res.exit_code == 1
    assert "'twenty'" in res.output and "Traceback" not in res.output
    assert not out.exists() or not any(out.iterdir())


def test_missing_file_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(cli, ["check", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 1 and "no such file" in res.output
