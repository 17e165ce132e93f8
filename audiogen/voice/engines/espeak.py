"""espeak-ng, loaded in process from the `espeakng-loader` wheel: the always-available offline voice.

espeak-ng is GPL-3.0; it speaks about a hundred languages and needs no espeak binary on PATH.
"""

from __future__ import annotations

import ctypes
import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from audiogen.routine.errors import EngineError, EngineUnavailable
from audiogen.voice.engines.base import Clip, VoiceRequest
from audiogen.voice.interrupts import hold_interrupts

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
#: espeak_Synth flag: `[[...]]` in the text is phonemes (espeak's mnemonics, as `espeak-ng -x` prints them).
_ESPEAK_PHONEMES = 0x100
_ESPEAK_RATE = 1
_DEFAULT_WPM = 175
#: gTTS language codes whose best espeak voice has another name.
_PREFERRED = {"en": "en-us", "zh": "cmn", "zh-cn": "cmn", "zh-tw": "cmn", "pt": "pt-br", "nb": "nb", "no": "nb"}


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, language, NUL)*, NUL
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Library:
    """libespeak-ng as loaded in this process: one global C library, so one of these, shared by every
    EspeakEngine (a second espeak_Initialize would re-point the synthesis callback at an object that a
    discarded engine takes with it)."""

    def __init__(self, lib, rate: int) -> None:
        self.lib, self.rate = lib, rate
        self.lock = threading.Lock()  # one synthesis at a time: the library has one voice and one callback
        self.buffer: list[bytes] = []
        self.callback = _Callback(self._on_audio)
        lib.espeak_SetSynthCallback(self.callback)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self.buffer.append(ctypes.string_at(wav, n * 2))
        return 0


_library: _Library | None = None
_library_error: str | None = None
_loading = threading.Lock()


