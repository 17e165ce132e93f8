"""Choosing an engine for a routine and getting every phrase as a cached clip."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .cache import ClipCache, clip_key
from .engines import OFFLINE_PREFERENCE, Engine, VoiceRequest, get_engine
from .errors import EngineError, EngineUnavailable
from .ffmpeg import INTERNAL_RATE, resample_pcm
from .limiter import limit_peaks
from .model import Routine

#: Spoken clips are levelled to this loudness (LUFS; beds use it as their RMS reference) ...
SPEECH_RMS_DBFS = -20.0
#: ... and their peaks limited to 8 dB above it (like broadcast speech): a session that is mostly silence
#: still reaches -16 LUFS integrated with true peaks under -1 dBTP, and words stay clear on a phone speaker.
SPEECH_PEAK = 10 ** (-12 / 20)


def offline_mode() -> bool:
    return os.environ.get("AUDIOGEN_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Narration:
    """Which engine and voice narrated a routine, and where each phrase's clip is."""

    engine: str
    voice: str
    keys: dict[str, str]  # text -> cache key
    lengths: dict[str, int]  # text -> ms
    synthesized: int = 0
    cache_hits: int = 0
    notes: list[str] = field(default_factory=list)


def voice_request(routine: Routine) -> VoiceRequest:
    return VoiceRequest(language=routine.language, name=routine.voice.name, speed=routine.voice.speed)


def prepare_speech(samples: np.ndarray, rate: int, tempo: float = 1.0) -> np.ndarray:
    """Engine audio -> the cache's form: internal rate, edges trimmed to 30 ms, level normalised."""
    x = resample_pcm(samples, rate, tempo=tempo).astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(x) > 10 ** (-50 / 20))
    if len(loud):
        pad = int(0.03 * INTERNAL_RATE)
        x = x[max(0, loud[0] - pad) : loud[-1] + pad]
    level = _speech_level_db(x)
    if level is not None:
        # limiting lowers the level a little: correct the gain on the original until it lands
        gain = SPEECH_RMS_DBFS - level
        for _ in range(4):
            y = limit_peaks(x * (10 ** (gain / 20)), SPEECH_PEAK)
            got = _speech_level_db(y)
            if got is None or abs(got - SPEECH_RMS_DBFS) < 0.1:
                break
            gain += SPEECH_RMS_DBFS - got
        x = y
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def _speech_level_db(x: np.ndarray) -> float | None:
    """A clip's loudness (LUFS, gated like a whole programme); active-sample RMS for very short clips."""
    from .loudness import LoudnessMeter

    meter = LoudnessMeter()
    meter.add(x)
    lufs = meter.integrated()
    if np.isfinite(lufs):
        return lufs
    active = x[np.abs(x) > 10 ** (-45 / 20)]
    if not len(active):
        return None
    return 20 * np.log10(float(np.sqrt(np.mean(active**2))))


