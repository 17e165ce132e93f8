"""GttsEngine against gTTS's real code, with Google's endpoint faked by `responses` (never the network)."""

from __future__ import annotations

import base64
import re
import socket
import time

import gtts
import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from audiogen.dsp.ffmpeg import INTERNAL_RATE
from audiogen.routine.errors import EngineError, EngineUnavailable, NetworkError
from audiogen.voice.engines import Engine, VoiceRequest
from audiogen.voice.engines.gtts_engine import GttsEngine, _retry_after

from conftest import batchexecute_body

URL = re.compile(r"https://translate\.google\.[a-z.]+/_/TranslateWebserverUi/data/batchexecute")
HOST_URL = "https://translate.google.com/_/TranslateWebserverUi/data/batchexecute"
LONG_TEXT = (
    "Breathe in slowly through your nose, filling your lungs from the bottom up, and let your shoulders "
    "stay soft and relaxed. Hold the breath gently for a moment at the top, without any strain at all. "
    "Now breathe out through your mouth, slowly and completely, letting your whole body grow heavier."
)


#: Every test runs inside responses: an unregistered request fails instead of reaching the network.
pytestmark = pytest.mark.usefixtures("rsps")


@pytest.fixture
def engine(slept) -> GttsEngine:
    return GttsEngine(sleep=slept.append)


def seconds(clip) -> float:
    return len(clip.samples) / clip.rate


def connection_error(reason: Exception) -> requests.exceptions.ConnectionError:
    """What requests raises for a failed connect: ConnectionError(MaxRetryError(reason=...))."""
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/_/TranslateWebserverUi", reason))


# -- protocol and metadata -------------------------------------------------------------------------------


def test_protocol_and_metadata(engine):
    assert isinstance(engine, Engine)
    assert engine.name == "gtts" and engine.offline is False
    assert engine.version() == f"gtts-{gtts.__version__}"
    assert engine.unavailable_reason() is None
    assert engine.timeout == (3.0, 10.0) and engine.retries == 3


@pytest.mark.parametrize("value", ["1", "true", "TRUE"])
def test_offline_mode_is_unavailable_and_never_sends(rsps, engine, monkeypatch, value):
    monkeypatch.setenv("AUDIOGEN_OFFLINE", value)
    reason = engine.unavailable_reason()
    assert reason is not None and "offline" in reason and "network" in reason
    with pytest.raises(EngineUnavailable):
        engine.synthesize("Hello.", VoiceRequest())
    assert len(rsps.calls) == 0


def test_offline_env_false_is_available(engine, monkeypatch):
    monkeypatch.setenv("AUDIOGEN_OFFLINE", "0")
    assert engine.unavailable_reason() is None


def test_resolve_voice_default_and_accents(engine):
    assert engine.resolve_voice(VoiceRequest()) == "en (translate.google.com)"
    assert engine.resolve_voice(VoiceRequest("en", "co.uk")) == "en (translate.google.co.uk)"
    assert engine.resolve_voice(VoiceRequest("fr", "ca")) == "fr (translate.google.ca)"
    assert engine.resolve_voice(VoiceRequest("zh-cn")) == "zh-CN (translate.google.com)"
    assert engine.resolve_voice(VoiceRequest("en-GB")) == "en (translate.google.com)"


def test_unsupported_language_has_did_you_mean_hint(rsps, engine):
    with pytest.raises(EngineUnavailable) as info:
        engine.resolve_voice(VoiceRequest("englsh"))
    assert "englsh" in info.value.message
    assert "did you mean" in info.value.hint and "'en'" in info.value.hint
    with pytest.raises(EngineUnavailable) as info:
        engine.resolve_voice(VoiceRequest("german"))
    assert "'de'" in info.value.hint
    with pytest.raises(EngineUnavailable) as info:
        engine.synthesize("Hello.", VoiceRequest("qq"))
    assert info.value.hint
    assert len(rsps.calls) == 0


