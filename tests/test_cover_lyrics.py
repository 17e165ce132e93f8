"""Cover art (decoded with Pillow) and synced lyrics (parsed back) from a real plan."""

import io
import re

import pytest
from PIL import Image

from audiogen.build.check import plan_file
from audiogen.publish.cover import cover_hue, make_cover
from audiogen.publish.lyrics import lrc_time, make_lrc


def test_cover_is_a_square_png_of_the_default_size():
    data = make_cover("Morning Circulation", "Facial Massage Library")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "PNG" and img.size == (1400, 1400) and img.mode == "RGB"


def test_cover_is_deterministic_and_depends_on_the_title():
    a = make_cover("Evening Release", "Library", size=240)
    assert a == make_cover("Evening Release", "Library", size=240)
    b = make_cover("Evening Release!", "Library", size=240)
    c = make_cover("Evening Release", "Another library", size=240)
    assert len({a, b, c}) == 3
    assert cover_hue("Evening Release") != cover_hue("Morning Lift")
    # the background colour (a corner pixel) follows the title's hue, not the library's
    corner = [Image.open(io.BytesIO(x)).convert("RGB").getpixel((2, 2)) for x in (a, b, c)]
    assert corner[0] == corner[2] != corner[1]


@pytest.mark.parametrize("title", ["", "x", "Ünïcode — ça va? " * 8, "W" * 120, "<script>alert(1)</script>"])
def test_cover_survives_awkward_titles(title):
    img = Image.open(io.BytesIO(make_cover(title, None, size=160)))
    assert img.size == (160, 160)
    extrema = img.convert("L").getextrema()
    assert extrema[1] - extrema[0] > 60  # some text was drawn on the gradient


ROUTINE = """\
title: "Lyrics [test]"
voice: {engine: espeak}
cue: chime
intro: Welcome. [pause 1s] Let us begin.
steps:
  - title: Warm up
    say: Rub your palms together.
    hold: 3s
  - title: Sweep
    say: Sweep out to the temples.
    repeat: 2
    every: 3s
outro: That is all.
"""

LINE = re.compile(r"^\[(\d+):(\d\d)\.(\d\d)\](.*)$")


def parse_lrc(text: str) -> tuple[dict[str, str], list[tuple[int, str]]]:
    headers, lines = {}, []
    for raw in text.splitlines():
        m = LINE.match(raw)
        if m:
            ms = (int(m.group(1)) * 60 + int(m.group(2))) * 1000 + int(m.group(3)) * 10
            lines.append((ms, m.group(4)))
        else:
            h = re.match(r"^\[([a-z]+):(.*)\]$", raw)
            assert h, f"not an LRC line: {raw!r}"
            headers[h.group(1)] = h.group(2)
    return headers, lines


def test_lrc_has_every_speech_event_at_its_time(write_routine):
    timeline = plan_file(write_routine(ROUTINE)).to_dict()
    timeline.update({"artist": "Me", "album": "My library", "audiogen": "0.1.0"})
    headers, lines = parse_lrc(make_lrc(timeline))
    assert headers["ti"] == "Lyrics (test)"  # brackets would end the tag early
    assert headers["ar"] == "Me" and headers["al"] == "My library"
    total = round(timeline["length_ms"] / 1000)
    assert headers["length"] == f"{total // 60:02d}:{total % 60:02d}"

    speech = [e for e in timeline["events"] if e["kind"] == "speech"]
    chapters = timeline["chapters"]
    spoken = [(ms, text) for ms, text in lines if text not in {c["title"] for c in chapters}]
    assert len(spoken) == len(speech)
    for (ms, text), e in zip(spoken, speech, strict=True):
        assert text == e["text"]
        assert abs(ms - e["start_ms"]) <= 10, (ms, e)
    assert [ms for ms, _ in lines] == sorted(ms for ms, _ in lines)
    # steps open with their cue: the step title is shown at the chapter start, before the words
    titled = {text: ms for ms, text in lines}
    for c in chapters:
        assert abs(titled[c["title"]] - c["start_ms"]) <= 10, c  # the outro too, whose words start with it


NO_CUE = """\
title: Boundaries
voice: {engine: espeak}
cue: none
steps:
  - title: First
    say: Breathe in.
  - title: Second
    say: Breathe out.
    hold: 2s
outro: Well done.
"""


def test_every_chapter_title_is_kept_when_speech_starts_with_the_chapter(write_routine):
    """Without a cue the second step's and the outro's words start exactly at their chapter's start:
    the title line is still there, at that time, just before the words."""
    timeline = plan_file(write_routine(NO_CUE)).to_dict()
    speech = {e["chapter"]: e for e in reversed(timeline["events"]) if e["kind"] == "speech"}  # each chapter's first
    coincident = [c for i, c in enumerate(timeline["chapters"]) if speech[i]["start_ms"] == c["start_ms"]]
    assert [c["title"] for c in coincident] == ["Second", "Outro"]  # the case this test is about
    _, lines = parse_lrc(make_lrc(timeline))
    texts = [text for _, text in lines]
    for i, c in enumerate(timeline["chapters"]):
        assert texts.count(c["title"]) == 1, (c, lines)
        at = texts.index(c["title"])
        assert abs(lines[at][0] - c["start_ms"]) <= 10
        assert texts.index(speech[i]["text"]) > at  # title first, then the words
    assert texts == ["First", "Breathe in.", "Second", "Breathe out.", "Outro", "Well done."]


def test_lrc_text_is_one_line_and_coincident_titles_are_kept():
    timeline = {
        "title": "T", "length_ms": 3_723_000,
        "chapters": [{"title": "Only", "start_ms": 0, "end_ms": 3_723_000, "kind": "step"}],
        "events": [
            {"kind": "speech", "start_ms": 0, "end_ms": 900, "text": "First\nline  here", "chapter": 0},
            {"kind": "cue", "start_ms": 1000, "end_ms": 2000, "sound": "chime", "chapter": 0},
            {"kind": "speech", "start_ms": 3_600_004, "end_ms": 3_700_000, "text": "Late", "chapter": 0},
        ],
    }
    headers, lines = parse_lrc(make_lrc(timeline))
    assert headers["length"] == "62:03"
    assert lines == [(0, "Only"), (0, "First line here"), (3_600_000, "Late")]
    assert lrc_time(3_600_004) == "60:00.00" and lrc_time(61_995) == "01:02.00"
