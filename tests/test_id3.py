"""`output.id3: "2.3" | "2.4"`, TLEN and USLT: written by mutagen, read back by eyeD3 and by mutagen's
parser (a file written as v2.3 must parse as v2.3, frame by frame), chapters (CHAP + CTOC) in both."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import eyed3
import pytest
from buildkit import make_library
from mutagen.id3 import ID3
from test_retag import audio_frames

from audiogen.build.jobs import BuildOptions
from audiogen.build.pipeline import build
from audiogen.dsp.ffmpeg import ffmpeg_exe
from audiogen.publish.tags import ChapterMark, TagInfo, id3_language, write_tags
from audiogen.routine.errors import AudiogenError
from audiogen.routine.library import load_library_config

from conftest import RATE, decode

CHAPTERS = [ChapterMark("Intro", 0, 1500), ChapterMark("Étape deux", 1500, 3000), ChapterMark("Outro", 3000, 4000)]
LYRICS = "Welcome.\n\nBreathe in — slowly.\nBreathe out."


def silent_mp3(path: Path, seconds: float = 4.0) -> Path:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono",
                    "-t", str(seconds), "-c:a", "libmp3lame", "-b:a", "32k", str(path)], check=True)
    return path


def info(**kw) -> TagInfo:
    return TagInfo(**{"title": "Fünf Minuten", "artist": "audiogen", "album": "Bibliothek", "track": 2,
                      "track_total": 5, "year": "2026", "lyrics": LYRICS, "length_ms": 4000, "language": "de",
                      **kw})


@pytest.mark.parametrize("version", ["2.3", "2.4"])
def test_both_versions_read_back_with_eyed3_and_mutagen(tmp_path, version):
    mp3 = silent_mp3(tmp_path / "a.mp3")
    write_tags(mp3, info(), CHAPTERS, version=version)
    major = int(version[-1])
    assert mp3.read_bytes()[:4] == b"ID3" + bytes([major])  # the header says it

    tag = eyed3.load(str(mp3)).tag
    assert tag.version == (2, major, 0)
    assert tag.title == "Fünf Minuten" and tag.track_num == (2, 5)
    assert [lyr.text for lyr in tag.lyrics] == [LYRICS] and tag.lyrics[0].lang == b"ger"
    assert tag.getBestDate().year == 2026
    assert tag.frame_set[b"TLEN"][0].text == "4000"
    assert sorted((c.title, tuple(c.times)) for c in tag.chapters) == sorted(
        (c.title, (c.start_ms, c.end_ms)) for c in CHAPTERS)
    toc = list(tag.table_of_contents)[0]
    assert toc.toplevel and toc.ordered and list(toc.child_ids) == [b"ch0", b"ch1", b"ch2"]

    parsed = ID3(mp3, translate=False)  # as written, not converted to v2.4 on load
    assert parsed.version == (2, major, 0)
    assert parsed["TLEN"].text == ["4000"]
    assert parsed.getall("USLT")[0].text == LYRICS
    assert [f.sub_frames["TIT2"].text[0] for f in parsed.getall("CHAP")] == [c.title for c in CHAPTERS]
    if major == 3:
        assert "TYER" in parsed and "TDRC" not in parsed  # 2.3 has no TDRC
        assert all(f.encoding in (0, 1) for f in parsed.values() if hasattr(f, "encoding"))  # no UTF-8 in 2.3
    else:
        assert "TDRC" in parsed and "TYER" not in parsed


def test_ffmpeg_lists_the_chapters_of_a_v23_tag(tmp_path):
    mp3 = silent_mp3(tmp_path / "a.mp3")
    write_tags(mp3, info(), CHAPTERS, version="2.3")
    meta = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(mp3), "-f", "ffmetadata", "-"],
                          capture_output=True, text=True, check=True).stdout
    assert meta.count("[CHAPTER]") == 3 and "title=Étape deux" in meta


def test_an_unknown_version_is_refused_before_the_file_is_touched(tmp_path):
    mp3 = silent_mp3(tmp_path / "a.mp3")
    before = mp3.read_bytes()
    with pytest.raises(ValueError, match="2.3"):
        write_tags(mp3, info(), CHAPTERS, version="2.2")
    assert mp3.read_bytes() == before


def test_language_codes_for_uslt():
    assert id3_language("en") == "eng" and id3_language("en-GB") == "eng" and id3_language("pt_BR") == "por"
    assert id3_language("xx") == "und" and id3_language("fil") == "fil"


@pytest.mark.parametrize("text, want", [("2.3", "2.3"), ("2.4", "2.4"), ('"2.4"', "2.4"), ("v2.3", "2.3")])
def test_output_id3_in_audiogen_yaml(tmp_path, text, want):
    (tmp_path / "audiogen.yaml").write_text(f"output: {{id3: {text}}}\n")
    assert load_library_config(tmp_path).output.id3 == want


def test_a_wrong_id3_version_is_a_located_error(tmp_path):
    (tmp_path / "audiogen.yaml").write_text("album: A\noutput:\n  id3: 2.5\n")
    with pytest.raises(AudiogenError) as e:
        load_library_config(tmp_path)
    assert e.value.problems()[0].line == 3 and "2.3" in str(e.value)


def test_built_sessions_carry_tlen_and_lyrics_and_a_new_version_only_retags(tmp_path, encodes):  # noqa: F811
    lib, out = make_library(tmp_path / "lib", numbers=(1, 2)), tmp_path / "out"
    results = build([lib], BuildOptions(out_dir=out))
    assert {r.status for r in results} == {"built"} and encodes() == 2
    mp3 = out / "routine-1.mp3"
    timeline = json.loads((out / "routine-1.json").read_text("utf-8"))
    spoken = [e["text"] for e in timeline["events"] if e["kind"] == "speech"]

    tag = eyed3.load(str(mp3)).tag
    assert tag.version == (2, 3, 0)  # the default
    assert int(tag.frame_set[b"TLEN"][0].text) == timeline["length_ms"]
    assert abs(len(decode(mp3)) * 1000 / RATE - timeline["length_ms"]) < 50  # TLEN is the real length
    lyrics = tag.lyrics[0].text
    assert [ln for ln in lyrics.splitlines() if ln] == spoken and lyrics.startswith("Welcome to session 1.")
    assert lyrics.count("\n\n") == len({e["chapter"] for e in timeline["events"] if e["kind"] == "speech"}) - 1
    frames = audio_frames(mp3)

    (lib / "audiogen.yaml").write_text("output: {id3: 2.4}\n")
    results = build([lib], BuildOptions(out_dir=out))
    assert {r.status for r in results} == {"retagged"} and encodes() == 0
    tag = eyed3.load(str(mp3)).tag
    assert tag.version == (2, 4, 0) and tag.lyrics[0].text == lyrics
    assert [c.title for c in sorted(tag.chapters, key=lambda c: c.times[0])] == \
        [c["title"] for c in timeline["chapters"]]
    assert ID3(mp3, translate=False).version == (2, 4, 0)
    assert audio_frames(mp3) == frames
