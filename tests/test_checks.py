"""The checks a sound engineer would make (audio.checks), run on every build: each one tripped by a routine
made for it, and a clean routine that trips none; `--strict` fails the session on any (exit 1, not written).

The routines are short and narrated by espeak; the figures checked against the decoded MP3 are measured by
ffmpeg, not by audiogen's meter.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from audiogen.audio import checks
from audiogen.audio.session import SessionAudio, load_cue, render_audio
from audiogen.build import BuildOptions, build
from audiogen.cli import cli
from audiogen.dsp.ffmpeg import INTERNAL_RATE
from audiogen.dsp.limiter import LimiterStats, limit_stream
from audiogen.plan.planner import Chapter, Event, Plan, PlanWarning
from audiogen.routine.library import OutputSettings
from audiogen.voice.clips import prepare_speech

from conftest import decode, rms_db, window

HEAD = "title: {title}\nvoice: {{engine: espeak}}\n"
CLEAN = HEAD + """\
cue: chime
background: {{track: rain, volume: -20 dB}}
intro: Welcome. Sit comfortably.
steps:
  - title: Breathe
    say: Breathe in slowly, and out.
    hold: 4s
  - title: Press
    say: Press your palms together gently.
    duration: 6s
outro: That is all.
"""
#: Each routine trips one check: (check, the step it names, the routine).
TRIPS = {
    "overrun": ("Press", HEAD + """\
cue: none
background: {{track: rain, volume: -20 dB}}
steps:
  - title: Rest
    say: Rest.
    hold: 2s
  - title: Press
    say: Press your palms together, spread your fingers wide, and hold them there while you breathe.
    duration: 2s
"""),
    "bed-under-speech": ("Listen", HEAD + """\
cue: none
background: {{track: rain, volume: -5 dB, duck: 0 dB, fade_in: 0s, fade_out: 1s}}
steps:
  - title: Listen
    say: Listen to the rain while you breathe slowly in and out.
    hold: 8s
"""),
    "limiter": ("Lift", HEAD + """\
cue: none
loudness: -10
steps:
  - title: Lift
    say: Lift your chin, and slowly sweep your fingers up along the jaw towards the ears.
    hold: 2s
"""),
    "clipping": ("Lift", HEAD + """\
cue: none
loudness: -6
steps:
  - title: Lift
    say: Lift your chin, and slowly sweep your fingers up along the jaw towards the ears.
    hold: 2s
"""),
    "silence": ("Hold", HEAD + """\
cue: chime
steps:
  - title: Start
    say: Close your eyes.
  - title: Hold
    say: Hold still and breathe.
    hold: 12s
  - title: End
    say: Open your eyes.
"""),
    # a countdown's ticks start on their seconds whatever plays: speech that runs into them is under a cue
    "cue-on-speech": ("Plank", HEAD + """\
cue: none
background: {{track: rain, volume: -20 dB}}
steps:
  - title: Plank
    say: Come onto your forearms, keep your back long and your hips level, and breathe steadily.
    duration: 6s
    countdown: 5
    count: false
"""),
}


def _write(folder, name: str, text: str):
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{name}.yaml"
    p.write_text(textwrap.dedent(text.format(title=name.replace("-", " ").title())))
    return p


def _built(tmp_path, name: str, text: str):
    src = _write(tmp_path / "src", name, text)
    [r] = build([src], BuildOptions(out_dir=tmp_path / "out"))
    assert r.status == "built", r.error
    return src, r


def _strict(src, out, *more: str):
    return CliRunner().invoke(cli, ["build", str(src), "-o", str(out), "--strict", *more])


# -- every check, tripped ------------------------------------------------------------------------------
@pytest.mark.parametrize("check", list(TRIPS))
def test_a_routine_made_to_trip_a_check_gets_its_warning_and_strict_fails(tmp_path, check):
    step, text = TRIPS[check]
    src, r = _built(tmp_path, check, text)
    found = [c for c in r.checks if c["check"] == check]
    assert found, r.checks
    f = found[0]
    assert f["chapter"] == step and f["hint"]
    assert f["time"] == checks.clock(f["at_ms"]) and len(f["time"]) == 5  # mm:ss
    # the same finding is a warning line naming the step, the time and the hint
    line = next(w for w in r.warnings if w.startswith(f"step {step!r} at {f['time']}:") and f["message"] in w)
    assert f["hint"] in line
    timeline = json.loads(r.mp3.with_suffix(".json").read_text())
    assert timeline["checks"] == r.checks  # the sidecar JSON carries them too
    # --strict: the session fails and exit 1; built afresh, nothing is written
    fresh = tmp_path / "strict"
    res = _strict(src, fresh)
    assert res.exit_code == 1, res.output
    assert "--strict" in res.output and step in res.output
    assert not list(fresh.glob("*.mp3"))


def _ffmpeg_ratio(r, tmp_path) -> float:
    """Speech over bed (dB) of a one-phrase session with an unducked bed, as ffmpeg's ebur128 measures it."""
    from conftest import stretches_loudness

    timeline = json.loads(r.mp3.with_suffix(".json").read_text())
    [speech] = [(e["start_ms"], e["end_ms"]) for e in timeline["events"] if e["kind"] == "speech"]
    mixed = stretches_loudness(r.mp3, [speech], tmp_path)  # the speech and the bed under it
    # the bed alone, where nothing is spoken (not ducked: the same level as under the speech)
    bed = stretches_loudness(r.mp3, [(speech[1] + 300, timeline["length_ms"] - 1500)], tmp_path)
    voice = 10 * np.log10(10 ** (mixed / 10) - 10 ** (bed / 10))  # uncorrelated: energies subtract
    return voice - bed


