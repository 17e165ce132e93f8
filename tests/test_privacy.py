"""Private by default: one offline switch for every engine, and no dependency writes telemetry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audiogen.routine.errors import EngineUnavailable
from audiogen.voice.engines.gtts_engine import GttsEngine
from audiogen.voice.privacy import offline_mode

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "TRUE", " Yes "])
def test_every_spelling_of_offline_stops_the_gtts_engine_itself(monkeypatch, value):
    """Not only the narrator: a library caller's get_engine('gtts') must refuse too."""
    monkeypatch.setenv("AUDIOGEN_OFFLINE", value)
    assert offline_mode()
    engine = GttsEngine()
    assert "offline" in (engine.unavailable_reason() or "")
    with pytest.raises(EngineUnavailable):
        engine.synthesize("Hello.", engine_voice())


@pytest.mark.parametrize("value", ["", "0", "no", "off", "false"])
def test_other_values_are_online(monkeypatch, value):
    monkeypatch.setenv("AUDIOGEN_OFFLINE", value)
    assert not offline_mode()


def engine_voice():
    from audiogen.voice.engines import VoiceRequest

    return VoiceRequest("en")


def test_a_piper_build_writes_nothing_outside_its_output_and_cache(tmp_path):
    """onnxruntime queues telemetry under ~/.cache/Microsoft unless told not to: a whole build, with HOME
    in a temp folder, must leave files only in the output and cache folders."""
    pytest.importorskip("piper", reason="the Piper extra is not installed (pip install 'audiogen[piper]')")
    home, out, cache = tmp_path / "home", tmp_path / "out", tmp_path / "cache"
    home.mkdir()
    routine = tmp_path / "r.yaml"
    routine.write_text("title: Private\nvoice: {engine: piper}\ncue: none\nsteps:\n"
                       "  - title: One\n    say: Rest your hands on your cheeks.\n    hold: 1s\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORT_")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), AUDIOGEN_CACHE_DIR=str(cache),
               AUDIOGEN_OFFLINE="1", PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "audiogen", "build", str(routine), "-o", str(out), "-q"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert list(out.glob("*.mp3")) and list(cache.rglob("*.wav"))
    stray = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents and cache not in p.parents
             and p != routine]
    assert not stray, sorted(map(str, stray))