class EspeakEngine:
    """espeak-ng through ctypes; the process's one library (`_Library`), guarded by its lock."""

    name = "espeak"
    offline = True
    #: espeak itself runs ~1000x real time; what a pool spreads over the cores is the clip preparation
    #: (resampling, levelling: ~60-80 ms a clip). Measured break-even ~8 clips; 16 leaves a margin.
    parallel = "processes"
    pool_min_clips = 16
    #: `[[...]]` (from a routine's pronounce:) is read as espeak phoneme mnemonics.
    phonemes = True

    def __init__(self) -> None:
        self._voices: dict[str, str] | None = None

    # -- loading -------------------------------------------------------------------------------
    def _files(self) -> tuple[Path, Path]:
        """(libespeak-ng, its data folder), found without loading anything; EngineUnavailable if missing."""
        if _library_error is not None:
            raise EngineUnavailable(_library_error)
        try:
            import espeakng_loader
        except ImportError:
            raise EngineUnavailable("the espeakng-loader package is not installed (pip install espeakng-loader)"
                                    ) from None
        lib, data = Path(espeakng_loader.get_library_path()), Path(espeakng_loader.get_data_path())
        if not lib.is_file() or not (data / "lang").is_dir():
            missing = lib.name if not lib.is_file() else "voice data"
            raise EngineUnavailable(f"espeakng-loader is incomplete (no {missing}); reinstall it "
                                    "(pip install --force-reinstall espeakng-loader)")
        return lib, data

    def _load(self) -> _Library:
        """The library, loaded and initialised once per process on first use (`plan`, `voices` and choosing
        an engine never load it)."""
        global _library, _library_error
        with _loading:
            if _library is not None:
                return _library
            lib_path, data_path = self._files()
            try:
                lib = ctypes.CDLL(str(lib_path))
                rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path).encode(), 0)
                if rate <= 0:
                    raise OSError(f"espeak_Initialize returned {rate}")
            except OSError as e:
                _library_error = f"libespeak-ng could not be loaded: {e}"
                raise EngineUnavailable(_library_error) from None
            _library = _Library(lib, rate)
            return _library

    # -- protocol ------------------------------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        try:
            self._files()
        except EngineUnavailable as e:
            return e.message
        return None

    def version(self) -> str:
        """The library's version, from its file name (libespeak-ng.so.1.52.0), else the wheel's."""
        lib, _ = self._files()
        for p in lib.parent.glob("libespeak-ng.so.*.*.*"):
            return "espeak-ng-" + p.name.removeprefix("libespeak-ng.so.")
        return "espeak-ng-loader-" + metadata.version("espeakng-loader")

    def voices(self) -> dict[str, str]:
        """Language code -> espeak voice identifier, for every voice installed.

        Read from the voice files' `language` lines (what espeak_ListVoices reports, without loading the
        library); variants (`!v`) and MBROLA voices (`mb`) are not voices of their own.
        """
        if self._voices is None:
            _, data = self._files()
            out: dict[str, str] = {}
            for folder in (data / "lang", data / "voices"):
                for f in sorted(folder.rglob("*")):
                    if not f.is_file() or {"!v", "mb"} & set(f.relative_to(data).parts):
                        continue
                    for line in f.read_text("utf-8", "replace").splitlines():
                        words = line.split()
                        if len(words) >= 2 and words[0] == "language":
                            lang = words[1].lower()
                            out.setdefault(lang, lang)
            self._voices = dict(sorted(out.items()))
        return self._voices

    def describe(self) -> dict:
        """For `audiogen voices`: every installed voice (named by its language code)."""
        voices = self.voices()
        return {"languages": sorted(voices),
                "voices": [{"id": v, "language": lang} for lang, v in sorted(voices.items())],
                "custom": "voice.name may be any espeak voice listed here (en-gb, en-us, fr-fr, ...)"}

    def resolve_voice(self, voice: VoiceRequest) -> str:
        voices = self.voices()
        if voice.name:
            if voice.name.lower() in voices:
                return voice.name.lower()
            raise EngineUnavailable(
                f"espeak has no voice {voice.name!r}", hint="audiogen voices lists espeak's voices"
            )
        lang = voice.language.lower().replace("_", "-")
        for candidate in (_PREFERRED.get(lang), lang, lang.split("-")[0]):
            if candidate and candidate in voices:
                return candidate
        raise EngineUnavailable(
            f"espeak has no voice for language {voice.language!r}",
            hint="audiogen voices lists espeak's languages",
        )

    def prepare(self, voice: VoiceRequest) -> None:
        """Load the library and its voice list now (a worker process does this once)."""
        self.resolve_voice(voice)
        self._require()

    def synthesize(self, text: str, voice: VoiceRequest) -> Clip:
        espeak = self._require()
        lib = espeak.lib
        name = self.resolve_voice(voice)
        data = text.encode("utf-8") + b"\0"
        with espeak.lock:
            espeak.buffer = []
            lang = ctypes.create_string_buffer(name.encode())
            spec = _Voice(languages=ctypes.cast(lang, ctypes.c_void_p).value)
            if lib.espeak_SetVoiceByProperties(ctypes.byref(spec)) != 0:
                raise EngineError(f"espeak could not select voice {name!r}")
            wpm = int(round(_DEFAULT_WPM * voice.speed))
            lib.espeak_SetParameter(_ESPEAK_RATE, max(80, min(450, wpm)), 0)
            with hold_interrupts():  # raised in the audio callback, a C frame, it would be lost
                flags = _ESPEAK_CHARS_UTF8 | (_ESPEAK_PHONEMES if "[[" in text else 0)
                status = lib.espeak_Synth(data, len(data), 0, 0, 0, flags, None, None)
                lib.espeak_Synchronize()
            pcm = b"".join(espeak.buffer)
            espeak.buffer = []
        if status != 0 or not pcm:
            raise EngineError(f"espeak could not narrate {text[:40]!r} (status {status})")
        return Clip(np.frombuffer(pcm, dtype=np.int16).copy(), espeak.rate)

    def _require(self) -> _Library:
        try:
            return self._load()
        except EngineUnavailable as e:
            raise EngineUnavailable(f"espeak is not available: {e.message}") from None
