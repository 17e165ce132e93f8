"""The JSON Schema (`audiogen schema`) accepts what the loader accepts, and refuses what it refuses.

Checked with `jsonschema`, a reader independent of pydantic: every shipped example, every routine snippet in
the README, the scaffold, documented shorthand forms, and a set of invalid documents that both must refuse.
"""

import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from audiogen.routine.errors import RoutineError
from audiogen.routine.loader import parse_routine
from audiogen.routine.model import routine_schema

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.yaml") if p.name != "audiogen.yaml")


@pytest.fixture(scope="module")
def validator():
    schema = routine_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(validator, data) -> list[str]:
    return [e.message for e in validator.iter_errors(data)]


def readme_routines() -> list[str]:
    text = (ROOT / "README.md").read_text("utf-8")
    snippets = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    return [s for s in snippets if isinstance(yaml.safe_load(s), dict) and "steps" in yaml.safe_load(s)]


def scaffold_text() -> str:
    # filled as audiogen/routine/scaffold.py fills it
    text = resources.files("audiogen.routine").joinpath("templates", "routine.yaml").read_text("utf-8")
    return text.replace("{filename}", "my-routine.yaml").replace("{title}", '"My routine"').replace(
        "{{side}}", "{side}")


def test_there_is_something_to_check():
    assert len(EXAMPLES) >= 6
    assert readme_routines()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_shipped_example_validates_alone(validator, path):
    text = path.read_text("utf-8")
    parse_routine(text, str(path), base_dir=path.parent)  # the loader accepts the file without its library
    assert schema_errors(validator, yaml.safe_load(text)) == []


def test_readme_routines_validate(validator):
    for snippet in readme_routines():
        parse_routine(snippet, "README.md")
        assert schema_errors(validator, yaml.safe_load(snippet)) == []


def test_scaffold_validates(validator):
    text = scaffold_text()
    parse_routine(text, "my-routine.yaml")
    assert schema_errors(validator, yaml.safe_load(text)) == []


STEP = "  - title: a\n    hold: 1\n"

#: Forms the loader accepts (documented shorthand, pre-validators, lax coercions) that the schema must too.
ACCEPTED = [
    "background: none", "background: off", "background: None", "background: ''", "background: false",
    "background: null", "background: rain", "background: {track: ocean, volume: -18, duck: 0 dB}",
    "background: {track: drone, volume: '-18', duck: -8dB, fade_in: 0, fade_out: '1:30'}",
    "background: {track: rain, volume: +12 dB, duck: -60 DB}",
    "cue: none", "cue: off", "cue: false", "cue: Off", "cue: bell", "cue: null",
    "title: 2024", "title: 1.5", "description: 42",
    "voice: {speed: '1.5'}", "voice: {speed: 2}", "voice: {engine: espeak, name: en-gb}",
    "phrases: {halfway: Mitad., remaining: '{n} restantes.', counts: [Uno, Dos], side_prompt: 'Lado {side}.'}",
]
STEPS_ACCEPTED = [
    "hold: 45", "hold: 1.5", "hold: '45'", "hold: 45s", "hold: 1.5s", "hold: 500ms", "hold: 1m", "hold: 1m30s",
    "hold: 1m 30s", "hold: 1:30", "hold: '1:30'", "hold: '0:30'", "hold: '1:02:03'", "hold: '1:59.5'",
    "hold: 45S", "hold: ' 45s '", "hold: 1H", "hold: 0", "hold: 86400",
    "duration: 1m\n    repeat: 4", "repeat: '3'\n    every: 5s", "repeat: 3.0\n    every: 5s",
    "say: Hi.\n    count: 'yes'", "say: Hi.\n    count: 0", "say: Hi.\n    count: 'False'",
    "duration: 1m\n    remind: {halfway: 'on', remaining: [10s, 20, '0:30']}",
    "say: Hi.\n    sides: [left, right]\n    side_prompt: Now {side}.", "say: Hi.\n    sides: [1, 2]",
    "say: Hi.\n    hold: null", "say: Hi. [pause 2s] There. [cue bell]",
]


def routine(extra: str = "", step: str = "hold: 1") -> str:
    title = "" if extra.startswith("title:") else "title: t\n"
    return f"{title}{extra}\nsteps:\n  - title: a\n    {step}\n"


