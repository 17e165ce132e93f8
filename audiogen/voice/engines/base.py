"""The small interface every text-to-speech engine implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class VoiceRequest:
    """What a routine asks of an engine: language (gTTS codes), engine-specific voice name, tempo."""

    language: str = "en"
    name: str | None = None
    speed: float = 1.0


@dataclass
class Clip:
    """Synthesised speech: mono int16 samples at `rate` Hz."""

    samples: np.ndarray
    rate: int

    @property
    def duration_ms(self) -> float:
        return 1000.0 * len(self.samples) / self.rate


@runtime_checkable
class Engine(Protocol):
    """A text-to-speech engine.

    `synthesize` must honour `voice.speed` without changing pitch (natively where the engine can,
    otherwise with ffmpeg's atempo) and raise `EngineError` subclasses, never library exceptions.
    """

    name: str
    #: True when the engine never touches the network.
    offline: bool

    def unavailable_reason(self) -> str | None:
        """None when usable here, else one sentence saying why not."""

    def version(self) -> str:
        """Engine and voice-data version; part of every clip's cache key."""

    def resolve_voice(self, voice: VoiceRequest) -> str:
        """The concrete voice this engine would use for `voice` (raises EngineUnavailable if none)."""

    def synthesize(self, text: str, voice: VoiceRequest) -> Clip:
        """Narrate `text` (plain text, no markup) and return the audio."""
