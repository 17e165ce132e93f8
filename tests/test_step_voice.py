"""A voice per step: a step's `voice:` speaks its own words, `phrases.voice` audiogen's words (counts,
reminders, the built-in side prompt); the timeline says who spoke; clips in two voices are two clips."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from audiogen.build import BuildOptions, build
from audiogen.cli import cli
from audiogen.plan.planner import plan_routine, spoken_texts
from audiogen.routine.errors import RoutineError
from audiogen.routine.loader import parse_routine
from audiogen.voice.cache import ClipCache

from conftest import RATE, decode

ROUTINE = """\
title: Two voices
language: en
voice: {engine: espeak, name: en-us}
cue: none
phrases: {voice: {speed: 1.6}}
intro: Welcome.
steps:
  - title: Counted
    say: Breathe with me.
    repeat: 2
    every: 2s
  - title: Partner
    say: Breathe with me.
    voice: {name: en-gb}
    duration: 12s
    sides: [left]
    remind: {halfway: true}
"""


def speech(plan) -> list[tuple[str, str, dict | None]]:
    return [(e["role"], e["text"], e.get("voice")) for e in plan["events"] if e["kind"] == "speech"]


def test_each_spoken_item_is_planned_in_its_voice():
    plan = plan_routine(parse_routine(ROUTINE, "r.yaml"), lambda t: 700, lambda s: 300).to_dict()
    counting = {"engine": "espeak", "name": "en-us", "speed": 1.6}
    assert speech(plan) == [
        ("intro", "Welcome.", None),
        ("say", "Breathe with me.", None),
        ("count", "One", counting),
        ("count", "Two", counting),
        # in the partner's step audiogen's words are the phrases' speed over the step's voice
        ("prompt", "Now the left side.", {"engine": "espeak", "name": "en-gb", "speed": 1.6}),
        ("say", "Breathe with me.", {"engine": "espeak", "name": "en-gb", "speed": 1.0}),
        ("reminder", "Halfway.", {"engine": "espeak", "name": "en-gb", "speed": 1.6}),
    ]


def test_the_same_words_in_two_voices_are_two_clips():
    texts = spoken_texts(parse_routine(ROUTINE, "r.yaml"))
    assert len(texts) == 7 and len(set(texts)) == 7  # "Breathe with me." twice: once per voice


def test_a_voice_equal_to_the_routines_is_the_routines():
    text = ROUTINE.replace("voice: {name: en-gb}", "voice: {name: en-us, speed: 1}")
    plan = plan_routine(parse_routine(text, "r.yaml"), lambda t: 700, lambda s: 300).to_dict()
    assert ("say", "Breathe with me.", None) in speech(plan)[5:]


def test_a_mistyped_step_voice_is_a_located_error():
    with pytest.raises(RoutineError) as err:
        parse_routine(ROUTINE.replace("voice: {name: en-gb}", "voice: {nmae: en-gb}"), "r.yaml")
    assert err.value.line == 14 and "did you mean 'name'" in (err.value.hint or "")


def test_the_schema_offers_a_voice_on_steps_and_phrases():
    res = CliRunner().invoke(cli, ["schema"])
    schema = json.loads(res.output)
    assert "voice" in schema["$defs"]["Step"]["properties"]
    assert "voice" in schema["$defs"]["Phrases"]["properties"]


def test_plan_json_says_who_speaks(tmp_path):
    src = tmp_path / "r.yaml"
    src.write_text(ROUTINE)
    res = CliRunner(mix_stderr=False).invoke(cli, ["plan", str(src), "--json"])
    assert res.exit_code == 0, res.stderr
    voices = [v for _, _, v in speech(json.loads(res.stdout))]
    assert voices.count(None) == 2 and {"engine": "espeak", "name": "en-gb", "speed": 1.0} in voices


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("voices")
    src = tmp / "r.yaml"
    src.write_text(ROUTINE)
    cache = ClipCache(tmp / "cache")
    [r] = build([src], BuildOptions(out_dir=tmp / "out", cache=cache))
    assert r.status == "built", r.error
    return tmp, r, json.loads((tmp / "out" / f"{r.slug}.json").read_text())


def test_the_timeline_names_the_engine_and_voice_of_each_other_voice(built):
    _, r, timeline = built
    said = {(e["role"], e.get("spoken_by")) for e in timeline["events"] if e["kind"] == "speech"}
    assert ("say", "espeak (en-gb)") in said and ("count", "espeak (en-us)") in said
    assert ("intro", None) in said  # the routine's own voice: the session's engine and voice say it
    assert (timeline["engine"], timeline["voice"]) == ("espeak", "en-us")


def test_each_voice_is_heard_at_its_own_speed_and_in_its_own_clip(built):
    """The counts at 1.6x are shorter than the same engine's words at 1x; the two "Breathe with me." clips
    (en-us and en-gb) differ; the decoded session is as long as the plan."""
    tmp, r, timeline = built
    speech_events = [e for e in timeline["events"] if e["kind"] == "speech"]
    breathe = [e for e in speech_events if e["text"] == "Breathe with me."]
    assert len(breathe) == 2
    cache = ClipCache(tmp / "cache")
    assert len(list(cache.root.rglob("*.wav"))) == 7
    audio = decode(r.mp3)
    assert abs(len(audio) * 1000 / RATE - timeline["length_ms"]) < 50

    # the same text at another speed is a clip of its own, shorter: measure by planning both speeds
    slow = ROUTINE.replace("phrases: {voice: {speed: 1.6}}", "phrases: {voice: {speed: 1.0}}")
    (tmp / "slow.yaml").write_text(slow.replace("title: Two voices", "title: Slow"))
    [s] = build([tmp / "slow.yaml"], BuildOptions(out_dir=tmp / "out", cache=cache))
    assert s.status == "built" and s.synthesized >= 3  # One, Two, Halfway. again at 1.0x
    slow_tl = json.loads((tmp / "out" / f"{s.slug}.json").read_text())

    def length(tl, text):
        return next(e["end_ms"] - e["start_ms"] for e in tl["events"] if e.get("text") == text)

    assert length(timeline, "Halfway.") < 0.8 * length(slow_tl, "Halfway.")


def test_a_step_voice_no_engine_can_speak_fails_check_and_build_before_synthesis(tmp_path):
    src = tmp_path / "r.yaml"
    src.write_text(ROUTINE.replace("voice: {name: en-gb}", "voice: {name: zz-no-such-voice}"))
    res = CliRunner(mix_stderr=False).invoke(cli, ["check", str(src)])
    assert res.exit_code == 1 and "zz-no-such-voice" in res.stderr, res.output + res.stderr
    cache = ClipCache(tmp_path / "cache")
    [r] = build([src], BuildOptions(out_dir=tmp_path / "out", cache=cache))
    assert r.status == "failed" and "zz-no-such-voice" in r.error.message
    assert not list((tmp_path / "cache").rglob("*.wav"))  # nothing was narrated


def test_the_plan_table_names_the_other_voices(tmp_path):
    src = tmp_path / "r.yaml"
    src.write_text(ROUTINE)
    res = CliRunner(mix_stderr=False).invoke(cli, ["plan", str(src)])
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert any('"One" (count) [espeak en-us 1.6x]' in ln for ln in lines)
    assert any('"Breathe with me." [espeak en-gb 1x]' in ln for ln in lines)
    assert any(ln.endswith('"Welcome." (intro)') for ln in lines)
