"""Pure timeline planning: routine + clip lengths in, ordered events and chapters out.

No audio library is imported here; `plan` and `check` use it without any engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from audiogen.routine.durations import format_ms
from audiogen.routine.markup import CueMark, Pause, Speech, parse_markup
from audiogen.routine.model import Phrases, Routine, Step
from audiogen.routine.phrasebook import phrases_for, remaining_text
from audiogen.routine.voicing import phrase_voice, step_voice, voiced

#: Silence after each spoken item before the next one starts.
GAP_MS = 600
#: Silence after a cue sound before speech starts.
CUE_GAP_MS = 300
#: Bed alone before the first words.
LEAD_IN_MS = 1500
#: Bed (or silence) after the last words, so a session never stops mid-breath.
TAIL_MS = 3000
DEFAULT_REMAINING = Phrases.model_fields["remaining"].default
#: Longest session planned (a routine over this is almost certainly a mistake, or an attack).
MAX_SESSION_MS = 12 * 3_600_000
#: An ID3 table of contents (CTOC) counts its entries in one byte: a session has at most 255 chapters.
MAX_CHAPTERS = 255
#: Shortest gap kept between a reminder and other speech.
REMINDER_GAP_MS = 250
#: Fastest a `fit: true` step's speech is played to fit its duration (pitch preserved).
MAX_FIT_TEMPO = 1.25
#: A countdown number or a breathing word starts this much before its second or phase, and the renderer
#: puts the word's onset this far into it (clips keep up to 30 ms of quiet edge, voice/clips.py), so it is
#: heard on the instant.
SPEECH_LEAD_MS = 30


@dataclass(frozen=True)
class Event:
    """Something that plays (speech, cue) or a stretch of silence, in ms from the session start."""

    kind: str  # "speech" | "cue" | "silence"
    start_ms: int
    end_ms: int
    role: str = ""  # intro, outro, say, prompt, count, tick, reminder, pause, hold, fill
    text: str | None = None
    sound: str | None = None
    chapter: int = 0
    tempo: float = 1.0  # speech played this much faster (a `fit: true` step), pitch preserved
    voice: str | None = None  # who speaks, when not the routine's voice: its label (routine/voicing.py)

    @property
    def length_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def clip(self) -> str | None:
        """The name of the clip that plays (its text, tagged with its voice when that is not the routine's)."""
        return voiced(self.text, self.voice) if self.text is not None else None


@dataclass(frozen=True)
class Chapter:
    title: str
    start_ms: int
    end_ms: int
    kind: str = "step"  # intro | step | outro
    step: int | None = None
    side: str | None = None
    planned_ms: int | None = None  # the routine's `duration`, when fixed

    @property
    def length_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class PlanWarning:
    chapter: str
    planned_ms: int
    real_ms: int
    message: str


@dataclass(frozen=True)
class PlanFit:
    """A `fit: true` run whose speech is sped up to end within its duration."""

    chapter: str
    planned_ms: int
    natural_ms: int  # what the run would need at normal tempo
    tempo: float

    @property
    def message(self) -> str:
        return (f"speech sped up {self.tempo:.2f}x to fit the step's {format_ms(self.planned_ms)} "
                f"(it needs {format_ms(self.natural_ms)} at normal speed)")


@dataclass
class Plan:
    title: str
    length_ms: int
    chapters: list[Chapter]
    events: list[Event]
    warnings: list[PlanWarning] = field(default_factory=list)
    estimated: bool = False
    fits: list[PlanFit] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "length_ms": self.length_ms,
            "estimated": self.estimated,
            "chapters": [
                {k: v for k, v in asdict(c).items() if v is not None} for c in self.chapters
            ],
            "events": [
                {k: (json.loads(v) if k == "voice" else v) for k, v in asdict(e).items()
                 if v not in (None, "") and (k != "tempo" or v != 1.0)}
                for e in self.events
            ],
            "warnings": [asdict(w) for w in self.warnings],
            "fitted": [{**asdict(f), "message": f.message} for f in self.fits],
        }


def estimate_speech_ms(text: str, speed: float = 1.0) -> int:
    """A rough speech length without an engine: about 14 characters a second plus a little padding."""
    chars = len(" ".join(text.split()))
    return int((400 + chars * 1000 / 14.5) / speed)