def test_the_bed_check_agrees_with_the_decoded_mp3(tmp_path):
    """The ratio the check reports (computed from the leveller's energies) is what ffmpeg measures."""
    _, r = _built(tmp_path, "bed-under-speech", TRIPS["bed-under-speech"][1])
    [f] = [c for c in r.checks if c["check"] == "bed-under-speech"]
    assert 0 < f["value"] < 6  # written 5 dB under the voice and not ducked (speech mode counts the bed in)
    assert abs(_ffmpeg_ratio(r, tmp_path) - f["value"]) < 1.5, f["value"]


def test_the_limiter_check_reports_the_cut_the_decoded_mp3_shows(tmp_path):
    """The limited session's peaks sit at the ceiling: the cut is real, and nothing in the MP3 clips."""
    _, r = _built(tmp_path, "clipping", TRIPS["clipping"][1])
    assert r.limiter_db is not None and r.limiter_db > checks.MAX_LIMITER_DB
    x = decode(r.mp3)
    assert np.max(np.abs(x)) < 0.99  # the limiter caught what reached full scale: the MP3 does not clip


def test_strict_on_an_unchanged_session_fails_on_what_its_checks_found_and_keeps_it(tmp_path):
    src, r = _built(tmp_path, "silence", TRIPS["silence"][1])
    before = r.mp3.read_bytes()
    res = _strict(src, tmp_path / "out")
    assert res.exit_code == 1 and "when it was built" in res.output, res.output
    assert r.mp3.read_bytes() == before  # the session built without --strict stays as it was


# -- a clean routine -----------------------------------------------------------------------------------
def test_a_clean_routine_trips_no_check_and_strict_passes(tmp_path):
    src, r = _built(tmp_path, "clean", CLEAN)
    assert r.checks == [] and r.warnings == []
    assert r.limiter_db is not None and r.limiter_db <= checks.MAX_LIMITER_DB
    res = CliRunner().invoke(cli, ["build", str(src), "-o", str(tmp_path / "strict"), "--strict", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("[\n"):])
    assert [d["status"] for d in data] == ["built"] and data[0]["checks"] == []


def test_build_json_lists_the_checks(tmp_path):
    src = _write(tmp_path / "src", "silence", TRIPS["silence"][1])
    res = CliRunner().invoke(cli, ["build", str(src), "-o", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("[\n"):])
    [d] = data
    assert d["status"] == "built" and [c["check"] for c in d["checks"]] == ["silence"]
    assert d["warnings"] == [checks.Finding(**{k: v for k, v in d["checks"][0].items() if k != "time"}).format()]


