"""Load routine files: YAML nodes (with line/column marks) -> validated `Routine`, or a located error."""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from audiogen.routine.errors import RoutineError
from audiogen.routine.model import Routine

#: Largest routine or library file read (a routine is a few KiB; this stops accidents and attacks).
MAX_FILE_BYTES = 1_000_000
#: Most YAML nodes one document may expand to (aliases included): refuses alias bombs early.
MAX_NODES = 50_000
#: Deepest nesting of lists and mappings (a routine needs 4; deeper input would exhaust Python's stack).
MAX_DEPTH = 64
#: Longest piece of the user's input quoted back in an error message.
QUOTE_CHARS = 80

Loc = tuple[Any, ...]
_STANDARD_TAGS = {
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
}


class _Marks:
    """Where each field path of a document was written: key mark and value mark."""

    def __init__(self) -> None:
        self.value: dict[Loc, yaml.Mark] = {}
        self.key: dict[Loc, yaml.Mark] = {}

    def find(self, loc: Loc, prefer_key: bool = False) -> yaml.Mark | None:
        """The mark of `loc`, or of its nearest written ancestor."""
        loc = tuple(loc)
        while True:
            table = (self.key, self.value) if prefer_key else (self.value, self.key)
            for t in table:
                if loc in t:
                    return t[loc]
            if not loc:
                return None
            loc = loc[:-1]


def read_text(path: Path) -> str:
    """Read a YAML file as UTF-8 text, with clear errors for missing, huge, binary or mis-encoded files."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise RoutineError("is a folder, not a routine file", path=str(path))
        if size > MAX_FILE_BYTES:
            raise RoutineError(
                f"file is {size:,} bytes; routine files are limited to {MAX_FILE_BYTES:,} bytes",
                path=str(path),
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise RoutineError("no such file", path=str(path)) from None
    except OSError as e:
        raise RoutineError(f"cannot read file: {e.strerror or e}", path=str(path)) from None
    if b"\x00" in data:
        raise RoutineError("this is a binary file, not a YAML routine", path=str(path))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise RoutineError(
            "file is not valid UTF-8 text", path=str(path), line=line,
            hint="save the file as UTF-8 in your editor",
        ) from None
    return text


class _DepthLimitedLoader(yaml.SafeLoader):
    """SafeLoader whose (recursive) composer refuses nesting deeper than MAX_DEPTH and documents of more than
    MAX_NODES nodes, with their location."""

    _depth = 0
    _nodes = 0
    _path = "<input>"

    def compose_node(self, parent, index):
        self._depth += 1
        self._nodes += 1
        try:
            if self._nodes > MAX_NODES:  # refuse a huge document early, not after composing all of it
                raise error_at(self._path, self.peek_event().start_mark,
                                f"document has more than {MAX_NODES:,} YAML nodes",
                                hint="a routine has a few hundred values at most")
            if self._depth > MAX_DEPTH:
                raise error_at(self._path, self.peek_event().start_mark,
                                f"lists and mappings are nested more than {MAX_DEPTH} levels deep",
                                hint="a routine nests at most a few levels: check the indentation and brackets")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """`repr(value)`, shortened for messages: a user's 1 MB value is never echoed back whole."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value):,} characters)" if isinstance(value, str) else ""
    return text[: limit - 1] + "…" + size


def _bounded(text: str | None, limit: int = 4 * QUOTE_CHARS + 200) -> str | None:
    """A message or hint cut in the middle when some quoted input made it huge."""
    if text is None or len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} […] {text[-half:]}"


def compose(text: str, path: str) -> tuple[Any, _Marks]:
    """Parse YAML safely into plain data plus the marks of every key and value."""
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        raise RoutineError("file is empty", path=path, hint="start from a scaffold: audiogen new NAME")
    loader = None
    try:
        loader = _DepthLimitedLoader(text)
        loader._path = path
        node = loader.get_single_node()
    except yaml.reader.ReaderError as e:  # a control character: located by its position in the text
        before = text[: max(0, e.position)]
        raise RoutineError(
            f"character {e.character:#06x} is not allowed in YAML text", path=path,
            line=before.count("\n") + 1, column=len(before) - (before.rfind("\n") + 1) + 1,
            hint=f"remove it, or write it as an escape (\\x{e.character:02x}) inside double quotes",
        ) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = (e.problem or str(e)).strip()
        hint = "check indentation and quote text that contains ': ' or starts with [ { * & ! | > ' \" % @ `"
        raise RoutineError(
            f"YAML syntax error: {problem}",
            path=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            hint=hint,
        ) from None
    except yaml.YAMLError as e:
        raise RoutineError(_bounded(f"YAML error: {e}"), path=path) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise RoutineError("file is empty", path=path, hint="start from a scaffold: audiogen new NAME")
    marks = _Marks()
    counter = [0]
    constructor = yaml.constructor.SafeConstructor()
    data = _to_data(node, (), marks, counter, constructor, path)
    return data, marks