def test_bad_accent_tld_is_rejected_before_any_request(rsps, engine):
    with pytest.raises(EngineUnavailable) as info:
        engine.synthesize("Hello.", VoiceRequest("en", "com/evil?x="))
    assert "co.uk" in info.value.hint
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("text", ["", "   ", "... !"])
def test_nothing_to_say_is_an_engine_error_without_requests(rsps, engine, text):
    with pytest.raises(EngineError):
        engine.synthesize(text, VoiceRequest())
    assert len(rsps.calls) == 0


# -- success -------------------------------------------------------------------------------------------


def test_success_one_second_at_speed_one(rsps, engine, audio_body, slept):
    rsps.add(responses.POST, URL, body=audio_body, status=200)
    clip = engine.synthesize("Breathe in.", VoiceRequest())
    assert clip.rate == INTERNAL_RATE
    assert clip.samples.dtype.name == "int16" and clip.samples.ndim == 1
    assert seconds(clip) == pytest.approx(1.0, abs=0.1)
    assert abs(int(clip.samples.astype("int32").max())) > 1000  # real audio, not silence
    assert len(rsps.calls) == 1 and engine.requests_made == 1 and slept == []
    call = rsps.calls[0]
    assert call.request.url == HOST_URL
    assert call.request.req_kwargs["timeout"] == (3.0, 10.0)  # unreachable service noticed within 3 s
    body = requests.utils.unquote(call.request.body)
    assert "jQ1olc" in body and "Breathe in." in body and '\\"en\\",null' in body  # never the slow flag


def test_speed_two_halves_duration_keeping_pitch(rsps, engine, audio_body):
    rsps.add(responses.POST, URL, body=audio_body, status=200)
    clip = engine.synthesize("Breathe out.", VoiceRequest(speed=2.0))
    assert seconds(clip) == pytest.approx(0.5, abs=0.08)
    body = requests.utils.unquote(rsps.calls[0].request.body)
    assert '\\"en\\",null' in body  # speed is done by atempo, not gTTS's slow flag


def test_long_text_one_request_per_chunk(rsps, engine, audio_body):
    rsps.add(responses.POST, URL, body=audio_body, status=200)
    expected = len(gtts.gTTS(LONG_TEXT, lang_check=False).get_bodies())  # gTTS's own ~100-char split
    assert expected >= len(LONG_TEXT) // 100 >= 2
    clip = engine.synthesize(LONG_TEXT, VoiceRequest())
    assert len(rsps.calls) == expected == engine.requests_made
    assert seconds(clip) == pytest.approx(expected * 1.0, abs=0.1 * expected)
    sent = " ".join(requests.utils.unquote(c.request.body) for c in rsps.calls)
    for word in ("Breathe", "Hold", "heavier"):
        assert word in sent


def test_tld_routes_to_that_google_domain(rsps, engine, audio_body):
    rsps.add(responses.POST, URL, body=audio_body, status=200)
    engine.synthesize("Cheerio.", VoiceRequest("en", "co.uk"))
    assert rsps.calls[0].request.url.startswith("https://translate.google.co.uk/")


# -- retries -------------------------------------------------------------------------------------------


def test_429_then_success_honours_retry_after(rsps, engine, audio_body, slept):
    rsps.add(responses.POST, URL, status=429, headers={"Retry-After": "2"})
    rsps.add(responses.POST, URL, body=audio_body, status=200)
    clip = engine.synthesize("Again.", VoiceRequest())
    assert seconds(clip) == pytest.approx(1.0, abs=0.1)
    assert len(rsps.calls) == 2 and engine.requests_made == 2
    assert slept == [2.0]


def test_429_forever_is_network_error_after_all_attempts(rsps, engine, slept):
    rsps.add(responses.POST, URL, status=429, headers={"Retry-After": "120"})
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Again.", VoiceRequest())
    assert len(rsps.calls) == engine.retries + 1 == 4
    assert "HTTP 429 Too Many Requests after 4 attempts" in info.value.message
    assert "Google" in info.value.message
    assert slept == [engine.max_delay] * 3  # Retry-After capped


