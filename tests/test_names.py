"""Names a user can read: file names from titles in any script, clashes said out loud, a scaffold that fits
any routine (and `new --force`), no lock file left behind, and YAML merge keys as users write them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from audiogen.build import BuildOptions, build
from audiogen.cli import cli
from audiogen.routine.errors import RoutineError
from audiogen.routine.loader import parse_routine
from audiogen.routine.slug import slugify

ROUTINE = """\
title: {title}
voice: {{engine: espeak}}
cue: none
steps:
  - title: One
    say: Rest your hands.
    hold: 1s
"""


@pytest.mark.parametrize("title, slug", [
    ("Fünf Minuten Atmen", "funf-minuten-atmen"),
    ("Утренний массаж", "utrennii-massazh"),
    ("Πρωινό μασάζ", "proino-masaz"),
    ("Crème brûlée — soir", "creme-brulee-soir"),
    ("朝のマッサージ", "zhao-nomatusasi"),
    ("../../etc/passwd", "etc-passwd"),
])
def test_titles_in_any_script_give_readable_ascii_file_names(title, slug):
    assert slugify(title) == slug


@pytest.mark.parametrize("title", ["", "!!!", "🙂🙂"])
def test_a_title_with_nothing_to_spell_falls_back(title):
    assert slugify(title) == "session"


def test_two_titles_with_one_slug_are_both_built_and_the_clash_is_said(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.yaml").write_text(ROUTINE.format(title="Morning Lift"))
    (lib / "b.yaml").write_text(ROUTINE.format(title="Morning lift!"))
    results = build([lib], BuildOptions(out_dir=tmp_path / "out"))
    assert sorted(r.mp3.name for r in results) == ["morning-lift-2.mp3", "morning-lift.mp3"]
    [second] = [r for r in results if r.mp3.name == "morning-lift-2.mp3"]
    assert any("morning-lift" in w and "a.yaml" in w for w in second.warnings), second.warnings


def test_a_build_leaves_no_lock_file(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.yaml").write_text(ROUTINE.format(title="Alone"))
    out = tmp_path / "out"
    [r] = build([lib], BuildOptions(out_dir=out))
    assert r.status == "built"
    assert not [p.name for p in out.iterdir() if p.name.endswith(".lock")]


def test_new_refuses_to_overwrite_unless_forced(tmp_path):
    runner = CliRunner()
    first = runner.invoke(cli, ["new", "Evening", "-o", str(tmp_path)])
    assert first.exit_code == 0
    path = tmp_path / "evening.yaml"
    path.write_text("# my own work\n" + path.read_text())
    again = runner.invoke(cli, ["new", "Evening", "-o", str(tmp_path)])
    assert again.exit_code == 1 and "already exists" in again.output and "--force" in again.output
    assert path.read_text().startswith("# my own work")
    forced = runner.invoke(cli, ["new", "Evening", "-o", str(tmp_path), "--force"])
    assert forced.exit_code == 0 and not path.read_text().startswith("# my own work")


def test_the_scaffold_fits_any_routine(tmp_path):
    CliRunner().invoke(cli, ["new", "Desk Stretch", "-o", str(tmp_path)])
    text = (tmp_path / "desk-stretch.yaml").read_text().lower()
    for word in ("skin", "face", "facial", "forehead", "jaw", "serum"):
        assert word not in text, word
    parse_routine((tmp_path / "desk-stretch.yaml").read_text(), "desk-stretch.yaml")


def test_merge_keys_share_step_settings():
    anchors = """\
title: Merged
steps:
  - &first {title: One, say: Breathe in., hold: 10s}
  - <<: *first
    title: Two
    say: Breathe out.
  - <<: [*first]
    title: Three
    hold: 5s
"""
    routine = parse_routine(anchors, "m.yaml")
    assert [(s.title, s.say, s.hold) for s in routine.steps] == [
        ("One", "Breathe in.", 10000), ("Two", "Breathe out.", 10000), ("Three", "Breathe in.", 5000)]


def test_a_bad_merge_is_a_located_error():
    with pytest.raises(RoutineError) as e:
        parse_routine("title: x\nsteps:\n  - <<: 5\n    title: a\n    hold: 1s\n", "bad.yaml")
    assert e.value.format().startswith("bad.yaml:3:")


def test_check_prints_every_problem_each_with_its_location(tmp_path):
    """A badly written file: five problems, five located lines (the real cause may be any of them)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("""\
title: Five problems
voice: {engine: espek, speed: 9}
cue: none
steps:
  - title: One
    say: Press gently.
    hold: twenty
  - title: Two
    sya: Sweep out.
    hold: 2s
  - title: Three
    say: Rest.
    repeat: 0
    every: 2s
""")
    res = CliRunner().invoke(cli, ["check", str(bad)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    located = [line for line in res.output.splitlines() if line.startswith(f"error: {bad}:")]
    assert len(located) == 5, res.output
    for where in (":2:", ":7:", ":9:", ":13:"):
        assert any(where in line for line in located), (where, res.output)
    assert "more problem" not in res.output
