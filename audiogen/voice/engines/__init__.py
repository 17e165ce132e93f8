"""Engine registry: a name -> factory dict; adding an engine is one file and one line here."""

from __future__ import annotations

from collections.abc import Callable

from audiogen.routine.errors import EngineUnavailable
from audiogen.voice.engines.base import Clip, Engine, VoiceRequest

__all__ = ["Clip", "Engine", "VoiceRequest", "ENGINES", "get_engine", "OFFLINE_PREFERENCE"]


def _espeak() -> Engine:
    from audiogen.voice.engines.espeak import EspeakEngine

    return EspeakEngine()


def _piper() -> Engine:
    from audiogen.voice.engines.piper import PiperEngine

    return PiperEngine()


def _gtts() -> Engine:
    from audiogen.voice.engines.gtts_engine import GttsEngine

    return GttsEngine()


ENGINES: dict[str, Callable[[], Engine]] = {
    "gtts": _gtts,
    "espeak": _espeak,
    "piper": _piper,
}

#: Offline engines `auto` tries after gTTS, best-sounding first.
OFFLINE_PREFERENCE: list[str] = ["piper", "espeak"]

_instances: dict[str, Engine] = {}


def get_engine(name: str) -> Engine:
    """The (process-wide, lazily created) engine called `name`."""
    if name not in ENGINES:
        raise EngineUnavailable(
            f"unknown engine {name!r}", hint=f"choose one of: auto, {', '.join(sorted(ENGINES))}"
        )
    if name not in _instances:
        _instances[name] = ENGINES[name]()
    return _instances[name]