def test_retry_after_forms():
    assert _retry_after("7") == 7.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: retry now
    assert _retry_after("soon") is None and _retry_after(None) is None


def test_429_without_retry_after_uses_jittered_backoff(rsps, slept):
    engine = GttsEngine(retries=4, backoff=0.5, max_delay=1.5, sleep=slept.append)
    rsps.add(responses.POST, URL, status=429)
    with pytest.raises(NetworkError):
        engine.synthesize("Again.", VoiceRequest())
    assert len(rsps.calls) == 5 and len(slept) == 4
    for i, delay in enumerate(slept):
        assert 0.0 <= delay <= min(1.5, 0.5 * 2**i)


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_retried_then_network_error(rsps, engine, slept, status):
    rsps.add(responses.POST, URL, status=status)
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert len(rsps.calls) == 4 and len(slept) == 3
    assert f"HTTP {status}" in info.value.message and "after 4 attempts" in info.value.message


def test_503_once_then_success(rsps, engine, audio_body, slept):
    rsps.add(responses.POST, URL, status=503)
    rsps.add(responses.POST, URL, body=audio_body, status=200)
    assert seconds(engine.synthesize("Hello.", VoiceRequest())) == pytest.approx(1.0, abs=0.1)
    assert len(rsps.calls) == 2 and len(slept) == 1


def test_retry_resends_only_the_failed_chunk(rsps, engine, audio_body):
    expected = len(gtts.gTTS(LONG_TEXT, lang_check=False).get_bodies())
    rsps.add(responses.POST, URL, body=audio_body, status=200)
    rsps.add(responses.POST, URL, status=503)
    rsps.add(responses.POST, URL, body=audio_body, status=200)
    clip = engine.synthesize(LONG_TEXT, VoiceRequest())
    assert len(rsps.calls) == expected + 1
    assert rsps.calls[1].request.body == rsps.calls[2].request.body  # the same chunk, re-sent
    assert seconds(clip) == pytest.approx(expected * 1.0, abs=0.1 * expected)


def test_400_is_not_retried(rsps, engine, slept):
    rsps.add(responses.POST, URL, status=400)
    with pytest.raises(EngineError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert not isinstance(info.value, NetworkError)
    assert "HTTP 400" in info.value.message
    assert len(rsps.calls) == 1 and slept == []


# -- network failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), "connect timeout"),
        (requests.exceptions.ReadTimeout("read timed out"), "read timeout"),
    ],
)
def test_timeouts_are_retried_then_network_error(rsps, engine, slept, exc, words):
    rsps.add(responses.POST, URL, body=exc)
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert words in info.value.message and "after 4 attempts" in info.value.message
    assert len(rsps.calls) == 4 and len(slept) == 3


def test_dns_failure_fails_fast(rsps, engine, slept, monkeypatch):
    """Fast = one bounded request and no waiting at all (counted, not timed): no retry, no backoff through the
    engine's sleep, no time.sleep anywhere else (gTTS, requests, urllib3), and the request had a timeout."""
    gaierror = socket.gaierror(-3, "Temporary failure in name resolution")
    rsps.add(responses.POST, URL, body=connection_error(NameResolutionError("translate.google.com", None,
                                                                            gaierror)))
    other_sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", other_sleeps.append)
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert "DNS" in info.value.message and "Google" in info.value.message
    assert len(rsps.calls) == 1 and slept == [] and other_sleeps == []  # no network: nothing to wait for
    assert rsps.calls[0].request.req_kwargs["timeout"] == engine.timeout == (3.0, 10.0)


def test_plain_connection_error_fails_fast(rsps, engine, slept):
    rsps.add(responses.POST, URL, body=requests.exceptions.ConnectionError(
        "[Errno 101] Network is unreachable"))
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert "unreachable" in info.value.message
    assert len(rsps.calls) == 1 and slept == []


def test_connection_refused_is_retried(rsps, engine, slept):
    refused = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    rsps.add(responses.POST, URL, body=connection_error(refused))
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert "connection refused" in info.value.message
    assert len(rsps.calls) == 4 and len(slept) == 3