# -- a cue on speech: the planner lays cues and speech end to end, so the plan is made by hand --------------
def _speechlike(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    n = int(seconds * INTERNAL_RATE)
    t = np.arange(n) / INTERNAL_RATE
    x = rng.standard_normal(n) * np.maximum(0.0, np.sin(2 * np.pi * 4 * t)) ** 3
    return prepare_speech((np.clip(x / np.abs(x).max(), -1, 1) * 20000).astype(np.int16), INTERNAL_RATE)


def test_a_cue_that_lands_on_speech_is_found_in_the_render(tmp_path):
    clip = _speechlike(3.0)
    speech_ms = len(clip) * 1000 // INTERNAL_RATE
    chime = load_cue("chime", None)
    chapters = [Chapter("Intro", 0, 3000, kind="intro"), Chapter("Tap", 3000, 12000)]
    events = [Event("speech", 3000, 3000 + speech_ms, text="p", chapter=1),
              Event("cue", 4500, 4500 + len(chime) * 1000 // INTERNAL_RATE, sound="chime", chapter=1)]
    plan = Plan("t", 12000, chapters, events)
    audio = SessionAudio(plan, {"p": clip}, {"chime": chime}, None, OutputSettings())
    measured = render_audio(audio, tmp_path / "s.mp3")
    [f] = [f for f in measured.checks if f.check == checks.CUE_ON_SPEECH]
    assert (f.chapter, checks.clock(f.at_ms)) == ("Tap", "00:04")
    # moved after the speech, it is no finding; and the decoded MP3 shows the chime was on the speech
    late = Event("cue", 3000 + speech_ms + 300, 3000 + speech_ms + 300 + 1800, sound="chime", chapter=1)
    apart = SessionAudio(Plan("t", 12000, chapters, [events[0], late]), {"p": clip}, {"chime": chime}, None,
                         OutputSettings())
    assert [f.check for f in render_audio(apart, tmp_path / "apart.mp3").checks] == []
    on, off = decode(tmp_path / "s.mp3"), decode(tmp_path / "apart.mp3")
    assert rms_db(window(on, 4500, 5500)) > rms_db(window(off, 4500, 5500)) + 1


# -- the pure functions --------------------------------------------------------------------------------
def test_clock():
    assert [checks.clock(ms) for ms in (0, 999, 61_500, 3_599_999, 3_600_000)] == \
        ["00:00", "00:00", "01:01", "59:59", "1:00:00"]


def test_silence_counts_only_stretches_with_nothing_playing():
    chapters = [Chapter("A", 0, 30_000)]
    events = [Event("speech", 1000, 3000, text="a"), Event("cue", 14_000, 15_000, sound="chime"),
              Event("speech", 15_500, 17_000, text="b")]
    plan = Plan("t", 30_000, chapters, events)
    found = checks.silences(plan, has_bed=False)  # 3-14 s is 11 s; 15-15.5 s is short; 17-30 s is 13 s
    assert [(f.at_ms, f.value) for f in found] == [(3000, 11_000), (17_000, 13_000)]
    plan.events.append(Event("cue", 8000, 9000, sound="chime"))  # breaks the first stretch into two short ones
    assert [f.at_ms for f in checks.silences(plan, has_bed=False)] == [17_000]
    assert checks.silences(plan, has_bed=True) == []


def test_bed_ratio_from_energies():
    chapters = [Chapter("A", 0, 2000), Chapter("B", 2000, 4000)]
    events = [Event("speech", 0, 2000, text="a", chapter=0), Event("speech", 2000, 4000, text="b", chapter=1)]
    plan = Plan("t", 4000, chapters, events)
    voice = np.ones(40)
    bed = np.r_[np.full(20, 10 ** (-20 / 10)), np.full(20, 10 ** (-6 / 10))]
    [f] = checks.bed_under_speech(plan, voice, bed, 0.0)
    assert f.chapter == "B" and abs(f.value - 6.0) < 1e-6
    # a bed raised 5 dB by programme loudness brings A to 15 dB (still clear) and names the mode in the hint
    [a, b] = checks.bed_under_speech(plan, voice, bed * 10, 5.0, "programme")
    assert abs(a.value - 5.0) < 1e-6 and "loudness_mode: speech" in a.hint


def test_overruns_come_from_the_planner():
    plan = Plan("t", 9000, [Chapter("A", 1000, 9000, planned_ms=2000)], [],
                [PlanWarning("A", 2000, 8000, "speech needs 0:08.0 but the step lasts 0:02.0")])
    [f] = checks.overruns(plan)
    assert (f.check, f.chapter, f.at_ms, f.value) == ("overrun", "A", 3000, 6000.0)


def test_limit_stream_reports_its_deepest_cut_and_the_samples_over_full_scale():
    rate = INTERNAL_RATE
    x = np.zeros(rate * 12, dtype=np.float32)
    x[rate * 7 : rate * 7 + 2000] = 2.0 * np.sin(np.arange(2000) / 5.0)  # peaks at +6 dBFS, from 7 s
    stats = LimiterStats()
    ceiling = 0.5
    y = np.concatenate(list(limit_stream((x[i : i + rate * 5] for i in range(0, len(x), rate * 5)), ceiling,
                                         stats=stats)))
    assert len(y) == len(x) and np.max(np.abs(y)) <= ceiling + 1e-6
    assert abs(stats.max_reduction_db - 20 * np.log10(2.0 / ceiling)) < 0.1
    [(at, db)] = stats.cuts
    assert abs(at / rate - 7.0) < 0.01
    assert stats.overs and abs(stats.overs[0][0] / rate - 7.0) < 0.01
    assert sum(n for _, n in stats.overs) == int(np.sum(np.abs(x) >= 1.0))
    plan = Plan("t", 12_000, [Chapter("A", 0, 6000), Chapter("B", 6000, 12_000)], [])
    [lim] = checks.limiter(plan, stats)
    [clip] = checks.clipping(plan, stats)
    assert lim.chapter == clip.chapter == "B" and checks.clock(lim.at_ms) == "00:07"



@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["speech", "cue"]), st.integers(0, 20_000), st.integers(1, 6000)),
                max_size=30))