@pytest.mark.parametrize("extra", ACCEPTED)
def test_accepted_forms_validate(validator, extra):
    text = routine(extra)
    parse_routine(text, "r.yaml")
    assert schema_errors(validator, yaml.safe_load(text)) == []


@pytest.mark.parametrize("step", STEPS_ACCEPTED)
def test_accepted_step_forms_validate(validator, step):
    text = routine(step=step)
    parse_routine(text, "r.yaml")
    assert schema_errors(validator, yaml.safe_load(text)) == []


INVALID = {
    "unknown key": routine("colour: blue"),
    "unknown step key": routine(step="hlod: 20s"),
    "title is a list": "title: [a, b]\nsteps:\n" + STEP,
    "steps is text": "title: t\nsteps: many\n",
    "no steps": "title: t\nsteps: []\n",
    "missing title": "steps:\n" + STEP,
    "negative duration": routine(step="hold: -5"),
    "negative duration text": routine(step="hold: '-5s'"),
    "duration word": routine(step="hold: long"),
    "duration unit": routine(step="hold: 5 minutes"),
    "clock seconds 75": routine(step="hold: '1:75'"),
    "clock minutes 60 with hours": routine(step="hold: '1:60:00'"),
    "duration over 24 h": routine(step="hold: 90000"),
    "bad gain text": routine("background: {track: rain, volume: loud}"),
    "gain out of range": routine("background: {track: rain, volume: +20 dB}"),
    "gain text out of range": routine("background: {track: rain, volume: '-61 dB'}"),
    "positive duck": routine("background: {track: rain, duck: 3 dB}"),
    "background true": routine("background: true"),
    "background number": routine("background: 5"),
    "cue true": routine("cue: true"),
    "repeat 0": routine(step="repeat: 0\n    every: 5s"),
    "repeat 1.5": routine(step="repeat: 1.5\n    every: 5s"),
    "repeat over the limit": routine(step="repeat: 1001\n    every: 1s"),
    "hold and duration together": routine(step="hold: 5s\n    duration: 10s"),
    "every without repeat": routine(step="hold: 5s\n    every: 1s"),
    "repeat without every or duration": routine(step="repeat: 3"),
    "every zero": routine(step="repeat: 3\n    every: 0s"),
    "side_prompt without sides": routine(step="say: Hi.\n    side_prompt: Now {side}."),
    "step with nothing to play": "title: t\nsteps:\n  - title: a\n",
    "count maybe": routine(step="say: Hi.\n    count: maybe"),
    "speed too fast": routine("voice: {speed: 3}"),
    "speed text too slow": routine("voice: {speed: '0.25'}"),
    "unknown engine": routine("voice: {engine: festival}"),
    "bad language": routine("language: e"),
    "empty sides": routine(step="say: Hi.\n    sides: []"),
    "too many reminders": routine(step="duration: 1h\n    remind: {remaining: [" + ", ".join(
        f"{i}s" for i in range(1, 22)) + "]}"),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_documents_fail_both(validator, name):
    text = INVALID[name]
    with pytest.raises(RoutineError):
        parse_routine(text, "r.yaml")
    assert schema_errors(validator, yaml.safe_load(text)), f"the schema accepts: {name}"


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from audiogen.routine.durations import parse_duration, parse_gain  # noqa: E402


def _sub_validator(sub: dict):
    return jsonschema.Draft202012Validator(sub)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet="0123456789.:msShHM ", max_size=10))
def test_duration_text_schema_agrees_with_parse_duration(text):
    schema = routine_schema()["$defs"]["Background"]["properties"]["fade_in"]
    try:
        parse_duration(text)
        loader_ok = True
    except ValueError as e:
        if "24 h" in str(e):  # the 24 h limit on text is the loader's alone
            return
        loader_ok = False
    assert _sub_validator(schema).is_valid(text) == loader_ok, text


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.one_of(st.text(alphabet="0123456789.+-dDbB ", max_size=8),
                 st.floats(-100, 100, allow_nan=False), st.integers(-100, 100)))
def test_gain_schema_agrees_with_parse_gain(value):
    props = routine_schema()["$defs"]["Background"]["properties"]
    try:
        db = parse_gain(value)
        volume_ok, duck_ok = True, db <= 0
    except ValueError:
        volume_ok = duck_ok = False
    assert _sub_validator(props["volume"]).is_valid(value) == volume_ok, value
    assert _sub_validator(props["duck"]).is_valid(value) == duck_ok, value