class Narrator:
    """Resolves `auto` (gTTS, then offline voices) and fills the clip cache.

    One Narrator serves a whole batch build: once gTTS has failed to answer, later routines go
    straight to the offline voice instead of waiting for the network again.
    """

    def __init__(
        self,
        cache: ClipCache,
        *,
        engine: str | None = None,
        offline: bool | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.cache = cache
        self.engine_override = engine
        self.offline = offline_mode() if offline is None else offline
        self.notify = notify or (lambda msg: None)
        self._down: dict[str, str] = {}  # engine -> why it failed in this process
        self._told: set[str] = set()

    def candidates(self, routine: Routine) -> list[str]:
        choice = self.engine_override or routine.voice.engine
        if choice != "auto":
            return [choice]
        return ["gtts"] + OFFLINE_PREFERENCE  # offline, gtts is skipped with a note saying so

    def _usable(self, name: str, voice: VoiceRequest, explicit: bool) -> tuple[Engine, str, VoiceRequest] | str:
        """(engine, voice id, the request it will get), or the reason it cannot narrate this routine."""
        if name == "gtts" and self.offline:
            reason = "offline mode (--offline / AUDIOGEN_OFFLINE=1) never contacts the network"
        elif name in self._down:
            reason = self._down[name]
        else:
            try:
                engine = get_engine(name)
                reason = engine.unavailable_reason()
                if reason is None:
                    try:
                        return engine, engine.resolve_voice(voice), voice
                    except EngineUnavailable:
                        if explicit or not voice.name:
                            raise
                        # under auto, `name` is meant for another engine (a gTTS tld, say): use this
                        # engine's default voice for the language instead
                        plain = replace(voice, name=None)
                        return engine, engine.resolve_voice(plain), plain
            except EngineUnavailable as e:
                if explicit:
                    raise EngineUnavailable(f"engine {name!r} cannot narrate: {e.message}", hint=e.hint) from None
                reason = e.message
        if explicit:
            raise EngineUnavailable(f"engine {name!r} is not available: {reason}",
                                    hint="use engine: auto, or another engine (audiogen voices lists them)")
        return reason

    def key(self, engine: Engine, voice_id: str, voice: VoiceRequest, text: str) -> str:
        return clip_key(engine.name, engine.version(), voice_id, voice.language, voice.speed, text)

    def cached_lengths(self, routine: Routine, texts: list[str]) -> dict[str, int]:
        """Real lengths of the clips already cached for the engine `auto` would try first (no synthesis)."""
        voice = voice_request(routine)
        for name in self.candidates(routine):
            try:
                got = self._usable(name, voice, explicit=False)
            except EngineError:
                continue
            if isinstance(got, str):
                continue
            engine, voice_id, req = got
            out = {}
            for t in texts:
                ms = self.cache.length_ms(self.key(engine, voice_id, req, t))
                if ms is not None:
                    out[t] = ms
            return out
        return {}

    def narrate(self, routine: Routine, texts: list[str],
                on_clip: Callable[[str, bool], None] | None = None) -> Narration:
        """Make sure every text has a cached clip, narrated by one engine for the whole routine."""
        voice = voice_request(routine)
        names = self.candidates(routine)
        explicit = len(names) == 1 and (self.engine_override or routine.voice.engine) != "auto"
        skipped: list[str] = []
        for name in names:
            got = self._usable(name, voice, explicit)
            if isinstance(got, str):
                skipped.append(f"{name}: {got}")
                continue
            engine, voice_id, req = got
            try:
                narration = self._fill(engine, voice_id, req, texts, on_clip)
            except EngineError as e:  # unreachable, rate-limited, refused: auto tries the next engine
                if explicit:
                    raise
                self._down[name] = e.message
                skipped.append(f"{name}: {e.message}")
                continue
            if skipped and not explicit:
                note = f"narrated by {engine.name} ({voice_id}) because " + "; ".join(skipped)
                narration.notes.append(note)
                if note not in self._told:
                    self._told.add(note)
                    self.notify(note)
            return narration
        raise EngineUnavailable(
            f"no engine can narrate language {routine.language!r}: " + "; ".join(skipped),
            hint="install an offline voice or check the language code (audiogen voices)",
        )

    def _fill(self, engine: Engine, voice_id: str, voice: VoiceRequest, texts: list[str],
              on_clip: Callable[[str, bool], None] | None) -> Narration:
        n = Narration(engine.name, voice_id, {}, {})
        for text in texts:
            key = self.key(engine, voice_id, voice, text)
            ms = self.cache.length_ms(key)
            if ms is None:
                clip = engine.synthesize(text, voice)
                self.cache.put(key, prepare_speech(clip.samples, clip.rate))
                ms = self.cache.length_ms(key)
                n.synthesized += 1
                hit = False
            else:
                n.cache_hits += 1
                hit = True
            n.keys[text], n.lengths[text] = key, ms
            if on_clip:
                on_clip(text, hit)
        return n