def test_cues_on_speech_finds_exactly_the_overlapping_pairs(spans):
    events = [Event(k, s, s + n, text="t" if k == "speech" else None, sound="chime" if k == "cue" else None)
              for k, s, n in spans]
    plan = Plan("t", 30_000, [Chapter("A", 0, 30_000)], events)
    speech = [e for e in events if e.kind == "speech"]
    want = sorted(c.start_ms for c in events if c.kind == "cue"
                  and any(s.start_ms < c.end_ms and c.start_ms < s.end_ms for s in speech))
    found = checks.cues_on_speech(plan)
    assert len(found) == len(want)
    for f in found:  # each points at a moment both play
        assert any(c.start_ms <= f.at_ms < c.end_ms for c in events if c.kind == "cue")
        assert any(s.start_ms <= f.at_ms < s.end_ms for s in speech)


def test_the_bed_check_works_unlevelled_too(tmp_path):
    """With `loudness: null` the leveller does not run: the check meters the voice alone for itself."""
    text = TRIPS["bed-under-speech"][1].replace("cue: none\n", "cue: none\nloudness: null\n")
    _, r = _built(tmp_path, "unlevelled", text)
    [f] = [c for c in r.checks if c["check"] == "bed-under-speech"]
    assert abs(_ffmpeg_ratio(r, tmp_path) - f["value"]) < 1.5, f["value"]


def test_programme_loudness_raising_the_bed_trips_the_bed_check_and_says_why(tmp_path):
    """The issue's complaint: a session of long holds levelled as a programme lifts the bed to the voice; with
    a light duck (-4 dB) that leaves the words under 10 dB clear of it."""
    holds = HEAD + "cue: none\nbackground: {{track: rain, volume: -20 dB, duck: -4 dB}}\nsteps:\n" + "".join(
        f"  - title: Step {i}\n    say: Rest your palms over your eyes, number {i}.\n    hold: 14s\n"
        for i in range(1, 4))
    lib = tmp_path / "lib"
    _write(lib, "holds", holds)
    (lib / "audiogen.yaml").write_text("output: {loudness_mode: programme}\n")
    [r] = build([lib], BuildOptions(out_dir=tmp_path / "out"))
    assert r.status == "built", r.error
    found = [c for c in r.checks if c["check"] == "bed-under-speech"]
    assert found and all("loudness_mode: speech" in c["hint"] for c in found)
    # the same routine in speech mode (the default) is clean
    (lib / "audiogen.yaml").unlink()
    [r] = build([lib], BuildOptions(out_dir=tmp_path / "out2"))
    assert r.status == "built" and r.checks == [], r.checks


@pytest.mark.slow
def test_on_a_cluster_the_checks_come_back_from_the_worker_and_strict_fails(tmp_path):
    src = _write(tmp_path / "src", "silence", TRIPS["silence"][1])
    [r] = build([src], BuildOptions(out_dir=tmp_path / "out", scheduler="local:1"))
    assert r.status == "built" and [c["check"] for c in r.checks] == ["silence"], r.error
    [r] = build([src], BuildOptions(out_dir=tmp_path / "strict", scheduler="local:1", strict=True))
    assert r.status == "failed" and "--strict" in r.error.format()
    assert not list((tmp_path / "strict").glob("*.mp3"))  # the worker's MP3 was put in place, then removed
    assert not list((tmp_path / "strict").glob("silence.*"))  # no timeline, cover or lyrics either


def test_pace_tones_under_breathing_words_are_not_a_cue_on_speech(tmp_path):
    """The tones play under the phase words by design; a countdown of ticks trips nothing either."""
    src, r = _built(tmp_path, "breathing", """\
        title: {title}
        background: {{track: rain, volume: -24 dB}}
        steps:
          - title: Breathe
            breathe: {{in: 2s, hold: 1s, out: 3s, rounds: 3, tones: true, words: true}}
          - title: Rest
            say: Rest now.
            duration: 12s
            countdown: 3
            count: false
        """)
    assert [c for c in r.checks if c["check"] == checks.CUE_ON_SPEECH] == [], r.checks
    timeline = json.loads(r.mp3.with_suffix(".json").read_text())
    roles = {e.get("role") for e in timeline["events"] if e["kind"] == "cue"}
    assert "tone" in roles
