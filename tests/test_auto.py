"""`auto` and explicit engines against gTTS's real code, Google's endpoint faked by `responses`."""

import json
import re

import pytest
import requests
import responses
from click.testing import CliRunner

from audiogen.cli import cli
from audiogen.voice import engines
from audiogen.voice.engines.gtts_engine import GttsEngine

from conftest import offline_engine

URL = re.compile(r"https://translate\.google\.[a-z.]+/_/TranslateWebserverUi/data/batchexecute")

ROUTINE = "title: {title}\ncue: none\nsteps:\n  - title: A\n    say: Shared phrase for every routine.\n" \
          "  - title: B\n    say: {own}\n"


@pytest.fixture(autouse=True)
def online(monkeypatch, tmp_path):
    """Network allowed for audiogen, but every request goes to `responses` (never the real network)."""
    monkeypatch.delenv("AUDIOGEN_OFFLINE", raising=False)
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))  # no clips from other tests
    slept = []
    monkeypatch.setitem(engines._instances, "gtts", GttsEngine(sleep=slept.append))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def lib(tmp_path, n=3, engine="auto"):
    d = tmp_path / "lib"
    d.mkdir()
    (d / "audiogen.yaml").write_text(f"album: Test\ndefaults:\n  voice: {{engine: {engine}}}\n")
    for i in range(n):
        (d / f"r{i}.yaml").write_text(ROUTINE.format(title=f"Routine {i}", own=f"Own words number {i}."))
    return d


def test_auto_uses_gtts_when_it_answers_and_shares_clips(tmp_path, online, audio_body):
    online.add(responses.POST, URL, body=audio_body)
    d = lib(tmp_path)
    res = CliRunner().invoke(cli, ["build", str(d)])
    assert res.exit_code == 0, res.output
    assert res.output.count("gtts (en (translate.google.com))  built") == 3
    # 4 distinct phrases across 3 routines (one shared): 4 requests, not 6
    assert len(online.calls) == 4
    assert all(c.request.req_kwargs["timeout"] == (3.0, 10.0) for c in online.calls)
    timeline = json.loads((d / "output" / "routine-0.json").read_text())
    assert timeline["engine"] == "gtts"


def test_auto_falls_back_to_espeak_when_google_is_unreachable(tmp_path, online):
    online.add(responses.POST, URL, body=requests.exceptions.ConnectionError("Failed to resolve host"))
    d = lib(tmp_path)
    res = CliRunner().invoke(cli, ["build", str(d)])
    assert res.exit_code == 0, res.output
    fallback = offline_engine()
    assert res.output.count(f"note: narrated by {fallback} (") == 1
    assert "because gtts: gTTS could not reach" in res.output
    assert len(online.calls) == 1  # the later routines do not wait for the network again
    assert json.loads((d / "output" / "routine-2.json").read_text())["engine"] == fallback


def test_auto_falls_back_after_bounded_retries_on_429(tmp_path, online):
    online.add(responses.POST, URL, status=429)
    d = lib(tmp_path, n=1)
    res = CliRunner().invoke(cli, ["build", str(d)])
    assert res.exit_code == 0, res.output
    assert "HTTP 429" in res.output and f"narrated by {offline_engine()}" in res.output
    assert len(online.calls) == 4  # first try + 3 retries


def test_explicit_gtts_failure_is_an_error_naming_engine_and_reason(tmp_path, online):
    online.add(responses.POST, URL, status=503)
    d = lib(tmp_path, n=1, engine="gtts")
    res = CliRunner().invoke(cli, ["build", str(d)])
    assert res.exit_code == 1
    assert "HTTP 503" in res.output and "gTTS" in res.output and "Traceback" not in res.output
    assert not list((d / "output").glob("*.mp3")) if (d / "output").exists() else True


def test_offline_never_contacts_the_network(tmp_path, online):
    d = lib(tmp_path, n=1)
    res = CliRunner().invoke(cli, ["build", str(d), "--offline"])
    assert res.exit_code == 0, res.output
    assert len(online.calls) == 0
    assert "offline mode" in res.output


def test_gtts_clip_is_cached_as_wav_and_not_fetched_again(tmp_path, online, audio_body):
    online.add(responses.POST, URL, body=audio_body)
    d = lib(tmp_path, n=1)
    assert CliRunner().invoke(cli, ["build", str(d)]).exit_code == 0
    first = len(online.calls)
    assert CliRunner().invoke(cli, ["build", str(d), "--force"]).exit_code == 0
    assert len(online.calls) == first  # everything came from the cache


def test_language_without_offline_voice_fails_clearly(tmp_path, online, write_routine):
    online.add(responses.POST, URL, body=requests.exceptions.ConnectionError("no route"))
    src = write_routine("title: X\nlanguage: xh\ncue: none\nsteps:\n  - title: A\n    say: Molo.\n")
    res = CliRunner().invoke(cli, ["build", str(src), "-o", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "no engine can narrate language 'xh'" in res.output
