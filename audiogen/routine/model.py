"""The routine format as pydantic models: validation rules and the JSON Schema come from here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from audiogen.routine.durations import MAX_DURATION_MS, parse_duration, parse_gain
from audiogen.routine.engines import ENGINE_CHOICES
from audiogen.routine.markup import Pause, parse_markup

#: Longest text of one spoken field (longer text is almost certainly a mistake or an attack).
MAX_TEXT_CHARS = 20_000
MAX_REPEAT = 1000
MAX_STEPS = 500
#: Most chapters (step runs: steps x sides) and most planned sounds (cues, spoken items, counts, reminders)
#: in one session: within MAX_STEPS and MAX_REPEAT alone a 40 KB file could plan 5,000,000 events, which
#: `check` and `build` would take hours to lay out.
MAX_RUNS = 1000
MAX_EVENTS = 10_000

def _ci(word: str) -> str:
    """A JSON-Schema regex for `word` in any case (JSON Schema patterns have no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


def _one_of_words(*words: str) -> str:
    return "^(" + "|".join(_ci(w) for w in words) + ")$"


# What parse_duration accepts (it strips and lowercases first): a number of seconds, m:ss / h:mm:ss (seconds
# and, after hours, minutes below 60), or unit parts in any order and case (1m30s, 1m 30s, 500ms, 1H).
_NUM = r"\d+(\.\d+)?"
_DURATION_PATTERN = (
    rf"^\s*({_NUM}|(\d+:0*[1-5]?\d|\d+):[0-5]?\d(\.\d+)?|(\s*{_NUM}\s*({_ci('ms')}|[hH]|[mM]|[sS]))+)\s*$"
)
_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": MAX_DURATION_MS / 1000},
        {"type": "string", "pattern": _DURATION_PATTERN},
    ],
    "description": "seconds, or 45s, 1.5s, 500ms, 1m, 1m30s, 1:30 (at most 24 h)",
}
Duration = Annotated[int, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]

# What parse_gain accepts: a number, or text of one with an optional dB, from -60 to +12 dB.
_DB = r"\s*([dD][bB])?\s*$"
_GAIN_ZERO_OR_LESS = r"\+?0+(\.0+)?|-0*[1-5]?\d(\.\d+)?|-0*60(\.0+)?"
_GAIN_PATTERN = rf"^\s*(\+?0*(1[01]|\d)(\.\d+)?|\+?0*12(\.0+)?|{_GAIN_ZERO_OR_LESS}){_DB}"
_GAIN_SCHEMA = {
    "anyOf": [{"type": "number", "minimum": -60, "maximum": 12}, {"type": "string", "pattern": _GAIN_PATTERN}],
    "description": "decibels from -60 to +12, e.g. -18 dB",
}
#: `duck` may not raise the bed: 0 dB or less.
_DUCK_SCHEMA = {
    "anyOf": [{"type": "number", "minimum": -60, "maximum": 0},
              {"type": "string", "pattern": rf"^\s*({_GAIN_ZERO_OR_LESS}){_DB}"}],
    "description": "decibels from -60 to 0, e.g. -8 dB",
}
Gain = Annotated[float, BeforeValidator(parse_gain), WithJsonSchema(_GAIN_SCHEMA)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]


def _check_markup(value: str | None) -> str | None:
    if value is not None:
        parse_markup(value)
    return value


def _sounds(text: str | None) -> int:
    """How many sounds (spoken pieces and cues) a text's markup plays."""
    return sum(not isinstance(seg, Pause) for seg in parse_markup(text)) if text else 0


def _pronounce_key(key: str) -> str:
    key = " ".join(str(key).split())
    if not key:
        raise ValueError("a pronounce: entry needs a word or phrase to replace")
    if len(key) > 200:
        raise ValueError("a pronounce: key is a word or short phrase (at most 200 characters)")
    if "[" in key or "]" in key:
        raise ValueError(f"pronounce: key {key!r} may not contain [ or ] (keys are words as the script writes them)")
    return key


