"""Google Text-to-Speech through gTTS.

Privacy: gTTS sends every line of narration text to Google (translate.google.<tld>) over the network.
Nothing is sent in offline mode (`--offline` / `AUDIOGEN_OFFLINE=1`), where this engine reports itself
unavailable.

gTTS splits text into ~100-character chunks and POSTs one request per chunk; this engine does the same
split (with gTTS's own tokenizer) and drives one real `gTTS` object per chunk so that a throttled or
failed chunk is retried on its own, without re-sending the chunks already fetched. Every failure is
mapped to our errors: `NetworkError` when Google cannot be reached or keeps failing (so `auto` may fall
back to an offline engine), `EngineUnavailable` for an unsupported language or accent, and plain
`EngineError` when Google rejects the request outright (a 4xx other than 429).
"""

from __future__ import annotations

import difflib
import email.utils
import errno
import io
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE, decode_bytes
from audiogen.routine.errors import EngineError, EngineUnavailable, NetworkError, SoundError
from audiogen.voice.engines.base import Clip, VoiceRequest
from audiogen.voice.privacy import offline_mode
from audiogen.voice.threads import RateLimiter

#: Environment variable that forbids every network access when "1"/"true".
OFFLINE_REASON = "offline mode (--offline / AUDIOGEN_OFFLINE=1) never contacts the network"

#: A Google top-level domain ("com", "co.uk", "com.au"): gTTS's accent selector and part of the URL.
_TLD_RE = re.compile(r"^[a-z]{2,3}(\.[a-z]{2,3})?$")
_TLD_EXAMPLES = "com, co.uk, com.au, ca, co.in, ie, co.za, com.br, pt, es, com.mx, fr"
#: gTTS's documented localized accents (docs/module.rst, gTTS 2.5.x): (tld, language, accent). Google
#: picks the accent from the domain; other Google domains work too, unlisted. Mandarin ignores the tld.
ACCENTS: tuple[tuple[str, str, str], ...] = (
    ("com", "en", "English (United States), the default"),
    ("us", "en", "English (United States)"),
    ("co.uk", "en", "English (United Kingdom)"),
    ("com.au", "en", "English (Australia)"),
    ("ca", "en", "English (Canada)"),
    ("co.in", "en", "English (India)"),
    ("ie", "en", "English (Ireland)"),
    ("co.za", "en", "English (South Africa)"),
    ("com.ng", "en", "English (Nigeria)"),
    ("ca", "fr", "French (Canada)"),
    ("fr", "fr", "French (France)"),
    ("com.br", "pt", "Portuguese (Brazil)"),
    ("pt", "pt", "Portuguese (Portugal)"),
    ("com.mx", "es", "Spanish (Mexico)"),
    ("es", "es", "Spanish (Spain)"),
    ("us", "es", "Spanish (United States)"),
)
#: HTTP requests to Google a second, at most, over all threads (bursts of up to REQUEST_BURST) ...
REQUESTS_PER_S = 4.0
REQUEST_BURST = 4
#: ... from this many phrases narrated at once (the Narrator's thread pool).
MAX_CONCURRENCY = 3
#: Peak (int16) under which decoded audio counts as silence (-60 dBFS): Google never answers a phrase with
#: silence, so such a payload is garbage and must not be cached as the phrase's clip.
SILENT_PEAK = 33
#: What to do instead, never a flag that fails with the engine the user chose (--offline with --engine gtts).
_OFFLINE_VOICE = "narrate with an offline voice: --engine piper (or espeak), or engine: auto, which falls back"
_OFFLINE_HINT = f"check the network connection and try again later, or {_OFFLINE_VOICE}"

# Substrings of socket errors that mean "this machine has no usable network": retrying will not help.
_NO_NETWORK_MARKERS = {
    "name or service not known": "DNS lookup failed (no network?)",
    "temporary failure in name resolution": "DNS lookup failed (no network?)",
    "nodename nor servname": "DNS lookup failed (no network?)",
    "getaddrinfo failed": "DNS lookup failed (no network?)",
    "no address associated with hostname": "DNS lookup failed (no network?)",
    "failed to resolve": "DNS lookup failed (no network?)",
    "network is unreachable": "network is unreachable",
    "no route to host": "network is unreachable",
}