def error_at(path: str, mark: yaml.Mark | None, message: str, hint: str | None = None,
              field: str | None = None) -> RoutineError:
    return RoutineError(
        _bounded(message), path=path, line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None, hint=_bounded(hint), field=_bounded(field),
    )


def _to_data(node: yaml.Node, loc: Loc, marks: _Marks, counter: list[int], constructor, path: str) -> Any:
    counter[0] += 1
    if len(loc) > MAX_DEPTH:  # an alias inside its own anchor (`&a [*a]`) nests without end
        raise error_at(path, node.start_mark, f"lists and mappings are nested more than {MAX_DEPTH} levels deep",
                        hint="an alias (*name) may not refer to the mapping or list it is in")
    if counter[0] > MAX_NODES:
        raise error_at(path, node.start_mark, f"document expands to more than {MAX_NODES:,} YAML nodes",
                        hint="YAML aliases (*name) that repeat large parts are refused")
    marks.value.setdefault(loc, node.start_mark)
    if node.tag not in _STANDARD_TAGS:
        raise error_at(path, node.start_mark, f"YAML tag {node.tag!r} is not allowed",
                        hint="routines use plain text, numbers, lists and mappings only")
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:null":
                raise error_at(path, key_node.start_mark, "keys must be plain words",
                                hint="write `key: value`")
            key = str(constructor.construct_scalar(key_node))
            if key == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
                merges += _merge_sources(value_node, path)
                continue
            if key in out:
                raise error_at(path, key_node.start_mark, f"key {quote(key)} appears twice",
                                field=_field(loc + (key,)), hint="remove one of them")
            marks.key[loc + (key,)] = key_node.start_mark
            out[key] = _to_data(value_node, loc + (key,), marks, counter, constructor, path)
        # YAML merge keys (`<<: *defaults`, `<<: [*a, *b]`): keys written here win, then the first source
        for source in merges:
            merged = _to_data(source, loc, marks, counter, constructor, path)
            for key, value in merged.items():
                out.setdefault(key, value)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(v, loc + (i,), marks, counter, constructor, path) for i, v in enumerate(node.value)]
    try:
        value = constructor.construct_object(node, deep=False)
    except (yaml.YAMLError, ValueError, OverflowError) as e:
        raise error_at(path, node.start_mark, f"cannot read value {quote(node.value)}: {e}") from None
    if hasattr(value, "isoformat"):  # YAML timestamps: keep what the user wrote
        value = node.value
    return value


def _merge_sources(node: yaml.Node, path: str) -> list[yaml.Node]:
    """The mappings a merge key names: one mapping (usually an alias), or a list of them."""
    sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for source in sources:
        if not isinstance(source, yaml.MappingNode):
            raise error_at(path, source.start_mark, "a merge key (<<) takes a mapping or a list of mappings",
                           hint="write `<<: *name` where `&name` marks a mapping")
    return list(sources)


def _field(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that validates the mapping at `loc` (to suggest field names)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0] if args else tp
        elif origin in (list, typing.Annotated):
            tp = typing.get_args(tp)[0]
        else:
            return tp


_HINTS = {
    "int_parsing": "write a whole number, e.g. 6",
    "int_type": "write a whole number, e.g. 6",
    "int_from_float": "write a whole number, e.g. 6",
    "float_parsing": "write a number, e.g. 1.0",
    "float_type": "write a number, e.g. 1.0",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "string_type": "write text here (quote it if it looks like something else)",
    "list_type": "write a list, e.g. [left, right] or one '- item' per line",
    "model_type": "write a mapping of keys, indented below this one",
    "dict_type": "write a mapping of keys, indented below this one",
    "string_too_short": "write some text here",
}


def validation_error(model: type[BaseModel], err: ValidationError, marks: _Marks, path: str,
                     base_loc: Loc = ()) -> RoutineError:
    """Every validation problem, located: the first as the error raised, the rest in its `others`."""
    problems = [_problem(model, first, marks, path, base_loc) for first in err.errors(include_url=False)]
    problems[0].others = problems[1:]
    return problems[0]


