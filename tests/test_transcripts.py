"""Transcripts: WebVTT (read back with webvtt-py) and SubRip beside a real session, and the pure writers."""

import html
import json
import re

import pytest

from audiogen.build import BuildOptions, build
from audiogen.publish.transcripts import cues, make_srt, make_vtt, srt_time, vtt_escape, vtt_time

ROUTINE = """\
title: Transcript test
voice: {engine: espeak}
cue: chime
intro: Welcome. [pause 1s] Let us begin.
steps:
  - title: Hostile <b>title</b> --> & more
    say: "Say <b>bold</b> & then --> go."
    hold: 1s
  - title: Count
    say: Count with me.
    repeat: 2
    count: true
    every: 2s
outro: That is all.
"""

TIME = re.compile(r"^(\d{2,}):(\d\d):(\d\d)[.,](\d{3})$")


def ms(stamp: str) -> int:
    m = TIME.match(stamp)
    assert m, stamp
    h, mi, s, milli = map(int, m.groups())
    return ((h * 60 + mi) * 60 + s) * 1000 + milli


def vtt_blocks(text: str) -> list[tuple]:
    """("note", text) and ("cue", start_ms, end_ms, text) blocks, in file order (no webvtt-py)."""
    head, *blocks = text.rstrip("\n").split("\n\n")
    assert head == "WEBVTT"
    out = []
    for block in blocks:
        lines = block.split("\n")
        if lines[0].startswith("NOTE"):
            assert len(lines) == 1 and "-->" not in block, block
            out.append(("note", lines[0][5:]))
        else:
            assert len(lines) == 2, block  # timings and one line of text: no identifiers, no line breaks
            start, arrow, end = lines[0].split(" ")
            assert arrow == "-->" and "-->" not in lines[1] and "<" not in lines[1], block
            out.append(("cue", ms(start), ms(end), html.unescape(lines[1])))
    return out


def parse_srt(text: str) -> list[tuple[int, int, int, str]]:
    """(number, start_ms, end_ms, text) of every SubRip cue."""
    out = []
    for block in text.strip("\n").split("\n\n") if text.strip() else []:
        number, timings, *body = block.split("\n")
        start, arrow, end = timings.split(" ")
        assert arrow == "-->" and len(body) == 1 and "-->" not in body[0], block
        out.append((int(number), ms(start), ms(end), body[0]))
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("transcripts")
    src = tmp / "routine.yaml"
    src.write_text(ROUTINE)
    [r] = build([src], BuildOptions(out_dir=tmp / "out"))
    assert r.status == "built", r.error
    out = r.mp3.parent
    timeline = json.loads((out / f"{r.mp3.stem}.json").read_text("utf-8"))
    speech = sorted((e for e in timeline["events"] if e["kind"] == "speech"),
                    key=lambda e: (e["start_ms"], e["end_ms"]))
    assert any("-->" in e["text"] for e in speech)
    return r, timeline, speech


def test_transcripts_are_written_beside_the_mp3(built):
    r, timeline, _ = built
    for ext in (".vtt", ".srt", ".lrc", ".png", ".json"):
        assert r.mp3.with_suffix(ext).is_file(), ext
    assert (timeline["vtt"], timeline["srt"]) == (r.mp3.with_suffix(".vtt").name, r.mp3.with_suffix(".srt").name)
    assert r.mp3.with_suffix(".vtt").read_bytes().startswith(b"WEBVTT\n\n")


def test_vtt_read_by_webvtt_py_matches_the_timeline(built):
    webvtt = pytest.importorskip("webvtt")
    r, _, speech = built
    captions = list(webvtt.read(str(r.mp3.with_suffix(".vtt"))))
    assert len(captions) == len(speech)
    for c, e in zip(captions, speech, strict=True):
        assert abs(ms(c.start) - e["start_ms"]) <= 1 and abs(ms(c.end) - e["end_ms"]) <= 1, (c, e)
        # webvtt-py leaves character references as they are: unescaped, the cue is exactly what was said
        assert html.unescape(c.text) == c.text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        assert html.unescape(c.text) == e["text"]
    hostile = next(c for c in captions if "bold" in c.text)
    assert html.unescape(hostile.text) == "Say <b>bold</b> & then --> go."
    assert hostile.text == hostile.raw_text  # no cue tags: <b> is text, not bold