def spoken_texts(routine: Routine) -> list[str]:
    """Every distinct clip the session speaks, in order of first use (what needs synthesising): its text,
    tagged with its voice where that is not the routine's (`routine.voicing.voiced`)."""
    seen: dict[str, None] = {}
    plan_routine(routine, lambda t: seen.setdefault(t, None) or 1000, lambda s: 1000)
    return list(seen)


def sound_refs(routine: Routine) -> list[str]:
    """Every distinct cue sound the session plays."""
    seen: dict[str, None] = {}
    plan_routine(routine, lambda t: 1000, lambda s: seen.setdefault(s, None) or 1000)
    return list(seen)


class _Builder:
    def __init__(self, speech_ms: Callable[[str], int], sound_ms: Callable[[str], int]) -> None:
        self.speech_ms = speech_ms
        self.sound_ms = sound_ms
        self.events: list[Event] = []
        self.chapter = 0
        self.tempo = 1.0  # speech of the run being laid out plays this much faster (fit: true)
        self.fitted: tuple[int, float] | None = None  # the run just laid out: (natural length, tempo)
        self.run_warnings: list[tuple[int, int, str]] = []  # the run just laid out: (planned, real, message)

    def speech(self, at: int, text: str, role: str, voice: str | None = None) -> int:
        ms = max(1, int(self.speech_ms(voiced(text, voice))))
        if self.tempo != 1.0:
            ms = max(1, -(-ms * 1000 // round(self.tempo * 1000)))  # ceil(ms / tempo)
        end = at + ms
        self.events.append(Event("speech", at, end, role=role, text=text, chapter=self.chapter, tempo=self.tempo,
                                 voice=voice))
        return end

    def cue(self, at: int, sound: str, role: str = "cue") -> int:
        end = at + max(1, int(self.sound_ms(sound)))
        self.events.append(Event("cue", at, end, role=role, sound=sound, chapter=self.chapter))
        return end

    def markup(self, at: int, text: str, role: str, voice: str | None = None) -> int:
        """Lay out text with [pause]/[cue] markup; returns where it ends (no trailing gap)."""
        t = at
        for seg in parse_markup(text):
            if isinstance(seg, Speech):
                t = self.speech(t, seg.text, role, voice)
            elif isinstance(seg, Pause):
                t += seg.ms
            elif isinstance(seg, CueMark):
                t = self.cue(t, seg.sound, "markup")
        return t


def plan_routine(
    routine: Routine,
    speech_ms: Callable[[str], int],
    sound_ms: Callable[[str], int],
    *,
    estimated: bool = False,
) -> Plan:
    """The session timeline, from the routine and the real (or estimated) length of each clip."""
    b = _Builder(speech_ms, sound_ms)
    chapters: list[Chapter] = []
    warnings: list[PlanWarning] = []
    fits: list[PlanFit] = []
    phrases = phrases_for(routine)  # the routine's own phrases over its language's built-in ones
    t = 0
    count = bool(routine.intro) + sum(len(s.sides or [None]) for s in routine.steps) + bool(routine.outro)
    if count > MAX_CHAPTERS:
        from audiogen.routine.errors import RoutineError

        raise RoutineError(
            f"the session would have {count} chapters (intro, each step and side, outro); a session is limited "
            f"to {MAX_CHAPTERS} chapters (an MP3's table of contents counts them in one byte)",
            path=str(routine.source) if routine.source else None, field="steps",
            hint="split the routine into two, or use fewer steps or sides (a side is a chapter of its own)",
        )

    if routine.intro:
        b.chapter = len(chapters)
        end = b.markup(LEAD_IN_MS, routine.intro, "intro") + GAP_MS
        chapters.append(Chapter(phrases.intro_title, 0, end, kind="intro"))
        t = end
    else:
        t = LEAD_IN_MS

    for index, step in enumerate(routine.steps):
        for side in step.sides or [None]:
            b.chapter = len(chapters)
            start = 0 if not chapters else t
            title = f"{step.title} ({side})" if side else step.title
            content_start = t
            end, warn = _plan_run(b, routine, step, side, start, content_start, phrases)
            chapters.append(Chapter(title, start, end, step=index, side=side, planned_ms=step.duration))
            if warn:
                warnings.append(PlanWarning(title, warn[0], warn[1], warn[2]))
            if b.fitted is not None:
                fits.append(PlanFit(title, step.duration, b.fitted[0], b.fitted[1]))
            for planned, real, message in b.run_warnings:
                warnings.append(PlanWarning(title, planned, real, message))
            t = end

    if routine.outro:
        b.chapter = len(chapters)
        end = b.markup(t, routine.outro, "outro") + TAIL_MS
        chapters.append(Chapter(phrases.outro_title, t, end, kind="outro"))
        t = end
    else:
        last = chapters[-1]
        chapters[-1] = Chapter(last.title, last.start_ms, last.end_ms + TAIL_MS, last.kind, last.step,
                               last.side, last.planned_ms)
        t += TAIL_MS

    if t > MAX_SESSION_MS:
        from audiogen.routine.errors import RoutineError

        raise RoutineError(
            f"the session would last {format_ms(t)}; sessions are limited to {format_ms(MAX_SESSION_MS)} (12 hours)",
            path=str(routine.source) if routine.source else None,
            hint="shorten holds, durations or repeats, or split the routine",
        )
    events = _with_silences(sorted(b.events, key=lambda e: (e.start_ms, e.end_ms)), chapters)
    return Plan(routine.title, t, chapters, events, warnings, estimated, fits)


def _plan_run(b: _Builder, routine: Routine, step: Step, side: str | None, start: int, t: int,
              phrases) -> tuple[int, tuple[int, int, str] | None]:
    """Lay out one run of a step (one side) from `t`; returns its end and an overlong warning."""
    budget_start = t
    first_event = len(b.events)
    b.fitted, b.run_warnings = None, []
    content_end = _lay_run(b, routine, step, side, t, phrases)
    fit = step.fit if step.fit is not None else routine.fit
    if fit and step.duration is not None and content_end > budget_start + step.duration:
        content_end = _fit_run(b, routine, step, side, budget_start, content_end, phrases, first_event)
    warn = None
    if step.duration is not None:
        planned_end = budget_start + step.duration
        if content_end > planned_end:
            real = content_end - budget_start
            warn = (step.duration, real, f"speech needs {format_ms(real)} but the step lasts "
                    f"{format_ms(step.duration)}: the step grows by {format_ms(real - step.duration)}"
                    + (f" (more than {MAX_FIT_TEMPO:g}x faster would fit it)" if fit else ""))
            end = content_end
        else:
            end = planned_end
    else:
        end = content_end
    phrase_voice_ = phrase_voice(routine, step, phrases)
    if step.countdown:
        _countdown(b, step, phrases, budget_start, end, first_event, phrase_voice_)
    if step.remind:
        end = _reminders(b, step, phrases, budget_start, end, first_event, routine.language, phrase_voice_)
    return end, warn


def _fit_run(b: _Builder, routine: Routine, step: Step, side: str | None, budget_start: int, content_end: int,
             phrases, first_event: int) -> int:
    """Lay the run out again with its speech faster (at most MAX_FIT_TEMPO) so it ends within its duration;
    returns the new content end, or the old one (at normal tempo) when even that is not enough."""
    natural = content_end - budget_start
    spoken = [e for e in b.events[first_event:] if e.kind == "speech"]
    speech = sum(e.length_ms for e in spoken)
    other = natural - speech  # cue, gaps, pauses, hold: they keep their length
    room = step.duration - other - len(spoken)  # each clip's length rounds up by under 1 ms
    if speech <= 0 or room <= 0 or speech / room > MAX_FIT_TEMPO:
        return content_end
    tempo = max(1.001, -(-speech * 1000 // room) / 1000)  # rounded up to 0.001
    while tempo <= MAX_FIT_TEMPO:
        del b.events[first_event:]
        b.tempo = tempo
        try:
            end = _lay_run(b, routine, step, side, budget_start, phrases)
        finally:
            b.tempo = 1.0
        if end <= budget_start + step.duration:
            b.fitted = (natural, tempo)
            return end
        tempo = round(tempo + 0.005, 3)  # repeat slots can round against us: a little faster
    del b.events[first_event:]
    return _lay_run(b, routine, step, side, budget_start, phrases)


def _lay_run(b: _Builder, routine: Routine, step: Step, side: str | None, t: int, phrases) -> int:
    """The run's own content from `t` (cue, prompt, speech, repeats, hold, breathing); returns its end."""
    budget_start = t
    if routine.cue:
        t = b.cue(t, routine.cue) + CUE_GAP_MS
    own_voice, phrase_voice_ = step_voice(routine, step), phrase_voice(routine, step, phrases)
    if side is not None:
        prompt = (step.side_prompt or phrases.side_prompt).replace("{side}", side)
        t = b.markup(t, prompt, "prompt", own_voice if step.side_prompt else phrase_voice_) + GAP_MS
    if step.say:
        t = b.markup(t, step.say, "say", own_voice) + GAP_MS
    if step.repeat:
        every = step.every
        if every is None:  # share the rest of `duration` out evenly
            every = max(1, (step.duration - (t - budget_start)) // step.repeat)
        for i in range(step.repeat):
            slot = t
            if step.count:
                word = phrases.counts[i] if i < len(phrases.counts) else str(i + 1)
                end = b.speech(slot, word, "count", phrase_voice_)
            else:
                end = b.cue(slot, "tick", "tick")
            t = max(slot + every, end + (GAP_MS // 2))
    if step.hold:
        t += step.hold
    if step.breathe is not None:
        t = _breathe(b, step, phrases, t, phrase_voice_)
    return t


#: The phrase spoken at the start of each breathing phase, and the tone (if any) under it.
_PHASE_WORDS = {"in": "breathe_in", "hold": "breathe_hold", "out": "breathe_out", "hold_after": "breathe_hold"}
_PHASE_TONES = {"in": "rise", "out": "fall"}


def tone_ref(kind: str, ms: int) -> str:
    """The sound name of a pace tone: `tone:rise:4000` rises over 4 s (audio/tones.py makes it)."""
    return f"tone:{kind}:{ms}"


def _breathe(b: _Builder, step: Step, phrases, t: int, voice: str | None = None) -> int:
    """Breathing rounds from `t`: every phase starts exactly `t + (sum of the phases before it)` ms in, with
    its word (in the spoken rounds) and its tone (with tones: true); returns the end of the last phase."""
    br = step.breathe
    spoken = br.spoken_rounds()
    phases = br.phases()
    for r in range(br.rounds):
        for name, ms in phases:
            if br.tones and name in _PHASE_TONES:
                ref = tone_ref(_PHASE_TONES[name], ms)
                b.sound_ms(ref)  # named, so sound_refs() lists it; its length is the phase's, exactly
                b.events.append(Event("cue", t, t + ms, role="tone", sound=ref, chapter=b.chapter))
            if r < spoken:
                word = getattr(phrases, _PHASE_WORDS[name])
                at = max(0, t - SPEECH_LEAD_MS)
                end = b.speech(at, word, "breathe", voice)
                if end > t + ms and r == 0:
                    b.run_warnings.append((ms, end - t, f"the phase word {word!r} ({format_ms(end - at)}) is "
                                           f"longer than its {format_ms(ms)} {name} phase"))
            t += ms
    return t


def _countdown(b: _Builder, step: Step, phrases, run_start: int, run_end: int, first_event: int,
               voice: str | None = None) -> None:
    """The last `countdown` seconds of the run counted down, each number (or tick) starting on its second."""
    n = step.countdown
    window = run_end - n * 1000
    busy = [e for e in b.events[first_event:] if e.kind == "speech" and e.end_ms > window - SPEECH_LEAD_MS]
    if busy:
        b.run_warnings.append((n * 1000, busy[-1].end_ms - window, f"speech runs into the {n}s countdown: "
                               "the numbers play over it (shorten the text or lengthen the step)"))
    for k in range(n, 0, -1):
        second = run_end - k * 1000
        if step.count:
            word = phrases.counts[k - 1] if k <= len(phrases.counts) else str(k)
            b.speech(max(run_start, second - SPEECH_LEAD_MS), word, "countdown", voice)
        else:
            b.cue(second, "tick", "countdown")


def _reminders(b: _Builder, step: Step, phrases, run_start: int, run_end: int, first_event: int,
               language: str = "en", voice: str | None = None) -> int:
    """Place spoken reminders into the run's silence, moving them past speech they would overlap."""
    wanted: list[tuple[int, str]] = []
    length = run_end - run_start
    if step.remind.halfway:
        wanted.append((run_start + length // 2, phrases.halfway))
    for r in step.remind.remaining:
        # words of the language for a built-in phrase; digits (read by the engine in its language) otherwise
        text = remaining_text(language, phrases, r)
        wanted.append((run_end - r, text))
    # a countdown owns the run's last seconds: nothing is moved onto it, or past it
    countdown = min((e.start_ms for e in b.events[first_event:] if e.role == "countdown"), default=None)
    for at, text in sorted(wanted):
        busy = sorted((e.start_ms, e.end_ms) for e in b.events[first_event:] if e.kind != "silence")
        length_ms = max(1, int(b.speech_ms(voiced(text, voice))))
        at = max(at, run_start)
        for s, e in busy:
            if at < e + REMINDER_GAP_MS and at + length_ms + REMINDER_GAP_MS > s:
                at = e + REMINDER_GAP_MS
        if countdown is not None and at + length_ms + REMINDER_GAP_MS > countdown:
            at = countdown - REMINDER_GAP_MS - length_ms  # just before the countdown, if there is room
            if any(at < e + REMINDER_GAP_MS and at + length_ms + REMINDER_GAP_MS > s for s, e in busy
                   if s < countdown) or at < run_start:
                b.run_warnings.append((step.countdown * 1000, length_ms, f"the reminder {text!r} has no room "
                                       "before the countdown: left out"))
                continue
        b.speech(at, text, "reminder", voice)
        run_end = max(run_end, at + length_ms + REMINDER_GAP_MS)
    return run_end


def _with_silences(events: list[Event], chapters: list[Chapter]) -> list[Event]:
    """Add explicit silence events for every gap longer than one gap, per chapter (for JSON and tables)."""
    out: list[Event] = []
    by_chapter: dict[int, list[Event]] = {}
    for e in events:
        by_chapter.setdefault(e.chapter, []).append(e)
    for ci, ch in enumerate(chapters):
        t = ch.start_ms
        for e in by_chapter.get(ci, []):
            if e.start_ms - t >= 1000:
                out.append(Event("silence", t, e.start_ms, role="silence", chapter=ci))
            out.append(e)
            t = max(t, e.end_ms)
        if ch.end_ms - t >= 1000:
            out.append(Event("silence", t, ch.end_ms, role="silence", chapter=ci))
    return out


def format_plan(plan: Plan) -> str:
    """The timeline as a table: chapter, start, length, what plays."""
    rows = [("chapter", "start", "length", "what plays")]
    for ci, ch in enumerate(plan.chapters):
        first = True
        for e in (e for e in plan.events if e.chapter == ci):
            what = {
                "speech": f'"{_short(e.text or "")}"' + (f" ({e.role})" if e.role not in ("say",) else "")
                + (f" at {e.tempo:.2f}x" if e.tempo != 1.0 else "")
                + (f" [{_voice_name(e.voice)}]" if e.voice else ""),
                "cue": f"[{e.sound}]",
                "silence": "silence",
            }[e.kind]
            rows.append((ch.title if first else "", format_ms(e.start_ms), format_ms(e.length_ms), what))
            first = False
        if first:
            rows.append((ch.title, format_ms(ch.start_ms), format_ms(ch.length_ms), "silence"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}" for r in rows]
    lines.insert(1, "-" * min(100, max(len(x) for x in lines)))
    lines.append(f"total {format_ms(plan.length_ms)}" + (" (speech lengths estimated)" if plan.estimated else ""))
    return "\n".join(lines)


def _voice_name(voice: str) -> str:
    """A voice label as a table shows it: `espeak en-gb 1.6x`."""
    v = json.loads(voice)
    return " ".join(str(x) for x in (v.get("engine"), v.get("name"), f"{v.get('speed', 1):g}x") if x)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