def _problem(model: type[BaseModel], first: dict, marks: _Marks, path: str, base_loc: Loc) -> RoutineError:
    """One of pydantic's problems as a located RoutineError with a hint."""
    loc = tuple(first["loc"])
    kind = first["type"]
    msg = first["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    hint = _HINTS.get(kind)
    if kind == "extra_forbidden":
        key = loc[-1]
        owner = _model_at(model, loc[:-1])
        allowed = [f.alias or name for name, f in owner.model_fields.items()] if owner else []
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        msg = f"unknown key {quote(key)}"
        hint = f"did you mean {close[0]!r}?" if close else (
            f"allowed here: {', '.join(allowed)}" if allowed else None)
        mark = marks.find(base_loc + loc, prefer_key=True)
    elif kind == "missing":
        msg = f"missing required key {loc[-1]!r}"
        hint = f"add `{loc[-1]}: ...`"
        mark = marks.find(base_loc + loc[:-1])
    elif kind == "literal_error":
        given = first.get("input")
        expected = first.get("ctx", {}).get("expected", "")
        choices = [c.strip(" '") for c in expected.replace(" or ", ",").split(",") if c.strip()]
        close = difflib.get_close_matches(str(given), choices, n=1)
        msg = f"{quote(given)} is not one of {', '.join(choices)}"
        hint = f"did you mean {close[0]!r}?" if close else None
        mark = marks.find(base_loc + loc)
    else:
        given = first.get("input")
        if kind not in ("value_error", "assertion_error") and isinstance(given, str | int | float | bool):
            msg = f"{msg}, got {quote(given)}"
        mark = marks.find(base_loc + loc)
    return error_at(path, mark, msg, hint=hint, field=_field(base_loc + loc) or None)


def parse_routine(text: str, path: str = "<input>", *, defaults: dict | None = None,
                  base_dir: Path | None = None) -> Routine:
    """Validate routine YAML text; `defaults` (a library's) fill keys the routine does not set."""
    data, marks = compose(text, path)
    if not isinstance(data, dict):
        raise error_at(path, marks.find(()), "a routine is a mapping of keys (title:, steps:, ...)",
                        hint="start from a scaffold: audiogen new NAME")
    if defaults:
        data = merge_defaults(defaults, data)
    try:
        routine = Routine.model_validate(data)
    except ValidationError as e:
        raise validation_error(Routine, e, marks, path) from None
    routine.set_origin(path, base_dir)
    _check_sounds(routine, marks, path)
    voices = [routine.voice, routine.phrases.voice] + [step.voice for step in routine.steps]
    for voice in voices:
        name = voice.name if voice is not None else None
        if name and name.lower().endswith(".onnx") and base_dir is not None:  # a Piper model beside the routine
            from audiogen.routine.soundref import resolve_path

            voice.name = str(resolve_path(name, base_dir))
    return routine


def merge_defaults(defaults: dict, data: dict) -> dict:
    """Deep-merge a library's defaults under a routine's own values (the routine wins)."""
    out = dict(defaults)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_defaults(out[key], value)
        else:
            out[key] = value
    return out


def load_routine(path: str | Path, *, defaults: dict | None = None) -> Routine:
    """Load and validate one routine file."""
    p = Path(path)
    text = read_text(p)
    return parse_routine(text, str(p), defaults=defaults, base_dir=p.resolve().parent)


def _check_sounds(routine: Routine, marks: _Marks, path: str) -> None:
    """Every sound a routine names must be built in or an existing audio file."""
    from audiogen.routine.markup import CueMark, parse_markup
    from audiogen.routine.soundref import check_sound_ref

    base = routine.base_dir
    refs: list[tuple[Loc, str, str]] = []
    if routine.cue:
        refs.append((("cue",), routine.cue, "cue"))
    if routine.background:
        refs.append((("background", "track"), routine.background.track, "ambience"))
    texts: list[tuple[Loc, str | None]] = [(("intro",), routine.intro), (("outro",), routine.outro)]
    for i, step in enumerate(routine.steps):
        texts += [(("steps", i, "say"), step.say), (("steps", i, "side_prompt"), step.side_prompt)]
    for loc, text in texts:
        for seg in parse_markup(text or ""):
            if isinstance(seg, CueMark):
                refs.append((loc, seg.sound, "cue"))
    for loc, ref, kind in refs:
        problem = check_sound_ref(ref, kind, base)
        if problem:
            message, hint = problem
            raise error_at(path, marks.find(loc), message, hint=hint, field=_field(loc))
