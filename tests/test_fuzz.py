"""Hostile and broken routine files: the only outcomes are a valid Routine or one located RoutineError.

Hypothesis feeds random YAML-ish text, line- and character-level mutations of the real example routines
and structural mutations (random values in random keys) to `parse_routine`, and mutated files (bytes
included) to `audiogen check`. Every property runs a fixed, derandomised example budget.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
import tracemalloc
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiogen.cli import cli
from audiogen.plan import planner
from audiogen.plan.planner import estimate_speech_ms, plan_routine
from audiogen.routine import loader
from audiogen.routine.errors import AudiogenError, RoutineError
from audiogen.routine.loader import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, load_routine, parse_routine
from audiogen.routine.model import MAX_REPEAT, MAX_TEXT_CHARS, Routine

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = ROOT / "examples" / "facial-massage"
EXAMPLES = [p.read_text("utf-8") for p in sorted(EXAMPLE_DIR.glob("0*.yaml"))]
LIBRARY_CONFIG = (EXAMPLE_DIR / "audiogen.yaml").read_text("utf-8")

#: A file the code-execution payloads below would create if any YAML tag were ever executed.
SENTINEL = Path(tempfile.gettempdir()) / f"audiogen-fuzz-sentinel-{os.getpid()}"
PAYLOADS = [
    f"!!python/object/apply:os.system ['touch {SENTINEL}']",
    f"!!python/object/apply:subprocess.check_call [[touch, {SENTINEL}]]",
    f"!!python/object/new:pathlib.Path.touch [{SENTINEL}]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!custom x",
]
#: Values a careless or hostile author might write after `key:`.
VALUES = PAYLOADS + [
    "-1", "0", "-0", "-0.5", "0.0001", "1", "1000000000", "-1000000000", "1" * 400, "1e400", "1.0e+400",
    ".nan", ".inf", "-.inf", "~", "null", "''", '""', "[]", "{}", "[1, 2]", "{a: 1}", "[left, right]",
    "yes", "no", "true", "false", "on", "1:30", "99:99", "1:99:00", "1m30s", "-5s", "500ms", "0ms", "24h",
    "25h", "0s", "1.5s", "45", "2001-01-01", "2001-01-01 10:00:00", "0x10", "0o7", "1_000", "@x", "`x",
    "%x", "? x", "- - -", "*undefined", "&a x", "&a [*a]", "|", ">", "'unterminated", '"unterminated',
    "[pause 2s]", "x [cue nope] y", "[pause]", "[pause -1s]", "[pause 25h]", "x]", "[[x]]", "[cue]",
    "chimes", "rain", "bell", "none", "../../etc/passwd", "/dev/zero", "/dev/zero.mp3", "rain.mp3",
    "missing/file.wav", "-18 dB", "+20 dB", "-80dB", "dB", "espeak", "gtts", "piper", "auto", "espek",
    "en", "xx", "en-GB", "e", "Now the {side} side.", "{n} left.", "{", "}", "\\x00", '"\\0\\x01"',
    '"\\uffff"', "\u202e\u0000", "ünïcödé", "🙂" * 3, "x" * 300,
]
KEYS = [
    "title", "description", "language", "voice", "engine", "name", "speed", "background", "track", "volume",
    "duck", "fade_in", "fade_out", "cue", "intro", "outro", "steps", "say", "hold", "duration", "repeat",
    "every", "count", "sides", "side_prompt", "remind", "halfway", "remaining", "phrases", "counts", "artist",
    "genre", "cover", "<<", "? a", "titel", "hlod", "1", "", "-", "a b", "Title",
]
TOKENS = (
    [f"{k}: " for k in KEYS[:33]] + ["\n", "\n  ", "\n    ", "\n  - ", "- ", ": ", ", ", "[", "]", "{", "}", "#",
                                     "&a ", "*a", "!!", "|\n", ">-\n", "'", '"', "\t", "? ", "---\n", "...\n",
                                     "%YAML 1.1\n", "\\", "\ufeff", "\x85", "\u2028", "\x7f", "\x01"]
    + VALUES
)

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


def assert_outcome(text: str, path: str = "fuzz.yaml") -> Routine | None:
    """parse_routine gives a Routine (that plans) or one RoutineError with a message, the path and a line."""
    try:
        routine = parse_routine(text, path)
    except RoutineError as e:
        assert e.message.strip(), "empty message"
        assert e.path == path
        assert len(e.format()) < 1500, f"message echoes too much input: {len(e.format())} chars"
        if e.message != "file is empty":
            assert e.line is not None, f"no line for {e.message!r}"
        if e.line is not None:
            breaks = len(re.findall("\r\n|[\n\r\x85\u2028\u2029]", text))  # YAML's line breaks
            assert 1 <= e.line <= breaks + 2, (e.line, e.message)
        if e.column is not None:
            assert e.column >= 1
        return None
    assert isinstance(routine, Routine)
    plan = plan_routine(routine, lambda t: estimate_speech_ms(t, routine.voice.speed), lambda s: 500)
    assert plan.length_ms > 0 and plan.chapters
    return routine


# -- strategies -------------------------------------------------------------------------------------------------


@st.composite
def yamlish(draw) -> str:
    """Random text built from YAML punctuation, routine keys, hostile values and random characters."""
    parts = draw(st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)), max_size=40))
    return "".join(parts)


_LINE_VALUE = re.compile(r"^(\s*(?:-\s+)?)([\w<?]+):(\s*)(.*)$")


@st.composite
def mutated_example(draw) -> str:
    """A real example routine with 1-6 line/character mutations."""
    lines = draw(st.sampled_from(EXAMPLES)).split("\n")
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "value", "insert", "char", "truncate",
                                   "move", "tab"]))
        line = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "move":
            j = draw(st.integers(0, len(lines) - 1))
            lines.insert(j, lines.pop(i))
        elif op == "swap" and len(line) >= 2:
            j = draw(st.integers(0, len(line) - 2))
            lines[i] = line[:j] + line[j + 1] + line[j] + line[j + 2:]
        elif op == "indent":
            delta = draw(st.integers(-4, 4))
            stripped = line.lstrip(" ")
            lines[i] = " " * max(0, len(line) - len(stripped) + delta) + stripped
        elif op == "tab":
            lines[i] = "\t" + line
        elif op == "value" and (m := _LINE_VALUE.match(line)):
            key = draw(st.one_of(st.just(m.group(2)), st.sampled_from(KEYS)))
            value = draw(st.one_of(st.sampled_from(VALUES), st.text(max_size=12)))
            lines[i] = f"{m.group(1)}{key}:{m.group(3) or ' '}{value}"
        elif op == "insert":
            indent = " " * draw(st.sampled_from([0, 2, 4, 6]))
            key, value = draw(st.sampled_from(KEYS)), draw(st.sampled_from(VALUES))
            lines.insert(i, f"{indent}{key}: {value}")
        elif op == "char" and line:
            j = draw(st.integers(0, len(line) - 1))
            c = draw(st.one_of(st.sampled_from(list(":-[]{}#&*!|>'\"%@`,? \t\\")), st.characters()))
            lines[i] = line[:j] + c + line[j + 1:]
        elif op == "truncate":
            lines = lines[: i + 1]
            lines[i] = line[: draw(st.integers(0, len(line)))]
    return "\n".join(lines)


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**12), max_value=10**12), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), st.sampled_from(VALUES),
)
_RANDOM_VALUES = st.recursive(_SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(
    st.sampled_from(KEYS), c, max_size=4), max_leaves=10)


_PARSED_EXAMPLES = [yaml.safe_load(text) for text in EXAMPLES]


@st.composite
def restructured_example(draw) -> str:
    """An example routine parsed, given random values in random keys (existing or new), and dumped again."""
    data = copy.deepcopy(draw(st.sampled_from(_PARSED_EXAMPLES)))  # the same draw as of EXAMPLES, parsed once
    for _ in range(draw(st.integers(1, 4))):
        node = data
        # walk down a random path of existing mappings and lists
        for _depth in range(draw(st.integers(0, 4))):
            if isinstance(node, dict) and node:
                child = node[draw(st.sampled_from(sorted(node)))]
            elif isinstance(node, list) and node:
                child = node[draw(st.integers(0, len(node) - 1))]
            else:
                break
            if not isinstance(child, dict | list):
                break
            node = child
        value = draw(_RANDOM_VALUES)
        if isinstance(node, dict):
            key = draw(st.one_of(st.sampled_from(sorted(node) or KEYS), st.sampled_from(KEYS)))
            if draw(st.booleans()) or key not in node:
                node[key] = value
            else:
                del node[key]
        elif isinstance(node, list):
            if node and draw(st.booleans()):
                node[draw(st.integers(0, len(node) - 1))] = value
            else:
                node.append(value)
    return yaml.safe_dump(data, allow_unicode=draw(st.booleans()), sort_keys=False)


# -- properties -----------------------------------------------------------------------------------------------


@settings(max_examples=1200, **SETTINGS)
@given(yamlish())
def test_random_yamlish_text(text):
    assert_outcome(text)


@pytest.mark.slow
@settings(max_examples=1000, **SETTINGS)
@given(mutated_example())
def test_mutated_examples(text):
    assert_outcome(text)


@pytest.mark.slow
@settings(max_examples=500, **SETTINGS)
@given(restructured_example())
def test_random_values_in_random_keys(text):
    assert_outcome(text)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def assert_cli(args: list[str]) -> str:
    """`audiogen ARGS` exits 0 or 1 and reports errors as messages, never as a traceback."""
    res = CliRunner().invoke(cli, args)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 1), (res.exit_code, res.output[-500:])
    assert "Traceback" not in res.output
    if res.exit_code == 1:
        assert "error: " in res.output
    return res.output


@pytest.mark.slow
@settings(max_examples=400, **SETTINGS)
@given(st.one_of(mutated_example(), restructured_example(), yamlish()),
       st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252", "bytes-flip"]),
       st.integers(0, 10**6))
def test_check_cli_on_mutated_files(fuzz_dir, text, encoding, seed):
    p = fuzz_dir / "routine.yaml"
    if encoding == "bytes-flip":
        data = bytearray(text.encode("utf-8"))
        if data:
            data[seed % len(data)] ^= 0x80 | (seed & 0x7F)  # one corrupted byte: often invalid UTF-8
        data = bytes(data)
    else:
        data = text.encode(encoding, "replace")
    p.write_bytes(data)
    out = assert_cli(["check", str(p)])
    if "error: " in out:
        assert str(p) in out  # the message names the file
    assert ("error: " in assert_cli(["plan", str(p)])) == ("error: " in out)


_CONFIG_KEYS = KEYS + ["album", "author", "defaults", "output", "dir", "bitrate", "channels", "sample_rate",
                      "loudness", "variants", "lengths"]


@settings(max_examples=60, **SETTINGS)
@given(st.lists(st.tuples(st.sampled_from(["value", "delete", "insert"]), st.integers(0, 30),
                          st.sampled_from(_CONFIG_KEYS), st.sampled_from(VALUES)), min_size=1, max_size=4)
       .map(lambda ops: _mutate_config(LIBRARY_CONFIG, ops)))
def test_check_cli_on_mutated_library_config(fuzz_dir, config):
    lib = fuzz_dir / "lib"
    lib.mkdir(exist_ok=True)
    (lib / "audiogen.yaml").write_text(config, "utf-8")
    (lib / "one.yaml").write_text("title: One\nsteps:\n  - title: A\n    say: Hello.\n    hold: 2s\n", "utf-8")
    assert_cli(["check", str(lib)])
    assert_cli(["check", str(lib / "one.yaml")])


def _mutate_config(text: str, ops) -> str:
    lines = text.split("\n")
    for op, i, key, value in ops:
        i %= len(lines)
        if op == "delete":
            del lines[i]
        elif op == "insert":
            lines.insert(i, f"{'  ' * (i % 2)}{key}: {value}")
        elif m := _LINE_VALUE.match(lines[i]):
            lines[i] = f"{m.group(1)}{m.group(2)}: {value}"
        if not lines:
            lines = [""]
    return "\n".join(lines)


def test_no_payload_ever_ran():
    """Runs after the properties above (file order): none of the !!python payloads created the sentinel."""
    assert not SENTINEL.exists()


# -- explicit hostile cases -------------------------------------------------------------------------------------

GOOD = """\
title: Morning Lift
voice: {engine: espeak}
cue: none
steps:
  - title: Warm up
    say: Rub your palms together.
    hold: 2s
