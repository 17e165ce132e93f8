"""`audiogen say`: one phrase through the same engine choice, pronounce: rules and clip cache as a build, so an
author hears a fix without building a session."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiogen.audio.encode import encode_mp3
from audiogen.dsp.ffmpeg import INTERNAL_RATE
from audiogen.routine.atomic import atomic_path
from audiogen.routine.errors import AudiogenError, RoutineError
from audiogen.routine.library import config_for
from audiogen.routine.loader import load_routine
from audiogen.routine.model import Routine
from audiogen.voice.cache import ClipCache
from audiogen.voice.narrate import Narrator
from audiogen.voice.pronounce import apply as pronounce

#: Players tried in order (the first on PATH plays the WAV): argv before the file name.
PLAYERS = [
    ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error"],
    ["mpv", "--no-video", "--really-quiet"],
    ["paplay"],
    ["aplay", "-q"],
    ["afplay"],
    ["play", "-q"],
]


@dataclass
class Said:
    """Where the phrase was written, who narrated it, the text the engine received, and whether it played."""

    path: Path
    engine: str
    voice: str
    spoken: str
    played: bool = False
    player: str | None = None  # the player tried (None: none on PATH)
    notes: list[str] = field(default_factory=list)


def find_player() -> list[str] | None:
    """The argv of the first audio player on PATH, or None."""
    for argv in PLAYERS:
        exe = shutil.which(argv[0])
        if exe:
            return [exe, *argv[1:]]
    return None


def _routine(text: str, routine_file: Path | None) -> Routine:
    if routine_file is None:
        return Routine.model_validate({"title": "say", "cue": None, "steps": [{"title": "say", "say": text}]})
    return load_routine(routine_file, defaults=config_for(routine_file).defaults or None)


def say(text: str, *, routine_file: Path | None = None, engine: str | None = None, voice_name: str | None = None,
        speed: float | None = None, language: str | None = None, out: Path | None = None, play: bool = False,
        offline: bool | None = None, cache: ClipCache | None = None) -> Said:
    """Narrate `text` with the routine's (or the default) voice and pronounce: rules; write `out` (.wav or .mp3)
    or, without it, a temp WAV; play it when asked and a player is on PATH."""
    text = " ".join(text.split())
    if not text:
        raise RoutineError("say needs some text to speak")
    if out is not None and out.suffix.lower() not in (".wav", ".mp3"):
        raise AudiogenError(f"cannot write {out.name}: say writes .wav or .mp3", hint="e.g. -o phrase.mp3")
    routine = _routine(text, routine_file)
    voice = routine.voice.model_copy(update={k: v for k, v in {"engine": engine, "name": voice_name,
                                                                 "speed": speed}.items() if v is not None})
    if voice.speed < 0.5 or voice.speed > 2.0:
        raise AudiogenError(f"speed {voice.speed:g} is out of range", hint="use 0.5 to 2.0")
    routine = routine.model_copy(update={"voice": voice, **({"language": language} if language else {})})
    cache = cache or ClipCache()
    notes: list[str] = []
    with Narrator(cache, offline=offline, notify=notes.append, workers=1) as narrator:
        narration = narrator.narrate(routine, [text])
    samples = cache.load(narration.keys[text])
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="audiogen-say-")) / "say.wav"
    out = Path(out)
    _write(samples, out)
    said = Said(out, narration.engine, narration.voice, pronounce(text, routine.pronounce), notes=notes)
    if play:
        argv = find_player()
        if argv is not None:
            said.player = Path(argv[0]).name
            said.played = subprocess.run([*argv, str(out)], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL).returncode == 0
    return said


def _write(samples: np.ndarray, out: Path) -> None:
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".mp3":
            encode_mp3([samples.astype(np.float32) / 32768.0], tmp)
        else:
            with wave.open(str(tmp), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(INTERNAL_RATE)
                w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
