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


def test_an_offline_build_makes_zero_connection_attempts(tmp_path):
    """The network blocked at the socket level in the build and every process it starts (a sitecustomize
    on PYTHONPATH): an offline Piper build must not even try, from any dependency."""
    pytest.importorskip("piper", reason="the Piper extra is not installed (pip install 'audiogen[piper]')")
    guard = tmp_path / "guard"
    guard.mkdir()
    log = tmp_path / "attempts.log"
    (guard / "sitecustomize.py").write_text(f'''
import socket

LOG = {str(log)!r}


def _refuse(what, *args):
    with open(LOG, "a") as f:
        f.write(f"{{what}} {{args!r}}\\n")
    raise OSError("network blocked by the test")


_connect = socket.socket.connect


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse("connect", address)
    return _connect(self, address)


socket.socket.connect = connect
socket.socket.connect_ex = lambda self, address: _refuse("connect_ex", address)
socket.getaddrinfo = lambda *a, **k: _refuse("getaddrinfo", *a)
socket.create_connection = lambda *a, **k: _refuse("create_connection", *a)
''')
    routine = tmp_path / "r.yaml"
    routine.write_text("title: Sealed\nvoice: {engine: auto}\ncue: chime\nbackground: rain\nsteps:\n"
                       + "".join(f"  - title: S{i}\n    say: Breathe slowly, number {i}.\n    hold: 1s\n"
                                 for i in range(6)))
    env = {**os.environ, "PYTHONPATH": f"{guard}{os.pathsep}{ROOT}", "AUDIOGEN_CACHE_DIR": str(tmp_path / "c")}
    env.pop("AUDIOGEN_OFFLINE", None)
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('example.org', 443)"],
                           env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and log.read_text().startswith("getaddrinfo")  # the guard works
    log.unlink()
    run = subprocess.run([sys.executable, "-m", "audiogen", "build", str(routine), "-o", str(tmp_path / "out"),
                          "--offline"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "narrated by piper" in run.stderr
    assert not log.exists(), log.read_text()