def test_unregistered_url_never_reaches_the_network(rsps, engine):
    # responses refuses anything not registered: proves the suite cannot leak requests.
    with pytest.raises(NetworkError):
        engine.synthesize("Hello.", VoiceRequest())
    assert len(rsps.calls) == 4


# -- garbage payloads --------------------------------------------------------------------------------------


def test_200_without_audio_line_is_network_error(rsps, engine, slept):
    rsps.add(responses.POST, URL, body=")]}'\n\n[[\"wrb.fr\",\"MkEWBc\",null]]\n", status=200)
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert "garbage" in info.value.message
    assert len(rsps.calls) == 4 and len(slept) == 3


def test_200_with_malformed_audio_line_is_network_error(rsps, engine):
    rsps.add(responses.POST, URL, body='[["wrb.fr","jQ1olc",null,null,"generic"]]\n', status=200)
    with pytest.raises(NetworkError):
        engine.synthesize("Hello.", VoiceRequest())
    assert len(rsps.calls) == 4


def test_200_with_binary_body_is_network_error(rsps, engine):
    rsps.add(responses.POST, URL, body=b"\xff\xfe jQ1olc \x80\x81", status=200)
    with pytest.raises(NetworkError):
        engine.synthesize("Hello.", VoiceRequest())


def test_truncated_base64_is_network_error(rsps, engine, mp3):
    b64 = base64.b64encode(mp3).decode("ascii")
    rsps.add(responses.POST, URL, body=batchexecute_body(b64[: len(b64) // 2 + 1]), status=200)
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert "garbage" in info.value.message
    assert len(rsps.calls) == 4


def test_base64_of_non_audio_does_not_decode(rsps, engine):
    junk = base64.b64encode(b"<html>not audio</html>" * 40).decode("ascii")
    rsps.add(responses.POST, URL, body=batchexecute_body(junk), status=200)
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert "does not decode" in info.value.message
    assert len(rsps.calls) == 4


def test_garbage_once_then_success(rsps, engine, audio_body):
    rsps.add(responses.POST, URL, body=batchexecute_body("AAAA"), status=200)
    rsps.add(responses.POST, URL, body=audio_body, status=200)
    assert seconds(engine.synthesize("Hello.", VoiceRequest())) == pytest.approx(1.0, abs=0.1)
    assert len(rsps.calls) == 2


def test_retries_zero_means_single_attempt(rsps, slept):
    engine = GttsEngine(retries=0, sleep=slept.append)
    rsps.add(responses.POST, URL, status=503)
    with pytest.raises(NetworkError) as info:
        engine.synthesize("Hello.", VoiceRequest())
    assert "after 1 attempt" in info.value.message
    assert len(rsps.calls) == 1 and slept == []


def test_a_proxy_failure_is_summarised_naming_the_proxy(engine, monkeypatch, rsps):
    """requests' ProxyError is a chain of urllib3 reprs: the user sees which proxy failed and what to do."""
    monkeypatch.delenv("AUDIOGEN_OFFLINE", raising=False)
    rsps.add_passthru("https://translate.google.com")  # a real request, through a real (refusing) proxy
    with socket.socket() as s:  # a port with nothing listening: the proxy refuses
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
    with pytest.raises(NetworkError) as e:
        engine.synthesize("Hello.", VoiceRequest("en"))
    text = e.value.format()
    assert f"proxy http://127.0.0.1:{port}" in text and "refused" in text
    assert "HTTPSConnectionPool" not in text and "..." not in text and "object at 0x" not in text
    assert "HTTPS_PROXY" in (e.value.hint or "")


def test_hints_never_suggest_a_flag_that_fails_with_the_engine_chosen(engine, monkeypatch):
    """--engine gtts with --offline is an error: the hint after a network failure offers offline voices."""
    from audiogen.voice.engines import gtts_engine

    for hint in (gtts_engine._OFFLINE_HINT,):
        assert "render with --offline" not in hint and "--engine piper" in hint
