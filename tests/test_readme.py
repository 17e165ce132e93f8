"""The README is tested: its YAML loads, its commands and options exist, and its examples run.

The documentation cannot drift from the program: a renamed option, a key the loader refuses or a Python
example that no longer runs fails here."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from audiogen.cli import cli
from audiogen.routine.library import load_library_config
from audiogen.routine.loader import parse_routine

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)


def _yaml_blocks(kind: str) -> list[str]:
    out = []
    for lang, body in BLOCKS:
        if lang != "yaml":
            continue
        data = yaml.safe_load(body)
        if (kind == "routine") == ("steps" in data):
            out.append(body)
    return out


def test_the_readme_has_its_examples():
    assert _yaml_blocks("routine") and _yaml_blocks("library")


@pytest.mark.parametrize("text", _yaml_blocks("routine"))
def test_every_routine_in_the_readme_loads(text):
    routine = parse_routine(text, "README.md")
    assert routine.steps


@pytest.mark.parametrize("text", _yaml_blocks("library"))
def test_every_library_configuration_in_the_readme_loads(tmp_path, text):
    (tmp_path / "audiogen.yaml").write_text(text)
    config = load_library_config(tmp_path)
    assert config.album


def _command_lines() -> list[str]:
    """Every `audiogen ...` invocation in a shell block (the set-up one-liners included)."""
    lines = []
    for lang, body in BLOCKS:
        if lang != "bash":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                part = part.split("#")[0].strip()
                if part.startswith("audiogen "):
                    lines.append(part)
    return lines


def _resolve(argv: list[str]) -> click.Context:
    """Parse `argv` the way the real command line would, without running it (unknown options raise)."""
    ctx = cli.make_context("audiogen", list(argv), resilient_parsing=False)
    while isinstance(ctx.command, click.Group) and ctx.protected_args:
        name, *rest = ctx.protected_args + ctx.args
        sub = ctx.command.get_command(ctx, name)
        assert sub is not None, f"no command {name!r}"
        ctx = sub.make_context(name, rest, parent=ctx)
    return ctx


def test_every_shell_command_in_the_readme_parses():
    lines = _command_lines()
    assert any(line.startswith("audiogen build") for line in lines)
    for line in lines:
        _resolve(shlex.split(line)[1:])


def test_every_command_and_option_in_the_commands_table_exists():
    table = README[README.index("## Commands"):]
    table = table[table.index("```") + 3: table.index("```", table.index("```") + 3)]
    for entry in re.split(r"\n(?=audiogen )", table.strip()):
        words = entry.split()
        name = words[1]
        names = name.split("|") if words[0] == "audiogen" and "|" in name else [name]
        if name == "cache":
            names = ["cache " + sub for sub in words[2].split("|")]
        for n in names:
            argv = n.split()
            command = cli
            for part in argv:
                command = command.get_command(None, part)
                assert command is not None, f"README lists `audiogen {n}`, which does not exist"
            known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
            for option in re.findall(r"(?<![\w-])(-{1,2}[a-z][\w-]*)", entry):
                assert option in known, f"README lists {option} for `audiogen {n}`: not an option of it"


@pytest.mark.slow
def test_the_readme_first_steps_and_python_example_run(tmp_path, readme_example):
    """The README's own words, run as a user would, offline: build the example routine, check and plan
    it, then the Python API example (on a copy of the example library; run once for the session, see
    tests/examplekit.py, and read here)."""
    env = {**os.environ, "AUDIOGEN_OFFLINE": "1", "PYTHONPATH": str(ROOT),
           "AUDIOGEN_CACHE_DIR": os.environ.get("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))}
    first = shlex.split(_command_lines()[0])  # audiogen build examples/...
    assert first[:2] == ["audiogen", "build"]
    examples = tmp_path / "examples"
    subprocess.run(["cp", "-r", str(ROOT / "examples"), str(examples)], check=True)
    for argv in (first, ["audiogen", "check", first[2]], ["audiogen", "plan", first[2]]):
        run = subprocess.run([sys.executable, "-m", "audiogen", *argv[1:]], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, (argv, run.stderr)
    assert list((tmp_path / "output").glob("*.mp3"))
    [python] = [body for lang, body in BLOCKS if lang == "python"]
    assert readme_example.run.args[-1] == python  # the README's block, verbatim
    run = readme_example.run
    assert run.returncode == 0, run.stderr
    assert "built" in run.stdout
