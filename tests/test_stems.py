"""output.stems: the voice (with its cues) and the bed alone, as 32-bit float WAV beside the mix.

The stems are taken from the same render as the mix, at the gains the mix has them: voice + bed is the
mix before the limiter (the limiter only turns peaks down, and works on the sum, so it has no stem).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from audiogen.audio.leveling import level_session
from audiogen.audio.mix import mix_blocks, ms_to_samples
from audiogen.audio.session import Outputs, SessionAudio, cue_samples, load_bed, render_outputs
from audiogen.build import BuildOptions, build
from audiogen.dsp.ffmpeg import ffmpeg_exe
from audiogen.plan.planner import plan_routine, spoken_texts
from audiogen.routine.library import OutputSettings
from audiogen.routine.loader import parse_routine

from conftest import RATE, decode

ROUTINE = """\
title: Stem Session
voice: {engine: espeak}
cue: chime
background: {track: rain, volume: -18 dB, fade_in: 1s, fade_out: 2s}
intro: Welcome to the stems.
steps:
  - title: Warm up
    say: Rub your palms together.
    hold: 3s
  - title: Sweep
    say: Sweep out to the temples.
    duration: 5s
outro: That is all.
"""


def decode_float(path: Path) -> np.ndarray:
    """A WAV decoded by ffmpeg as 32-bit float (no rounding to 16 bits)."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "f32le", "-"], capture_output=True,
                         check=True).stdout
    return np.frombuffer(out, dtype="<f4")


def session_audio(settings: OutputSettings) -> SessionAudio:
    routine = parse_routine(ROUTINE)
    clips = {}
    for i, text in enumerate(spoken_texts(routine)):
        n = int(RATE * (0.7 + 0.1 * (i % 5)))
        clips[text] = (np.sin(np.arange(n) * 2 * np.pi * (200 + 30 * i) / RATE) * 20000).astype(np.int16)
    cues = cue_samples(routine)
    plan = plan_routine(routine, lambda t: int(np.ceil(len(clips[t]) * 1000 / RATE)),
                        lambda s: int(np.ceil(len(cues[s]) * 1000 / RATE)))
    return SessionAudio(plan, clips, cues, load_bed(routine), settings)


@pytest.mark.parametrize("loudness", [None, -16.0])
def test_stems_summed_are_the_mix_before_limiting(tmp_path, loudness):
    audio = session_audio(OutputSettings(loudness=loudness))
    stems = {"voice": tmp_path / "v.wav", "bed": tmp_path / "b.wav"}
    render_outputs(audio, Outputs({"mp3": tmp_path / "mix.mp3"}, [], None, stems))
    voice, bed = decode_float(stems["voice"]), decode_float(stems["bed"])
    total = ms_to_samples(audio.plan.length_ms)
    assert len(voice) == len(bed) == total
    gain = bed_gain = 0.0
    if loudness is not None:
        level = level_session(audio.plan, audio.load, audio.bed, loudness, mode="speech")
        gain, bed_gain = level.gain_db, level.bed_gain_db
        assert abs(gain) > 0.1  # the gains are really there to be carried
    unlimited = np.concatenate(list(mix_blocks(audio.plan, audio.load, audio.bed, gain_db=gain,
                                               bed_gain_db=bed_gain)))
    assert np.max(np.abs(voice + bed - unlimited)) < 1e-5
    # and the limited mix the MP3 carries is that sum, peaks aside
    mix = decode(tmp_path / "mix.mp3")
    n = min(len(mix), total)
    s = (voice + bed)[:n].astype(np.float64)
    assert 10 * np.log10(np.sum(s ** 2) / np.sum((s - mix[:n]) ** 2)) > 10


def test_the_voice_stem_is_silent_between_sounds_and_the_bed_stem_is_not(tmp_path):
    audio = session_audio(OutputSettings(loudness=None))
    stems = {"voice": tmp_path / "v.wav", "bed": tmp_path / "b.wav"}
    render_outputs(audio, Outputs({"mp3": tmp_path / "mix.mp3"}, [], None, stems))
    voice, bed = decode_float(stems["voice"]), decode_float(stems["bed"])
    sounding = np.zeros(len(voice), dtype=bool)
    for e in audio.plan.events:
        if e.kind in ("speech", "cue"):
            sounding[ms_to_samples(e.start_ms) : ms_to_samples(e.end_ms) + 10] = True
    quiet = ~sounding
    quiet[: RATE * 2] = False  # the bed's fade-in
    assert quiet.sum() > RATE
    assert np.max(np.abs(voice[quiet])) == 0.0
    assert np.sqrt(np.mean(bed[quiet] ** 2)) > 0.003  # the bed at about -40 dBFS RMS
    assert np.max(np.abs(voice[sounding])) > 0.1


def test_a_build_with_stems_writes_them_beside_the_mix(tmp_path):
    (tmp_path / "r.yaml").write_text(ROUTINE)
    (tmp_path / "audiogen.yaml").write_text("output:\n  stems: true\n")
    out = tmp_path / "out"
    [r] = build([tmp_path], BuildOptions(out_dir=out))
    assert r.status == "built", r.error
    t = json.loads((out / "stem-session.json").read_text("utf-8"))
    assert t["stems"] == {"voice": "stem-session.voice.wav", "bed": "stem-session.bed.wav"}
    listing = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(out / "stem-session.voice.wav")],
                             capture_output=True, text=True).stderr
    assert "pcm_f32le" in listing and "44100 Hz, mono" in listing
    for name in t["stems"].values():
        assert len(decode_float(out / name)) == ms_to_samples(t["length_ms"])
    assert 'href="stem-session.voice.wav"' in (out / "index.html").read_text("utf-8")
