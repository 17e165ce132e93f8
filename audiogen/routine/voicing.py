"""Which voice speaks what: a step's `voice:` and `phrases.voice` over the routine's own.

The planner lays out every spoken text under a clip name: the text itself when the routine's voice says it,
else the text tagged with the voice (`voiced`). Narration, clip lengths and rendering go by clip names, so
the same words in two voices are two clips; events keep the plain text and name the voice in `voice`.
"""

from __future__ import annotations

import json

from audiogen.routine.model import Phrases, Routine, Step, Voice

#: Separates the voice from the text in a clip name. YAML refuses this control character in a routine's
#: text, so no written text contains it.
_MARK = "\x1f"


def merged(base: Voice, over: Voice | None) -> Voice:
    """`over`'s keys as written, over `base` (a step's `voice: {speed: 1.2}` keeps the routine's engine)."""
    if over is None:
        return base
    return base.model_copy(update={k: getattr(over, k) for k in over.model_fields_set})


def label(voice: Voice) -> str:
    """The voice as a short stable text (the JSON of its engine, name and speed)."""
    return json.dumps(voice.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def from_label(text: str) -> Voice:
    return Voice.model_validate(json.loads(text))


def step_voice(routine: Routine, step: Step | None) -> str | None:
    """The label of the voice a step's own words (say, side_prompt) are spoken in; None: the routine's."""
    voice = merged(routine.voice, step.voice if step is not None else None)
    return None if voice == routine.voice else label(voice)


def phrase_voice(routine: Routine, step: Step | None, phrases: Phrases) -> str | None:
    """The label of the voice audiogen's own words (counts, reminders, the built-in side prompt) are
    spoken in within `step`: `phrases.voice`, else the step's, else None (the routine's)."""
    if phrases.voice is not None:
        voice = merged(merged(routine.voice, step.voice if step is not None else None), phrases.voice)
        return None if voice == routine.voice else label(voice)
    return step_voice(routine, step)


def voiced(text: str, voice: str | None) -> str:
    """The clip name of `text` spoken in `voice` (a label; None: the routine's voice)."""
    return text if voice is None else f"{_MARK}{voice}{_MARK}{text}"


def split(name: str) -> tuple[str | None, str]:
    """(voice label or None, plain text) of a clip name."""
    if not name.startswith(_MARK + "{"):
        return None, name
    voice, mark, text = name[1:].partition(_MARK)
    return (voice, text) if mark else (None, name)


def routine_in(routine: Routine, voice: str | None) -> Routine:
    """The routine as narrated in `voice` (the same routine for None)."""
    return routine if voice is None else routine.model_copy(update={"voice": from_label(voice)})


def by_voice(routine: Routine, names: list[str]) -> list[tuple[Routine, str | None, dict[str, str]]]:
    """Clip names grouped by voice: (the routine in that voice, label, {clip name: plain text}), the
    routine's own voice first."""
    groups: dict[str | None, dict[str, str]] = {None: {}}
    for name in names:
        voice, text = split(name)
        groups.setdefault(voice, {})[name] = text
    return [(routine_in(routine, v), v, texts) for v, texts in groups.items() if texts or v is None]