def _import_gtts():
    try:
        import gtts
        import gtts.lang
    except ImportError as exc:  # pragma: no cover - gTTS is a hard dependency
        raise EngineUnavailable(
            f"the gtts package cannot be imported ({exc})", hint="pip install 'gTTS>=2.5.4'"
        ) from None
    return gtts


class _Attempt(Exception):
    """One failed HTTP attempt, classified (internal; never leaves this module)."""

    def __init__(self, reason: str, *, retry: bool, network: bool = True, retry_after: float | None = None,
                 hint: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.network = network
        self.retry_after = retry_after
        self.hint = hint


class GttsEngine:
    """Google Translate's text-to-speech voice (online, needs network, sends text to Google)."""

    name = "gtts"
    offline = False
    #: Many phrases are fetched on a few threads (network-bound), never on worker processes.
    parallel = "threads"
    max_concurrency = MAX_CONCURRENCY

    def __init__(
        self,
        *,
        timeout: float | tuple[float, float] = (3.0, 10.0),
        retries: int = 3,
        backoff: float = 0.5,
        max_delay: float = 8.0,
        sleep: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        #: requests timeout: (connect, read) seconds, so an unreachable service is noticed within 3 s.
        self.timeout = timeout
        #: Attempts after the first, per ~100-character chunk.
        self.retries = max(0, int(retries))
        #: Base of the exponential backoff (full jitter) in seconds.
        self.backoff = float(backoff)
        #: Upper bound of any single wait, including a server's Retry-After.
        self.max_delay = float(max_delay)
        self.sleep = sleep
        self._rng = rng or random.Random()
        #: HTTP requests attempted so far (one per chunk and attempt).
        self.requests_made = 0
        #: Every request (first tries and retries, from every thread) takes a token first.
        self.limiter = limiter or RateLimiter(REQUESTS_PER_S, REQUEST_BURST)
        self._count_lock = threading.Lock()

    # -- protocol ---------------------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        if offline_mode():
            return OFFLINE_REASON
        try:
            _import_gtts()
        except EngineUnavailable as exc:
            return exc.message
        return None

    def version(self) -> str:
        return f"gtts-{_import_gtts().__version__}"

    def describe(self) -> dict:
        """For `audiogen voices` (no network): gTTS's languages and its documented accents (Google domains)."""
        langs: dict[str, str] = _import_gtts().lang.tts_langs()
        return {
            "languages": sorted(langs),
            "language_names": dict(sorted(langs.items())),
            "voices": [{"id": tld, "language": lang, "description": accent, "default": tld == "com"}
                       for tld, lang, accent in ACCENTS],
            "custom": "voice.name is the Google domain (tld) that picks the accent; com is the default",
            "privacy": "sends every phrase to Google (translate.google.<tld>)",
        }

    def resolve_voice(self, voice: VoiceRequest) -> str:
        lang, tld = self._resolve(voice)
        return f"{lang} (translate.google.{tld})"

    def synthesize(self, text: str, voice: VoiceRequest) -> Clip:
        if offline_mode():
            raise EngineUnavailable(f"gtts: {OFFLINE_REASON}", hint="use an offline engine such as espeak")
        lang, tld = self._resolve(voice)
        speed = float(voice.speed)
        if not 0.5 <= speed <= 2.0:
            raise EngineError(f"gtts: speed {speed:g} is outside 0.5..2.0")
        parts = self._chunks(text, lang, tld)
        pieces = [self._fetch_chunk(part, lang, tld, speed) for part in parts]
        samples = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        return Clip(samples, INTERNAL_RATE)

    # -- voice resolution -------------------------------------------------------------------------

    def _resolve(self, voice: VoiceRequest) -> tuple[str, str]:
        gtts = _import_gtts()
        langs: dict[str, str] = gtts.lang.tts_langs()
        lang = self._language((voice.language or "en").strip(), langs)
        tld = (voice.name or "com").strip().lower().lstrip(".")
        if tld.startswith("translate.google."):
            tld = tld[len("translate.google."):]
        if not _TLD_RE.match(tld):
            raise EngineUnavailable(
                f"gtts: voice {voice.name!r} is not a Google top-level domain",
                hint=f"gTTS voices are accents chosen by Google domain, e.g. {_TLD_EXAMPLES}",
            )
        return lang, tld

    @staticmethod
    def _language(requested: str, langs: dict[str, str]) -> str:
        if requested in langs:
            return requested
        by_lower = {code.lower(): code for code in langs}
        key = requested.lower().replace("_", "-")
        if key in by_lower:
            return by_lower[key]
        # A regional tag gTTS does not list (en-GB, es-MX): use the language; accents come from the tld.
        base = key.split("-", 1)[0]
        if base != key and base in by_lower:
            return by_lower[base]
        # Did you mean: a close code, or the language typed by name ("german", "Portugese").
        scored: dict[str, float] = {}
        for code, name in langs.items():
            score = max(difflib.SequenceMatcher(None, key, code.lower()).ratio(),
                        difflib.SequenceMatcher(None, key, name.lower()).ratio())
            if score >= 0.6:
                scored[code] = score
        best = max(scored.values(), default=0.0)
        guesses = sorted((c for c, v in scored.items() if v >= best - 0.05), key=lambda c: -scored[c])[:3]
        if guesses:
            hint = "did you mean " + " or ".join(f"{g!r} ({langs[g]})" for g in guesses) + "?"
        else:
            hint = f"gTTS languages: {', '.join(sorted(langs))}"
        raise EngineUnavailable(f"gtts does not support language {requested!r}", hint=hint)

    # -- fetching ---------------------------------------------------------------------------------

    def _chunks(self, text: str, lang: str, tld: str) -> list[str]:
        """gTTS's own pre-processing and ~100-character tokenization of `text`."""
        from gtts import gTTS

        if not text or not text.strip():
            raise EngineError("gtts: nothing to narrate (empty text)")
        try:
            parts = gTTS(text, lang=lang, tld=tld, lang_check=False)._tokenize(text)
        except AttributeError:  # pragma: no cover - a future gTTS without _tokenize: one request
            parts = [text]
        except Exception as exc:  # noqa: BLE001 - gTTS must never leak its own exceptions
            raise EngineError(f"gtts could not split the text into requests: {exc}") from None
        if not parts:
            raise EngineError(f"gtts: nothing to narrate in {text.strip()[:40]!r} (only punctuation)")
        return parts

    def _fetch_chunk(self, part: str, lang: str, tld: str, speed: float) -> np.ndarray:
        """One chunk's audio, decoded; retried on throttling, 5xx, network errors and garbage."""
        host = f"translate.google.{tld}"
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(part, lang, tld, speed)
            except _Attempt as failure:
                if not failure.network:
                    raise EngineError(
                        f"Google's TTS service ({host}) refused the gTTS request: {failure.reason}",
                        hint=failure.hint,
                    ) from None
                if not failure.retry or attempt == attempts:
                    tries = f"after {attempt} attempt{'s' if attempt > 1 else ''}"
                    raise NetworkError(
                        f"gTTS could not reach Google's TTS service ({host}): {failure.reason} {tries}",
                        hint=failure.hint or _OFFLINE_HINT,
                    ) from None
                self.sleep(self._delay(attempt, failure.retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_delay)
        return self._rng.uniform(0.0, min(self.max_delay, self.backoff * 2 ** (attempt - 1)))

    def _attempt(self, part: str, lang: str, tld: str, speed: float) -> np.ndarray:
        from gtts import gTTS, gTTSError

        tts = gTTS(part, lang=lang, tld=tld, lang_check=False, pre_processor_funcs=[], timeout=self.timeout)
        buf = io.BytesIO()
        self.limiter.acquire()
        with self._count_lock:
            self.requests_made += 1
        try:
            tts.write_to_fp(buf)
        except gTTSError as exc:
            raise self._classify(exc) from None
        except ValueError as exc:  # binascii.Error (bad base64), UnicodeDecodeError (binary body)
            raise _Attempt(f"garbage payload ({type(exc).__name__}: {exc})", retry=True) from None
        except Exception as exc:  # noqa: BLE001 - requests/urllib3 oddities must not escape
            raise _Attempt(f"{type(exc).__name__}: {exc}", retry=True) from None
        mp3 = buf.getvalue()
        if not mp3:
            raise _Attempt("garbage payload (HTTP 200 without audio)", retry=True)
        try:
            samples = decode_bytes(mp3, "mp3", tempo=speed, what="decode gTTS audio")
        except SoundError as exc:
            raise _Attempt(f"garbage payload (audio does not decode: {exc.message})", retry=True) from None
        if samples.size == 0:
            raise _Attempt("garbage payload (audio decodes to nothing)", retry=True)
        if int(np.abs(samples.astype(np.int32)).max()) < SILENT_PEAK:
            raise _Attempt("garbage payload (the audio is silent)", retry=True)
        return samples

    # -- error classification ---------------------------------------------------------------------

    def _classify(self, exc: Exception) -> _Attempt:
        rsp = getattr(exc, "rsp", None)
        if rsp is not None:
            return _classify_response(rsp)
        return _classify_request_error(exc.__context__ or exc, self.timeout)


def _status_text(rsp) -> str:
    try:
        phrase = rsp.reason or HTTPStatus(rsp.status_code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {rsp.status_code} {phrase}".rstrip()


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _classify_response(rsp) -> _Attempt:
    status = rsp.status_code
    text = _status_text(rsp)
    if status == 429:
        return _Attempt(text, retry=True, retry_after=_retry_after(rsp.headers.get("Retry-After")),
                        hint=f"Google is rate-limiting this machine; wait a while, or {_OFFLINE_VOICE}")
    if status >= 500:
        return _Attempt(text, retry=True)
    if 200 <= status < 300:
        return _Attempt(f"garbage payload ({text} without an audio stream)", retry=True)
    hint = "gTTS relies on an unofficial Google endpoint; upgrading gTTS may help"
    if status == 404:
        hint = f"the Google domain may not exist; gTTS accents are Google domains such as {_TLD_EXAMPLES}"
    return _Attempt(text, retry=False, network=False, hint=hint)


def _causes(exc: BaseException):
    """`exc` and everything it wraps (requests -> urllib3 MaxRetryError.reason -> socket errors)."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend([getattr(item, "reason", None), item.__cause__, item.__context__, *item.args])


def _no_network(exc: BaseException) -> str | None:
    """A short reason when `exc` means this machine cannot reach the internet at all."""
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror) or type(cause).__name__ == "NameResolutionError":
            return "DNS lookup failed (no network?)"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "network is unreachable"
    text = " ".join(str(cause).lower() for cause in _causes(exc))
    return next((why for marker, why in _NO_NETWORK_MARKERS.items() if marker in text), None)


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _classify_request_error(exc: BaseException, timeout) -> _Attempt:
    import requests

    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return _Attempt(f"no connection within {connect:g} s (connect timeout)", retry=True)
    if isinstance(exc, requests.exceptions.Timeout):
        return _Attempt(f"no response within {read:g} s (read timeout)", retry=True)
    if isinstance(exc, requests.exceptions.ProxyError):  # before ConnectionError, of which it is one
        chosen = requests.utils.get_environ_proxies("https://translate.google.com") or {}
        proxy = chosen.get("https") or chosen.get("all") or "set in the environment"
        refused = any(isinstance(c, ConnectionRefusedError) or "refused" in str(c).lower() for c in _causes(exc))
        return _Attempt(f"the proxy {proxy} {'refused the connection' if refused else 'failed'}", retry=False,
                        hint=f"check HTTPS_PROXY (the proxy set for HTTPS), or {_OFFLINE_VOICE}")
    if isinstance(exc, requests.exceptions.SSLError):
        return _Attempt(f"TLS error ({_short(exc)})", retry=False,
                        hint=f"a proxy or captive portal may be intercepting HTTPS; {_OFFLINE_VOICE}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        why = _no_network(exc)
        if why:  # nothing to wait for: fail fast so `auto` falls back at once
            return _Attempt(why, retry=False)
        for cause in _causes(exc):
            if isinstance(cause, ConnectionRefusedError) or "connection refused" in str(cause).lower():
                return _Attempt("connection refused", retry=True)
        return _Attempt(f"connection failed ({_short(exc)})", retry=True)
    if isinstance(exc, requests.exceptions.RequestException):
        return _Attempt(f"request failed ({type(exc).__name__}: {_short(exc)})", retry=True)
    return _Attempt(f"{type(exc).__name__}: {_short(exc)}", retry=True)