def _pronounce_value(value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("a pronounce: value is text: a respelling (gwah shah) or phonemes in [[...]]")
    value = " ".join(str(value).split())
    if not value:
        raise ValueError("say how to pronounce it: a respelling (gwah shah) or phonemes in [[...]]")
    if value.startswith("[["):
        if not re.fullmatch(r"\[\[[^\[\]]+\]\]", value):
            raise ValueError(f"phonemes are written [[...]] with nothing after the closing ]], not {value!r}")
    elif "[" in value or "]" in value:
        raise ValueError(f"{value!r}: a respelling has no brackets; phonemes are written whole in [[...]]")
    return value


PronounceKey = Annotated[str, BeforeValidator(_pronounce_key)]
PronounceValue = Annotated[str, Field(max_length=1000), BeforeValidator(_pronounce_value)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, validate_default=True)


class Voice(StrictModel):
    """Which engine narrates, with which voice and at what tempo."""

    engine: Literal[ENGINE_CHOICES] = Field(  # type: ignore[valid-type]
        "auto", description="auto = gTTS, then the best offline voice installed"
    )
    name: str | None = Field(
        None, description="engine-specific: gTTS accent tld (co.uk), espeak voice (en-us), piper model path"
    )
    speed: float = Field(1.0, ge=0.5, le=2.0, description="tempo, pitch preserved")


class Background(StrictModel):
    """A looping, ducked ambience under the whole session."""

    track: Text = Field(description="built-in ambience (rain, ocean, drone, pink-noise) or a file path")
    volume: Gain = Field(-18.0, description="level of the bed relative to the voice when nobody speaks")
    duck: Gain = Field(-8.0, description="extra attenuation while speech plays")
    fade_in: Duration = "3s"
    fade_out: Duration = "6s"

    @field_validator("duck")
    @classmethod
    def _duck_not_positive(cls, v: float) -> float:
        if v > 0:
            raise ValueError(f"duck {v:+g} dB would raise the bed under speech: use a negative level, e.g. -8 dB")
        return v


class Remind(StrictModel):
    """Spoken time prompts inside a step's silence."""

    halfway: bool = False
    remaining: list[Duration] = Field(default_factory=list, max_length=20)


DEFAULT_COUNTS = [
    "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten",
    "Eleven", "Twelve", "Thirteen", "Fourteen", "Fifteen", "Sixteen", "Seventeen", "Eighteen",
    "Nineteen", "Twenty",
]


class Phrases(StrictModel):
    """Words audiogen speaks by itself; replace them for routines in other languages."""

    halfway: Text = "Halfway."
    remaining: Text = Field(
        "{n} left.",
        description="{n}: in a built-in phrase the time in words of its language ('Ten seconds', 'zehn "
        "Sekunden'); in your own phrase the number of seconds in digits, read by the engine in its language",
    )
    counts: list[Text] = Field(default_factory=lambda: list(DEFAULT_COUNTS), min_length=1)
    side_prompt: Text = Field("Now the {side} side.", description="{side} is the side's name")
    breathe_in: Text = Field("Breathe in.", description="spoken at the start of each inhale of a breathe step")
    breathe_hold: Text = Field("Hold.", description="spoken at the start of each hold (and hold_after)")
    breathe_out: Text = Field("Breathe out.", description="spoken at the start of each exhale")
    intro_title: Text = Field("Intro", description="the intro's chapter name")
    outro_title: Text = Field("Outro", description="the outro's chapter name")
    voice: Voice | None = Field(None, description="the voice of these words (counts, reminders, the built-in "
                                "side prompt), over the step's and the routine's; keys not given are theirs")

    def is_default(self) -> bool:
        return self == Phrases()


_BOOL_WORDS = {w: True for w in ("true", "yes", "on", "t", "y", "1")} | {
    w: False for w in ("false", "no", "off", "f", "n", "0")}
#: Rounds of a breathing step whose phases are spoken with `words: first`.
WORDS_FIRST_ROUNDS = 2
#: Longest countdown (seconds): counts beyond the `counts` phrases are read as digits.
MAX_COUNTDOWN = 30


class Breathe(StrictModel):
    """Paced breathing: rounds of inhale, hold, exhale and hold_after, each phase on its planned sample."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, validate_default=True,
                              populate_by_name=True)

    in_: Duration = Field("4s", alias="in", description="inhale (0: none)")
    hold: Duration = Field("0s", description="hold after the inhale (0: none)")
    out: Duration = Field("6s", description="exhale (0: none)")
    hold_after: Duration = Field("0s", description="hold after the exhale (0: none)")
    rounds: int = Field(6, ge=1, le=MAX_REPEAT)
    tones: bool = Field(False, description="a soft tone rising through each inhale and falling through each exhale")
    words: bool | int | Literal["first"] = Field(
        True, description=f"speak the phase words: true, false, first (the first {WORDS_FIRST_ROUNDS} rounds) "
        "or a number of rounds")

    @field_validator("words", mode="before")
    @classmethod
    def _words_rounds(cls, v: Any) -> Any:
        """One clear error for the union: true/false (pydantic's words), first, or a whole number >= 0."""
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v >= 0:
            return v
        if isinstance(v, str):
            word = v.strip().lower()
            if word == "first":
                return "first"
            if word in _BOOL_WORDS:
                return _BOOL_WORDS[word]
            if word.isdigit():
                return int(word)
        raise ValueError("words is true, false, first (the first rounds) or a number of rounds, e.g. 2")

    @model_validator(mode="after")
    def _something(self) -> Breathe:
        if self.in_ + self.hold + self.out + self.hold_after == 0:
            raise ValueError("a breathing round needs some length: in, hold, out or hold_after above 0s")
        if not self.tones and self.spoken_rounds() == 0:
            raise ValueError("with words: false and no tones the breathing is silent: set tones: true")
        return self

    def spoken_rounds(self) -> int:
        """How many rounds (from the first) have their phase words spoken."""
        if self.words is True:
            return self.rounds
        if self.words is False:
            return 0
        if self.words == "first":
            return min(self.rounds, WORDS_FIRST_ROUNDS)
        return min(self.rounds, int(self.words))

    def phases(self) -> list[tuple[str, int]]:
        """(phase, ms) of one round, zero-length phases left out."""
        return [(n, ms) for n, ms in (("in", self.in_), ("hold", self.hold), ("out", self.out),
                                      ("hold_after", self.hold_after)) if ms > 0]

    @property
    def round_ms(self) -> int:
        return self.in_ + self.hold + self.out + self.hold_after


class Step(StrictModel):
    """One step of a routine; a chapter of its own (one per side)."""

    title: Text
    say: Text | None = None
    hold: Duration | None = Field(None, description="silence after the speech")
    duration: Duration | None = Field(None, description="exact length of each run of the step")
    repeat: int | None = Field(None, ge=1, le=MAX_REPEAT)
    every: Duration | None = Field(None, description="length of each repetition slot")
    count: bool = Field(True, description="speak the count at each slot (false: a soft tick)")
    sides: list[Text] | None = Field(None, min_length=1, max_length=10)
    side_prompt: Text | None = None
    remind: Remind | None = None
    breathe: Breathe | None = Field(None, description="paced breathing rounds after the speech")
    fit: bool | None = Field(None, description="speed the speech up (at most 1.25x) to fit a duration "
                             "(default: the routine's fit)")
    countdown: int | None = Field(None, ge=1, le=MAX_COUNTDOWN,
                                  description="count down the last seconds of each run (count: false: ticks)")
    voice: Voice | None = Field(None, description="the voice of this step's words, over the routine's; keys not "
                                "given are the routine's")

    _check_say = field_validator("say", "side_prompt")(classmethod(lambda cls, v: _check_markup(v)))

    @model_validator(mode="after")
    def _consistent(self) -> Step:
        if self.hold is not None and self.duration is not None:
            raise ValueError("use either hold or duration, not both: hold adds silence after the speech, "
                             "duration fixes the step's total length")
        if self.every is not None and self.repeat is None:
            raise ValueError("every needs repeat (how many slots of that length)")
        if self.every == 0:
            raise ValueError("every must be longer than 0s")
        if self.repeat is not None and self.every is None and self.duration is None:
            raise ValueError("repeat needs every (the length of each slot) or duration (to share out)")
        if self.side_prompt is not None and not self.sides:
            raise ValueError("side_prompt needs sides, e.g. sides: [left, right]")
        if self.duration is not None and self.remind is not None:
            for r in self.remind.remaining:
                if r >= self.duration:
                    raise ValueError(f"a reminder {r / 1000:g}s before the end does not fit in a "
                                     f"{self.duration / 1000:g}s step")
        elif self.remind is not None:  # no duration: only the hold and the repeat slots are known silence
            silence = (self.hold or 0) + (self.repeat * self.every if self.repeat and self.every else 0)
            for r in self.remind.remaining:
                if r >= silence:
                    raise ValueError(f"a reminder {r / 1000:g}s before the end does not fit in the step's "
                                     f"{silence / 1000:g}s of hold and repeats: it would start before them "
                                     "(give the step a duration, or a longer hold)")
        if self.breathe is not None:
            for key in ("hold", "duration", "repeat", "every", "remind", "countdown"):
                if getattr(self, key) is not None:
                    raise ValueError(f"a breathe step times itself: remove {key} (the rounds and phases "
                                     "set its length)")
        if self.fit and self.duration is None:
            raise ValueError("fit needs duration: it speeds speech up to fit the step's length")
        if self.countdown is not None:
            if self.duration is not None:
                room = self.duration
            else:
                room = (self.hold or 0) + (self.repeat * self.every if self.repeat and self.every else 0)
            if self.countdown * 1000 > room:
                raise ValueError(f"a {self.countdown}s countdown does not fit in the step's "
                                 f"{room / 1000:g}s of " + ("duration" if self.duration is not None
                                                            else "hold and repeats")
                                 + ": give it a longer duration or hold")
            if self.remind is not None:
                for r in self.remind.remaining:
                    if r <= self.countdown * 1000:
                        raise ValueError(f"a reminder {r / 1000:g}s before the end falls in the "
                                         f"{self.countdown}s countdown: remind earlier or count down less")
        if (self.say is None and self.repeat is None and self.hold is None and self.duration is None
                and self.breathe is None):
            raise ValueError("a step needs something to play: say, hold, duration, repeat or breathe")
        return self


class Routine(StrictModel):
    """A guided session: an intro, steps and an outro, narrated over an optional background."""

    title: Text = Field(description="the ID3 title and (slugified) the file name")
    description: str | None = Field(None, max_length=MAX_TEXT_CHARS)
    language: str = Field("en", min_length=2, max_length=12, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$",
                          description="language code handed to the engine (gTTS codes)")
    voice: Voice = Field(default_factory=Voice)
    background: Background | None = Field(None, description="a background bed, or none")
    cue: str | None = Field("chime", description="sound at the start of every step: built-in name, path, or none")
    intro: Text | None = None
    outro: Text | None = None
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    phrases: Phrases = Field(default_factory=Phrases)
    artist: str | None = None
    genre: str | None = None
    cover: str | None = Field(None, description="cover image path (png/jpg)")
    fit: bool = Field(False, description="duration steps speed their speech up (at most 1.25x) to fit")
    pronounce: dict[PronounceKey, PronounceValue] = Field(
        default_factory=dict, max_length=1000,
        description="word or phrase: how to say it (a respelling, or [[phonemes]] for espeak/Piper); whole "
                    "words, any case, longest first")
    loudness: float | None = Field(
        None, ge=-40, le=-5,
        description="LUFS target of this routine's sessions (null: not levelled); default: the library's "
                    "output.loudness (-16)")

    #: Folder the routine was loaded from; relative sound paths resolve against it.
    _base_dir: Any = PrivateAttr(default=None)
    _source: Any = PrivateAttr(default=None)

    _check_text = field_validator("intro", "outro")(classmethod(lambda cls, v: _check_markup(v)))

    @model_validator(mode="after")
    def _bounded(self) -> Routine:
        runs = sum(len(s.sides or [None]) for s in self.steps)
        if runs > MAX_RUNS:
            raise ValueError(f"the steps run {runs:,} times (steps x sides); a session is limited to "
                             f"{MAX_RUNS:,} step runs")
        events = sum(_sounds(t) for t in (self.intro, self.outro))
        for s in self.steps:
            prompt = s.side_prompt or self.phrases.side_prompt if s.sides else None
            reminders = (s.remind.halfway + len(s.remind.remaining)) if s.remind else 0
            per_run = (self.cue is not None) + _sounds(prompt) + _sounds(s.say) + (s.repeat or 0) + reminders
            per_run += s.countdown or 0
            if s.breathe is not None:
                b = s.breathe
                per_run += len(b.phases()) * b.spoken_rounds() + 2 * b.tones * b.rounds
            events += per_run * len(s.sides or [None])
        if events > MAX_EVENTS:
            raise ValueError(f"the session would play {events:,} sounds (cues, spoken items, counts, reminders); "
                             f"it is limited to {MAX_EVENTS:,}")
        return self

    @field_validator("pronounce")
    @classmethod
    def _pronounce_unique(cls, v: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for key in v:
            if key.casefold() in seen:
                raise ValueError(f"pronounce: {seen[key.casefold()]!r} and {key!r} are the same word (matching "
                                 "ignores case): keep one")
            seen[key.casefold()] = key
        return v

    @field_validator("background", mode="before")
    @classmethod
    def _background_shorthand(cls, v: Any) -> Any:
        if isinstance(v, str):
            return None if v.strip().lower() in ("none", "off", "") else {"track": v}
        if v is False:
            return None
        return v

    @field_validator("cue", mode="before")
    @classmethod
    def _cue_none(cls, v: Any) -> Any:
        if v is False or (isinstance(v, str) and v.strip().lower() in ("none", "off", "")):
            return None
        return v

    def set_origin(self, source: str, base_dir: Path | None) -> None:
        """Where the routine was read from: relative sound, cover and voice paths resolve against `base_dir`."""
        self._source, self._base_dir = source, base_dir

    @property
    def base_dir(self) -> Path | None:
        return self._base_dir

    @property
    def source(self) -> str | None:
        return self._source


#: pydantic's lax bool: true/false, 0/1, and these words in any case.
_BOOL_SCHEMA = {"anyOf": [
    {"type": "boolean"},
    {"enum": [0, 1]},
    {"type": "string", "pattern": _one_of_words("true", "false", "yes", "no", "on", "off", "t", "f", "y", "n",
                                                "1", "0")},
]}
_NULL = {"type": "null"}


def _given(key: str) -> dict:
    """JSON Schema for "`key` is present and not null" (the loader treats null as not given)."""
    return {"required": [key], "properties": {key: {"not": _NULL}}}


#: Step rules across fields, as Step._consistent enforces them (those JSON Schema can express).
_STEP_RULES = [
    {"not": {"allOf": [_given("hold"), _given("duration")]},
     "description": "use either hold or duration, not both"},
    {"if": _given("every"), "then": _given("repeat"), "description": "every needs repeat"},
    {"if": _given("repeat"), "then": {"anyOf": [_given("every"), _given("duration")]},
     "description": "repeat needs every or duration"},
    {"if": _given("side_prompt"), "then": _given("sides"), "description": "side_prompt needs sides"},
    {"anyOf": [_given(k) for k in ("say", "hold", "duration", "repeat", "breathe")],
     "description": "a step needs something to play: say, hold, duration, repeat or breathe"},
    {"if": _given("breathe"), "then": {"not": {"anyOf": [
        _given(k) for k in ("hold", "duration", "repeat", "every", "remind", "countdown")]}},
     "description": "a breathe step times itself: no hold, duration, repeat, every, remind or countdown"},
    {"if": {"required": ["fit"], "properties": {"fit": {"anyOf": [
        {"const": True}, {"const": 1}, {"type": "string", "pattern": _one_of_words("true", "yes", "on", "t", "y", "1")},
    ]}}},
     "then": _given("duration"), "description": "fit needs duration"},
    {"if": _given("countdown"), "then": {"anyOf": [_given(k) for k in ("duration", "hold", "every")]},
     "description": "countdown needs a duration, hold or repeat slots to count down in"},
]


def _lax(node: Any) -> Any:
    """The generated schema widened to pydantic's lax input: numbers where text goes (the models coerce
    numbers to str) and pydantic's bool words where a bool goes."""
    if isinstance(node, list):
        return [_lax(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _lax(v) for k, v in node.items()}
    if node.get("type") == "boolean":
        return {**{k: v for k, v in node.items() if k != "type"}, **_BOOL_SCHEMA}
    if node.get("type") == "string" and not {"pattern", "enum", "const"} & node.keys():
        notes = {k: node.pop(k) for k in ("title", "description", "default") if k in node}
        return {**notes, "anyOf": [node, {"type": "number"}]}
    return node


def routine_schema() -> dict:
    """JSON Schema of the routine format, for editor completion: it accepts what the loader accepts.

    Not expressible here, so only the loader refuses them: reminders longer than their step's silence, the
    limits on step runs and sounds per session, markup inside text, sound files that do not exist, text
    durations over 24 h, and durations that round to 0 ms (`every: 0.0001`); countdowns longer than their
    step or over a reminder, breathing rounds of no length, and silent breathing (no words, no tones).
    """
    schema = _lax(Routine.model_json_schema())
    defs, props = schema["$defs"], schema["properties"]
    # shorthand the field pre-validators accept: `background: none | off | false | rain`, `cue: none | false`
    props["background"]["anyOf"] += [{"type": "string", "maxLength": MAX_TEXT_CHARS}, {"const": False}]
    props["background"]["description"] = "none, a built-in ambience name or file path, or a mapping"
    props["cue"]["anyOf"].append({"const": False})
    background = defs["Background"]["properties"]
    background["duck"] = {**background["duck"], **_DUCK_SCHEMA}
    step = defs["Step"]
    step["properties"]["every"]["anyOf"][0] = {
        "allOf": [_DURATION_SCHEMA, {"not": {"anyOf": [{"type": "number", "maximum": 0},
                                                       {"type": "string", "pattern": r"^[^1-9]*$"}]}}],
        "description": "longer than 0s",
    }
    step["properties"]["repeat"]["anyOf"].insert(
        1, {"type": "string", "pattern": rf"^\s*\+?0*([1-9]\d{{0,2}}|{MAX_REPEAT})(\.0*)?\s*$"})
    step["allOf"] = _STEP_RULES
    rounds = defs["Breathe"]["properties"]["rounds"]
    number = {k: rounds.pop(k) for k in ("type", "minimum", "maximum")}
    rounds["anyOf"] = [number, {"type": "string", "pattern": rf"^\s*\+?0*([1-9]\d{{0,2}}|{MAX_REPEAT})(\.0*)?\s*$"}]
    step["properties"]["countdown"]["anyOf"].insert(
        1, {"type": "string", "pattern": rf"^\s*\+?0*([1-9]|[12]\d|{MAX_COUNTDOWN})(\.0*)?\s*$"})
    words = defs["Breathe"]["properties"]["words"]
    words["anyOf"] = [_BOOL_SCHEMA, {"type": "integer", "minimum": 0},
                      {"type": "string", "pattern": r"^\s*(" + _ci("first") + r"|\d+)\s*$"}]
    speed = defs["Voice"]["properties"]["speed"]
    number = {k: speed.pop(k) for k in ("type", "minimum", "maximum")}
    speed["anyOf"] = [number, {"type": "string", "pattern": r"^\s*\+?(0*(0?\.[5-9]\d*|1(\.\d*)?)|0*2(\.0*)?)\s*$"}]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "audiogen routine"
    return schema