def test_vtt_names_every_chapter_before_its_first_words(built):
    r, timeline, speech = built
    blocks = vtt_blocks(r.mp3.with_suffix(".vtt").read_text("utf-8"))
    assert [b[3] for b in blocks if b[0] == "cue"] == [e["text"] for e in speech]
    notes = [b[1] for b in blocks if b[0] == "note"]
    assert notes == [c["title"].replace("-->", "->") for c in timeline["chapters"]]
    assert notes[1] == "Hostile <b>title</b> -> & more"  # a comment has no escapes: only the arrow is changed
    for c in timeline["chapters"]:
        at = blocks.index(("note", c["title"].replace("-->", "->")))
        first = next(i for i, b in enumerate(blocks) if b[0] == "cue" and b[1] >= c["start_ms"])
        assert at < first and all(b[1] < c["start_ms"] for b in blocks[:at] if b[0] == "cue"), c
    # the outro's words start with the outro: its note comes first, right before them
    outro = timeline["chapters"][-1]
    assert outro["kind"] == "outro" and blocks[-1][1] == outro["start_ms"] and blocks[-2] == ("note", "Outro")


def test_webvtt_py_sees_the_chapter_notes(built):
    webvtt = pytest.importorskip("webvtt")
    r, timeline, _ = built
    vtt = webvtt.from_string(r.mp3.with_suffix(".vtt").read_text("utf-8"))
    comments = list(vtt.header_comments) + [n for c in vtt.captions for n in c.comments] + list(vtt.footer_comments)
    assert comments == [c["title"].replace("-->", "->") for c in timeline["chapters"]]


def test_srt_matches_the_timeline(built):
    r, _, speech = built
    srt = parse_srt(r.mp3.with_suffix(".srt").read_text("utf-8"))
    assert [n for n, *_ in srt] == list(range(1, len(speech) + 1))
    for (_, start, end, text), e in zip(srt, speech, strict=True):
        assert abs(start - e["start_ms"]) <= 1 and abs(end - e["end_ms"]) <= 1
        assert text == e["text"].replace("-->", "->")  # SubRip cannot escape an arrow; <b> and & are as said
    assert "Say <b>bold</b> & then -> go." in [t for *_, t in srt]


def test_srt_read_by_webvtt_py(built):
    webvtt = pytest.importorskip("webvtt")
    r, _, speech = built
    captions = list(webvtt.from_srt(str(r.mp3.with_suffix(".srt"))))
    assert [(ms(c.start), ms(c.end)) for c in captions] == [(e["start_ms"], e["end_ms"]) for e in speech]


# -- the pure writers, on a timeline made by hand -------------------------------------------------------------
TIMELINE = {
    "title": "Edges",
    "length_ms": 40_000,
    "chapters": [
        {"title": "Intro", "start_ms": 0, "end_ms": 5000, "kind": "intro"},
        {"title": "Quiet", "start_ms": 5000, "end_ms": 5000, "kind": "step"},  # zero length, no words
        {"title": "Same  time\nas words", "start_ms": 5000, "end_ms": 20_000, "kind": "step"},
        {"title": "", "start_ms": 20_000, "end_ms": 30_000, "kind": "step"},  # no title: no note
        {"title": "Hold", "start_ms": 30_000, "end_ms": 40_000, "kind": "outro"},  # no words after it
    ],
    "events": [
        {"kind": "cue", "start_ms": 0, "end_ms": 1000, "sound": "chime", "chapter": 0},
        {"kind": "speech", "start_ms": 1500, "end_ms": 3000, "text": "a < b && c > d", "chapter": 0},
        {"kind": "speech", "start_ms": 5000, "end_ms": 7000, "text": "Boundary\n\nwords", "chapter": 2},
        {"kind": "speech", "start_ms": 8000, "end_ms": 8000, "text": "zero", "chapter": 2},
        {"kind": "speech", "start_ms": 9000, "end_ms": 8500, "text": "backwards", "chapter": 2},
        {"kind": "speech", "start_ms": 12_000, "end_ms": 15_000, "text": "long overlap", "chapter": 2},
        {"kind": "speech", "start_ms": 11_000, "end_ms": 13_000, "text": "earlier, listed later", "chapter": 2},
        {"kind": "speech", "start_ms": 12_000, "end_ms": 14_000, "text": "same start, ends first", "chapter": 2},
        {"kind": "silence", "start_ms": 15_000, "end_ms": 20_000, "chapter": 2},
        {"kind": "speech", "start_ms": 21_000, "end_ms": 22_000, "text": "  \n ", "chapter": 3},
        {"kind": "speech", "start_ms": 23_000, "end_ms": 24_000, "text": "Wait [pause 2s] now", "chapter": 3},
        {"kind": "speech", "start_ms": 25_000, "end_ms": 26_000, "text": "--->x<!--", "chapter": 3},
    ],
}

