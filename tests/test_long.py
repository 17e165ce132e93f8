"""A 60-minute session of fixed-length steps ends within 50 ms of its plan (no drift)."""

import json

import pytest

from audiogen.build import BuildOptions, build

from conftest import RATE, decode, rms_db, window


@pytest.mark.slow
def test_hour_long_session_has_no_drift(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    # a cheaper encoding keeps this test quick; timing does not depend on it
    (lib / "audiogen.yaml").write_text("output: {bitrate: 32k, sample_rate: 22050, loudness: null}\n")
    steps = "".join(
        f"  - title: Step {i}\n    say: Step {i % 7}.\n    duration: 1m\n" for i in range(60)
    )
    (lib / "hour.yaml").write_text(
        "title: Hour\nvoice: {engine: espeak}\ncue: tick\nbackground: {track: drone, volume: -24 dB}\n"
        "steps:\n" + steps
    )
    [r] = build([lib], BuildOptions())
    assert r.status == "built", r.error
    timeline = json.loads(r.mp3.with_suffix(".json").read_text())
    audio = decode(r.mp3)
    assert abs(len(audio) * 1000 / RATE - timeline["length_ms"]) < 50
    steps = [c for c in timeline["chapters"] if c["title"].startswith("Step")]
    assert len(steps) == 60 and all(c["end_ms"] - c["start_ms"] == 60000 for c in steps[1:-1])
    # the last step's words are where the plan put them: no drift after an hour
    last = [e for e in timeline["events"] if e["kind"] == "speech"][-1]
    assert rms_db(window(audio, last["start_ms"] + 50, last["end_ms"] - 50)) > \
        rms_db(window(audio, last["end_ms"] + 3000, last["end_ms"] + 6000)) + 6
    # each step starts with its tick cue: find the onsets in the decoded audio, compare with the plan
    import numpy as np

    for c in (steps[1], steps[30], steps[59]):
        seg = window(audio, c["start_ms"] - 200, c["start_ms"] + 200)
        onset_ms = c["start_ms"] - 200 + np.flatnonzero(np.abs(seg) > 0.1)[0] * 1000 / RATE
        assert abs(onset_ms - c["start_ms"]) < 50, (c, onset_ms)
