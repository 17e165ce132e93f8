"""`audiogen say`: one phrase written or played, with a routine's voice and pronounce: rules."""

from __future__ import annotations

import os
import stat
import wave

from click.testing import CliRunner

from audiogen.cli import cli

from conftest import decode


def test_writes_an_mp3_with_the_chosen_voice(tmp_path):
    out = tmp_path / "phrase.mp3"
    res = CliRunner().invoke(cli, ["say", "Breathe in slowly.", "--voice", "espeak:en-gb", "--speed", "1.2",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert f"wrote {out} (espeak (en-gb))" in res.output
    audio = decode(out)
    assert 0.5 < len(audio) / 44100 < 5 and float(abs(audio).max()) > 0.1


def test_uses_the_routines_pronounce_rules_and_library_defaults(tmp_path):
    (tmp_path / "audiogen.yaml").write_text("defaults:\n  voice: {engine: espeak}\n  pronounce:\n    tomato: tomahto\n")
    r = tmp_path / "r.yaml"
    r.write_text("title: T\npronounce:\n  gua sha: gwah shah\nsteps:\n  - title: A\n    say: hi\n")
    out = tmp_path / "p.wav"
    res = CliRunner(mix_stderr=False).invoke(cli, ["say", "Gua sha and a tomato.", "--routine", str(r),
                                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "spoken as: gwah shah and a tomahto." in res.stderr and "espeak (en-us)" in res.stdout
    with wave.open(str(out)) as w:
        assert w.getnchannels() == 1 and w.getnframes() > 44100 // 2


def test_without_a_player_it_writes_a_temp_file_and_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    res = CliRunner().invoke(cli, ["say", "Hello there.", "--voice", "espeak"])
    assert res.exit_code == 0, res.output
    assert "no audio player found" in res.output
    path = res.output.split("wrote ")[1].split(" (")[0]
    assert path.endswith(".wav") and os.path.getsize(path) > 10_000


def test_plays_with_the_first_player_on_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    player = bin_dir / "aplay"  # a stand-in player: records the file it was given
    player.write_text(f"#!/bin/sh\nfor a; do last=$a; done\n/bin/cp \"$last\" {tmp_path}/played.wav\n")
    player.chmod(player.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    res = CliRunner().invoke(cli, ["say", "Hello there.", "--voice", "espeak"])
    assert res.exit_code == 0, res.output
    assert "played (espeak (en-us))" in res.output
    with wave.open(str(tmp_path / "played.wav")) as w:
        assert w.getnframes() > 10_000


def test_bad_output_and_unknown_voice_are_clear_errors(tmp_path):
    res = CliRunner().invoke(cli, ["say", "Hi.", "-o", str(tmp_path / "x.ogg")])
    assert res.exit_code == 1 and "say writes .wav or .mp3" in res.output
    res = CliRunner().invoke(cli, ["say", "Hi.", "--voice", "espeak:xx-nope", "-o", str(tmp_path / "x.wav")])
    assert res.exit_code == 1 and "espeak has no voice 'xx-nope'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.wav").exists()