EXPECTED = [
    (1500, 3000, "a < b && c > d"),
    (5000, 7000, "Boundary words"),
    (8000, 8001, "zero"),  # a cue lasts at least a millisecond
    (9000, 9001, "backwards"),
    (11_000, 13_000, "earlier, listed later"),
    (12_000, 14_000, "same start, ends first"),
    (12_000, 15_000, "long overlap"),
    (23_000, 24_000, "Wait now"),
    (25_000, 26_000, "--->x<!--"),
]


def test_cues_are_the_spoken_phrases_in_time_order():
    assert cues(TIMELINE) == EXPECTED


def test_vtt_by_hand():
    text = make_vtt(TIMELINE)
    blocks = vtt_blocks(text)
    assert blocks == [
        ("note", "Intro"),
        *[("cue", *c) for c in EXPECTED[:1]],
        ("note", "Quiet"), ("note", "Same time as words"),  # chapters at the words' time: before them, in order
        *[("cue", *c) for c in EXPECTED[1:]],
        ("note", "Hold"),
    ]
    assert "a &lt; b &amp;&amp; c &gt; d" in text and "---&gt;x&lt;!--" in text
    assert text.count("-->") == len(EXPECTED)  # only in timing lines
    assert text.endswith("\n") and "\n\n\n" not in text


def test_vtt_by_hand_read_by_webvtt_py():
    webvtt = pytest.importorskip("webvtt")
    vtt = webvtt.from_string(make_vtt(TIMELINE))
    assert [(ms(c.start), ms(c.end), html.unescape(c.text)) for c in vtt.captions] == EXPECTED
    assert vtt.header_comments == ["Intro"] and vtt.footer_comments == ["Hold"]
    assert vtt.captions[1].comments == ["Quiet", "Same time as words"]


def test_srt_by_hand():
    srt = parse_srt(make_srt(TIMELINE))
    assert [n for n, *_ in srt] == list(range(1, len(EXPECTED) + 1))
    assert [tuple(c[1:]) for c in srt[:-1]] == EXPECTED[:-1]
    assert srt[-1][3] == "->x<!--"  # an arrow, however long, is written as a short one


def test_empty_timeline():
    assert make_vtt({}) == "WEBVTT\n"
    assert make_srt({"events": [{"kind": "cue", "start_ms": 0, "end_ms": 5}]}) == ""
    assert make_vtt({"chapters": [{"title": "Alone", "start_ms": 0}]}) == "WEBVTT\n\nNOTE Alone\n"


def test_time_formats():
    assert vtt_time(0) == "00:00:00.000" and srt_time(0) == "00:00:00,000"
    assert vtt_time(3_723_004) == "01:02:03.004" and srt_time(3_723_004) == "01:02:03,004"
    assert vtt_time(1234.6) == "00:00:01.235" and vtt_time(-5) == "00:00:00.000"
    assert srt_time(100 * 3_600_000 + 1) == "100:00:00,001"
    assert vtt_escape("<i>&amp;</i>") == "&lt;i&gt;&amp;amp;&lt;/i&gt;"