"""


def error_of(text: str) -> RoutineError:
    with pytest.raises(RoutineError) as info:
        parse_routine(text, "r.yaml")
    e = info.value
    assert e.message and e.path == "r.yaml" and len(e.format()) < 1500
    return e


@pytest.fixture
def work(monkeypatch) -> dict[str, int]:
    """The loader's work, counted instead of timed: YAML nodes composed from the text, and nodes converted
    to plain data (where aliases expand). Either passing WORK_CAP fails the test at once, so a document the
    limits no longer stop fails instead of hanging (an unstopped billion laughs converts 10^9 nodes)."""
    counts = {"composed": 0, "converted": 0}
    compose_node, to_data = loader._DepthLimitedLoader.compose_node, loader._to_data

    def count(kind: str) -> None:
        counts[kind] += 1
        if counts[kind] > WORK_CAP:
            raise AssertionError(f"more than {WORK_CAP:,} YAML nodes {kind}: the document was not refused")

    def counted_compose_node(self, parent, index):
        count("composed")
        return compose_node(self, parent, index)

    def counted_to_data(*args):
        count("converted")
        return to_data(*args)

    monkeypatch.setattr(loader._DepthLimitedLoader, "compose_node", counted_compose_node)
    monkeypatch.setattr(loader, "_to_data", counted_to_data)  # it recurses through this module global
    return counts


#: Far above what the limits let through (50,000 nodes), far below an unstopped bomb (10^9).
WORK_CAP = 200_000


def test_billion_laughs_is_refused_fast_with_bounded_memory(work):
    bomb = 'lol: "lol"\n'
    prev = "lol"
    for i in range(1, 10):  # 10^9 strings once expanded
        name = f"l{i}"
        bomb += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]\n"
        prev = name
    bomb = bomb.replace('lol: "lol"', 'lol: &lol "lol"')
    bomb += f"title: *{prev}\nsteps: *{prev}\n"
    e = error_of(bomb)
    assert "YAML nodes" in e.message and e.line is not None
    # "fast" as work, not seconds: the ~100 nodes written are composed once, and the expansion stops at the
    # node limit (10^9 without it)
    assert work["composed"] < 200 and work["converted"] <= MAX_NODES + 1, work
    tracemalloc.start()  # again, measuring memory (tracemalloc slows it down)
    try:
        error_of(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("text", [
    "a: &a [*a]\n",
    "title: x\nsteps:\n  - &s {title: a, hold: 1, x: *s}\n",
    "a: " + "[" * 100_000 + "\n",
    "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "a: " + "{b: " * 5000 + "1" + "}" * 5000 + "\n",
    "".join("  " * i + f"k{i}:\n" for i in range(2000)),
])
def test_deep_or_self_referencing_nesting_is_a_located_error(text, work):
    e = error_of(text)
    assert "nested" in e.message and e.line is not None
    # refused at the depth limit: work in proportion to MAX_DEPTH, not to the input's thousands of levels (or
    # the endless expansion of an alias inside its own anchor)
    assert work["composed"] + work["converted"] <= 5 * MAX_DEPTH, work


def test_huge_flat_document_is_refused_early(work):
    text = "{" + "a: 1, " * 150_000 + "}\n"  # 900 KB: under the size limit, 300,000 nodes
    e = error_of(text)
    assert "50,000 YAML nodes" in e.message
    # early: while composing, at the limit, not after composing all 300,000 nodes (nor converting any)
    assert work == {"composed": MAX_NODES + 1, "converted": 0}, work


@pytest.mark.parametrize("payload", PAYLOADS[:5])
def test_python_tags_are_refused_and_never_executed(tmp_path, payload):
    payload = payload.replace(str(SENTINEL), str(tmp_path / "pwned"))
    for text in (f"title: {payload}\nsteps: []\n", GOOD + f"intro: {payload}\n",
                 GOOD.replace("hold: 2s", f"hold: {payload}"), f"{payload}\n", f"- {payload}\n"):
        e = error_of(text)
        assert "not allowed" in e.message and e.line is not None
        p = tmp_path / "evil.yaml"
        p.write_text(text)
        assert "not allowed" in assert_cli(["check", str(p)])
        assert "not allowed" in assert_cli(["build", str(p), "-o", str(tmp_path / "out"), "-q"])
    assert not (tmp_path / "pwned").exists()


def test_binary_and_non_utf8_files_through_the_cli(tmp_path):
    cases = {
        "binary.yaml": bytes(range(256)) * 4,
        "elf.yaml": b"\x7fELF\x02\x01\x01\x00" + os.urandom(512),
        "png.yaml": b"\x89PNG\r\n\x1a\n" + os.urandom(256),
        "latin1.yaml": "title: Caf\xe9\nsteps:\n  - title: x\n    hold: 1\n".encode("latin-1"),
        "utf16.yaml": GOOD.encode("utf-16"),
        "truncated-utf8.yaml": GOOD.encode() + "é".encode()[:1],
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(RoutineError) as info:
            load_routine(p)
        assert info.value.path == str(p)
        assert "binary" in info.value.message or "UTF-8" in info.value.message, info.value.message
        out = assert_cli(["check", str(p)])
        assert str(p) in out and ("binary" in out or "UTF-8" in out)


def test_file_over_the_size_limit_says_the_limit(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text(GOOD + "description: " + "x" * (MAX_FILE_BYTES + 10) + "\n")
    out = assert_cli(["check", str(p)])
    assert f"{MAX_FILE_BYTES:,} bytes" in out and str(p) in out
    # a file well over the limit is refused from its size, without being read
    with pytest.raises(RoutineError, match="limited to"):
        load_routine(p)


@pytest.mark.parametrize("field", ["title", "say", "intro", "description", "side_prompt"])
def test_one_megabyte_text_field_names_the_limit_and_does_not_echo_it(field):
    big = "word " * 200_000  # 1 MB
    text = GOOD
    if field == "title":
        text = text.replace("title: Morning Lift", f"title: {big}")
    elif field == "say":
        text = text.replace("say: Rub your palms together.", f"say: {big}")
    elif field == "side_prompt":
        text = text.replace("hold: 2s", f"hold: 2s\n    sides: [left]\n    side_prompt: {big}")
    else:
        text += f"{field}: {big}\n"
    e = error_of(text)
    assert f"{MAX_TEXT_CHARS}" in e.message and e.line is not None
    assert len(e.format()) < 500


def test_repeat_of_a_billion_is_refused():
    e = error_of(GOOD.replace("hold: 2s", "repeat: 1000000000\n    every: 5s"))
    assert str(MAX_REPEAT) in e.message and e.field == "steps[0].repeat" and e.line == 7


@pytest.mark.parametrize("text", [
    "hold: 111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
    "1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
    "111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
    "11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111",
    "hold: '" + "9" * 400 + "'",
    "hold: '" + "9" * 400 + "s'",
    "hold: '" + "9" * 400 + ":00:00'",
    "hold: 25h",
])
def test_astronomical_durations_are_refused(text):
    e = error_of(GOOD.replace("hold: 2s", text))
    assert "24 h limit" in e.message and e.line == 7


#: Every duration and count field: (YAML replacing the step's `hold: 2s` or added to the routine, where the
#: error must point, whether zero is a valid value).
_FIELDS = {
    "hold": ("hold: {v}", "steps[0].hold", True),
    "duration": ("duration: {v}", "steps[0].duration", True),
    "every": ("repeat: 2\n    every: {v}", "steps[0]", False),
    "repeat": ("repeat: {v}\n    every: 2s", "steps[0].repeat", False),
    "remaining": ("duration: 30s\n    remind: {{remaining: [{v}]}}", "steps[0].remind.remaining[0]", True),
    "pause": ("hold: 1s\n    say: Wait [pause {v}] now.", "steps[0].say", True),  # replaces say and hold
    "fade_in": ("background: {{track: rain, fade_in: {v}}}", "background.fade_in", True),
    "fade_out": ("background: {{track: rain, fade_out: {v}}}", "background.fade_out", True),
    "speed": ("voice: {{engine: espeak, speed: {v}}}", "voice.speed", False),
}


@pytest.mark.parametrize("field", list(_FIELDS))
@pytest.mark.parametrize("value", ["-1", "-5s", "-0.001", "0", "0s", "0ms", "0:00"])
def test_negative_and_zero_values(field, value):
    template, where, zero_ok = _FIELDS[field]
    if field == "pause":
        text = GOOD.replace("say: Rub your palms together.\n    hold: 2s", template.format(v=value))
    elif where.startswith("steps"):
        text = GOOD.replace("hold: 2s", template.format(v=value))
    else:
        text = GOOD.replace("voice: {engine: espeak}\n", "") + template.format(v=value) + "\n"
    if value.startswith("-") or not zero_ok:
        e = error_of(text)
        assert e.line is not None and e.field is not None and e.field.startswith(where), e
        if value.startswith("-") and field not in ("repeat", "speed"):
            assert "negative" in e.message or "invalid duration" in e.message, e
        return
    r = parse_routine(text, "r.yaml")  # zero is a legal length here: it must plan
    plan = plan_routine(r, lambda t: 1000, lambda s: 500)
    assert plan.length_ms > 0
    assert all(e.end_ms >= e.start_ms for e in plan.events)


def test_zero_and_negative_counts():
    assert error_of(GOOD.replace("hold: 2s", "hold: 2s\n    sides: []")).field == "steps[0].sides"
    assert error_of(GOOD + "phrases: {counts: []}\n").field == "phrases.counts"
    assert error_of(GOOD.replace("hold: 2s", "repeat: -3\n    every: 1s")).field == "steps[0].repeat"
    assert error_of(GOOD + "steps: []\n").message  # duplicate key, located
    assert error_of(GOOD.split("steps:")[0] + "steps: []\n").field == "steps"
    e = error_of(GOOD.replace("voice: {engine: espeak}", "voice: {speed: 0}"))
    assert e.field == "voice.speed" and e.line == 2 and "0.5" in e.message
    e = error_of(GOOD.replace("voice: {engine: espeak}", "voice: {speed: -1}"))
    assert e.field == "voice.speed" and e.line == 2


@pytest.mark.parametrize("step", [
    "duration: 10s\n    remind: {remaining: [30s]}",
    "duration: 10s\n    remind: {remaining: [10s]}",
    "hold: 5s\n    remind: {remaining: [30s]}",
    "repeat: 2\n    every: 2s\n    remind: {remaining: [1m]}",
    "say: Only words.\n    remind: {remaining: [5s]}",
])
def test_reminder_later_than_its_step_is_refused(step):
    e = error_of(GOOD.replace("say: Rub your palms together.\n    hold: 2s", step))
    assert "does not fit" in e.message and e.line is not None and e.field == "steps[0]"


def test_reminder_inside_a_hold_is_fine():
    r = parse_routine(GOOD.replace("hold: 2s", "hold: 30s\n    remind: {remaining: [10s]}"), "r.yaml")
    assert r.steps[0].remind.remaining == [10000]


@pytest.mark.parametrize(("snippet", "words"), [
    ("cue: chimes\n", "unknown cue sound 'chimes'"),
    ("cue: nonexistent\n", "unknown cue sound"),
    ("background: rainn\n", "unknown ambience sound 'rainn'"),
    ("background: {track: thunder}\n", "unknown ambience sound"),
    ("intro: Hello [cue bel] there.\n", "unknown cue sound 'bel'"),
    ("background: ../../etc/passwd\n", "not an audio file"),
    ("cue: missing.wav\n", "sound file not found"),
])
def test_unknown_sounds_are_located(snippet, words):
    e = error_of(GOOD.replace("cue: none\n", "") + snippet)
    assert words in e.message and e.line == 7


@pytest.mark.parametrize("builder", ["steps", "sides", "repeat", "markup"])
def test_sessions_that_would_take_hours_to_plan_are_refused_quickly(builder, tmp_path, monkeypatch):
    """Within MAX_STEPS, MAX_REPEAT and 10 sides, a 40 KB file once planned 5,000,000 events: `check` hung.

    Quickly = counted, not timed: refused by counting, before a single event is planned (by parse_routine and
    by `audiogen check`, which plans what it loads)."""
    planned = []
    for name in ("speech", "cue"):
        monkeypatch.setattr(planner._Builder, name, lambda self, *a, _n=name, **k: planned.append(_n) or 0)
    sides = "[" + ", ".join(f"s{i}" for i in range(10)) + "]"
    if builder == "steps":
        steps = "".join(f"  - title: s{i}\n    hold: 1ms\n    sides: {sides}\n" for i in range(500))
    elif builder == "sides":
        steps = "".join(f"  - title: s{i}\n    say: Hi.\n    sides: {sides}\n" for i in range(150))
    elif builder == "repeat":
        steps = "".join(f"  - title: s{i}\n    repeat: 1000\n    every: 1ms\n    count: false\n" for i in range(20))
    else:
        steps = "".join(f"  - title: s{i}\n    say: Tap {'[cue bell] ' * 1500}\n" for i in range(20))
    text = "title: Big\nsteps:\n" + steps
    e = error_of(text)
    assert "limited to" in e.message and e.line == 1
    p = tmp_path / "big.yaml"
    p.write_text(text)
    out = assert_cli(["check", str(p)])
    assert "error: " in out and "limited to" in out
    assert planned == []


def test_session_over_twelve_hours_is_a_clear_error(tmp_path):
    steps = "".join(f"  - title: Step {i}\n    hold: 1h\n" for i in range(13))
    p = tmp_path / "long.yaml"
    p.write_text("title: Long\nvoice: {engine: espeak}\ncue: none\nsteps:\n" + steps)
    out = assert_cli(["check", str(p)])
    assert "error: " in out and str(p) in out
    assert "12 h" in out or "12 hours" in out or "12:00:00" in out


def test_check_accepts_a_session_just_under_twelve_hours(tmp_path):
    """The counterpart of the limit above: long but legal sessions stay legal."""
    steps = "".join(f"  - title: Step {i}\n    hold: 1h\n" for i in range(11))
    p = tmp_path / "long.yaml"
    p.write_text("title: Long\nvoice: {engine: espeak}\ncue: none\nsteps:\n" + steps)
    out = assert_cli(["check", str(p)])
    assert out.startswith("ok ") and "11:00:" in out


def test_example_library_still_checks_clean():
    out = assert_cli(["check", str(EXAMPLE_DIR)])
    assert out.count("ok ") == len(EXAMPLES) and "error" not in out


def test_any_audiogen_error_from_loading_is_a_routine_error(tmp_path):
    """What `build` and `check` catch: loading never raises another AudiogenError subclass or an OSError."""
    (tmp_path / "dir.yaml").mkdir()
    for p in (tmp_path / "dir.yaml", tmp_path / "missing.yaml", Path("/proc/self/mem")):
        with pytest.raises(AudiogenError) as info:
            load_routine(p)
        assert isinstance(info.value, RoutineError) and info.value.path == str(p)


# -- hostile input that only the build can catch ----------------------------------------------------------------


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("title", ["../../etc/passwd", "/etc/passwd", "..", "a/../../../b\\..\\c", ".hidden"])
def test_title_path_traversal_stays_inside_the_output_folder(tmp_path, title):
    work = tmp_path / "work"
    work.mkdir()
    src = work / "evil.yaml"
    src.write_text(yaml.safe_dump({"title": title, "voice": {"engine": "espeak"}, "cue": "none",
                                   "steps": [{"title": title, "say": "Hi.", "hold": "1s"}]}))
    out = work / "a" / "b" / "out"
    before = _files(tmp_path)
    res = CliRunner().invoke(cli, ["build", str(src), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    created = _files(tmp_path) - before
    assert created, "nothing was built"
    assert all(out in p.parents for p in created), sorted(map(str, created))
    [mp3] = [p for p in created if p.suffix == ".mp3"]
    assert mp3.parent == out and not mp3.name.startswith(".")
    assert set(mp3.stem) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


@pytest.fixture
def not_audio_build(tmp_path):
    """A routine whose background is a text file renamed .mp3, built with the CLI."""
    fake = tmp_path / "notes.mp3"
    fake.write_text("these are my notes, not audio\n" * 20)
    src = tmp_path / "r.yaml"
    src.write_text(GOOD + f"background: {{track: {fake.name}}}\n")
    parse_routine(src.read_text(), str(src), base_dir=tmp_path)  # the loader accepts the suffix
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["build", str(src), "-o", str(out)])
    return fake, out, res


def test_background_that_is_not_audio_fails_the_build_naming_the_file(not_audio_build):
    fake, out, res = not_audio_build
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert f"error: {fake.parent / 'r.yaml'}: cannot decode sound file {fake}" in res.output
    assert not (out / "morning-lift.mp3").exists() and not (out / "morning-lift.json").exists()
    assert not list(out.glob(".*.part"))


def test_background_that_is_not_audio_leaves_nothing_for_that_session(not_audio_build):
    fake, out, res = not_audio_build
    assert res.exit_code == 1
    left = sorted(p.name for p in out.glob("morning-lift*")) if out.exists() else []
    assert left == []
