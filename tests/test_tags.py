"""ID3v2.4 tags and chapters written by audiogen.publish.tags, read back by eyeD3 and ffmpeg (not mutagen)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import eyed3
import numpy as np
import pytest

from audiogen.dsp.ffmpeg import ffmpeg_exe
from audiogen.publish.tags import ChapterMark, TagInfo, write_tags
from audiogen.routine.errors import OutputError

eyed3.log.setLevel("ERROR")  # eyeD3 warns about non-standard genre names such as "Meditation"

CHAPTERS = [
    ChapterMark("Warm-up", 0, 2000),
    ChapterMark("Stretch", 2000, 4000),
    ChapterMark("Cool-down", 4000, 6000),
]
UNICODE_TITLE = "Front — Étirement 顔"


def _png(width: int = 2, height: int = 2) -> bytes:
    """A small, valid RGB PNG (so ffmpeg does not complain about the attached picture)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([200, 30, 90]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


COVER = _png()


def full_info(**overrides) -> TagInfo:
    values = dict(
        title="Morning stretch",
        artist="audiogen tests",
        album="Routines",
        track=2,
        track_total=5,
        genre="Meditation",
        year="2024",
        comment="Breathe slowly.",
        lyrics="Reach up.\nFold forward.",
        cover_png=COVER,
    )
    values.update(overrides)
    return TagInfo(**values)


def _ffmpeg(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args], capture_output=True)


@pytest.fixture(scope="module")
def pristine_mp3(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mp3") / "pristine.mp3"
    args = "-loglevel error -f lavfi -i sine=frequency=300:duration=6 -ac 1 -ar 44100 -b:a 64k".split()
    proc = _ffmpeg(*args, str(path))
    assert proc.returncode == 0, proc.stderr.decode()
    return path


@pytest.fixture
def mp3(pristine_mp3, tmp_path) -> Path:
    path = tmp_path / "session.mp3"
    shutil.copyfile(pristine_mp3, path)
    return path


# --- independent readers -------------------------------------------------------------------------


def ffmetadata(path: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """`ffmpeg -i path -f ffmetadata -`: the global section and the [CHAPTER] blocks, in printed order."""
    proc = _ffmpeg("-loglevel", "error", "-i", str(path), "-f", "ffmetadata", "-")
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode("utf-8")
    sections = re.split(r"^\[(\w+)\]\s*$", text, flags=re.MULTILINE)
    glob = _ffmeta_pairs(sections[0])
    chapters = [
        _ffmeta_pairs(body)
        for name, body in zip(sections[1::2], sections[2::2], strict=True)
        if name == "CHAPTER"
    ]
    return glob, chapters


def _ffmeta_pairs(block: str) -> dict[str, str]:
    pairs = {}
    for line in block.splitlines():
        if not line or line.startswith((";", "#")):
            continue
        key, _, value = line.partition("=")
        pairs[key] = re.sub(r"\\(.)", r"\1", value)  # ffmetadata escapes = ; # \ and newlines
    return pairs


def ff_chapters_ms(chapters: list[dict[str, str]]) -> list[tuple[str, float, float]]:
    """(title, start ms, end ms) of ffmetadata chapter blocks, in printed order."""
    out = []
    for ch in chapters:
        num, den = (int(x) for x in ch["TIMEBASE"].split("/"))
        scale = 1000.0 * num / den
        out.append((ch.get("title", ""), int(ch["START"]) * scale, int(ch["END"]) * scale))
    return out


def ffmpeg_input_dump(path: Path) -> str:
    """What `ffmpeg -i` prints about the input (stderr; it exits non-zero for lack of an output)."""
    return _ffmpeg("-i", str(path)).stderr.decode("utf-8")


def decode_pcm(path: Path) -> np.ndarray:
    proc = _ffmpeg("-loglevel", "error", "-i", str(path), "-f", "s16le", "-acodec", "pcm_s16le", "-")
    assert proc.returncode == 0, proc.stderr.decode()
    return np.frombuffer(proc.stdout, dtype="<i2")


def id3v2_size(data: bytes) -> int:
    """Total size (header + body [+ footer]) of the ID3v2 tag at the start of `data`, 0 if none."""
    if data[:3] != b"ID3":
        return 0
    body = 0
    for byte in data[6:10]:
        body = (body << 7) | (byte & 0x7F)
    footer = 10 if data[5] & 0x10 else 0
    return 10 + body + footer


def eyed3_chapters(tag) -> list[tuple[str, str, tuple[int, int]]]:
    chapters = [(c.element_id.decode("latin-1"), c.title, tuple(c.times)) for c in tag.chapters]
    return sorted(chapters, key=lambda c: c[2])


# --- tests ---------------------------------------------------------------------------------------


def test_eyed3_reads_tags_chapters_and_toc(mp3):
    write_tags(mp3, full_info(), CHAPTERS)

    tag = eyed3.load(str(mp3)).tag
    assert tag.version == (2, 4, 0)
    assert tag.title == "Morning stretch"
    assert tag.artist == "audiogen tests"
    assert tag.album == "Routines"
    assert tuple(tag.track_num) == (2, 5)
    assert tag.genre.name == "Meditation"
    assert str(tag.recording_date) == "2024"
    assert [(c.lang, c.description, c.text) for c in tag.comments] == [(b"eng", "", "Breathe slowly.")]
    assert [(u.lang, u.text) for u in tag.lyrics] == [(b"eng", "Reach up.\nFold forward.")]
    assert [f.text for f in tag.frame_set[b"TSSE"]] == ["audiogen"]

    assert eyed3_chapters(tag) == [
        ("ch0", "Warm-up", (0, 2000)),
        ("ch1", "Stretch", (2000, 4000)),
        ("ch2", "Cool-down", (4000, 6000)),
    ]
    for chap in tag.chapters:
        assert tuple(chap.offsets) == (None, None)  # 0xFFFFFFFF: byte offsets unused

    tocs = list(tag.table_of_contents)
    assert len(tocs) == 1
    toc = tocs[0]
    assert toc.element_id == b"toc"
    assert toc.toplevel and toc.ordered
    assert toc.child_ids == [b"ch0", b"ch1", b"ch2"]
    assert toc.description == "Chapters"


def test_cover_art_round_trips_via_eyed3(mp3):
    write_tags(mp3, full_info(), CHAPTERS)

    images = list(eyed3.load(str(mp3)).tag.images)
    assert len(images) == 1
    image = images[0]
    assert image.picture_type == 3  # front cover
    assert image.mime_type == "image/png"
    assert image.image_data == COVER


def test_ffmpeg_reads_metadata_and_chapters(mp3):
    write_tags(mp3, full_info(), CHAPTERS)

    glob, blocks = ffmetadata(mp3)
    assert glob["title"] == "Morning stretch"
    assert glob["artist"] == "audiogen tests"
    assert glob["album"] == "Routines"
    assert glob["track"] == "2/5"
    assert glob["genre"] == "Meditation"
    assert glob["date"] == "2024"
    assert glob["comment"] == "Breathe slowly."

    got = ff_chapters_ms(blocks)
    assert len(got) == len(CHAPTERS)
    by_start = sorted(got, key=lambda c: c[1])
    assert [title for title, _, _ in by_start] == [c.title for c in CHAPTERS]
    # ffmpeg moves chapters earlier by the stream start time (the MP3 encoder delay, ~25 ms at
    # 44.1 kHz) and clamps the first one at 0; ends and lengths are otherwise kept.
    shift = CHAPTERS[-1].end_ms - by_start[-1][2]
    assert 0 <= shift <= 60
    for (_, start, end), want in zip(by_start, CHAPTERS, strict=True):
        assert abs(end - (want.end_ms - shift)) <= 2
        assert abs(start - max(0, want.start_ms - shift)) <= 2
        assert want.start_ms - 60 <= start <= want.start_ms
        if want.start_ms >= shift:
            assert abs((end - start) - (want.end_ms - want.start_ms)) <= 2


def test_chap_frames_are_stored_in_chapter_order(mp3):
    # mutagen on its own sorts frames by size (this would store ch2, ch1, ch0); ffmpeg lists
    # chapters in file order rather than by CTOC, so tags.py keeps CHAP frames in chapter order.
    chapters = [
        ChapterMark("A much longer introduction", 0, 1000),
        ChapterMark("Middle", 1000, 3000),
        ChapterMark("End", 3000, 6000),
    ]
    write_tags(mp3, TagInfo(title="Order"), chapters)

    _, blocks = ffmetadata(mp3)
    assert [title for title, _, _ in ff_chapters_ms(blocks)] == [c.title for c in chapters]
    data = mp3.read_bytes()
    ids = re.findall(rb"CHAP.{6}(ch\d+)\x00", data[: id3v2_size(data)], flags=re.DOTALL)
    assert ids == [b"ch0", b"ch1", b"ch2"]


def test_ffmpeg_input_dump_shows_exact_chapter_times_and_encoder(mp3):
    write_tags(mp3, full_info(), CHAPTERS)

    dump = ffmpeg_input_dump(mp3)
    times = re.findall(r"Chapter #\d+:\d+: start (\d+\.\d+), end (\d+\.\d+)", dump)
    assert sorted((float(s), float(e)) for s, e in times) == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert re.search(r"^\s+encoder\s+: audiogen$", dump, flags=re.MULTILINE)
    assert "Lavf" not in dump.split("Duration:")[0]  # ffmpeg's own TSSE was replaced


def test_audio_is_untouched_by_tagging(mp3, pristine_mp3):
    before_pcm = decode_pcm(pristine_mp3)
    write_tags(mp3, full_info(), CHAPTERS)
    after_pcm = decode_pcm(mp3)

    assert len(before_pcm) == len(after_pcm)
    assert 6 * 44100 - 2000 < len(after_pcm) <= 6 * 44100 + 2000
    np.testing.assert_array_equal(before_pcm, after_pcm)

    before, after = pristine_mp3.read_bytes(), mp3.read_bytes()
    assert after[id3v2_size(after) :] == before[id3v2_size(before) :]


def test_retagging_replaces_everything(mp3, pristine_mp3):
    write_tags(mp3, full_info(), CHAPTERS)
    mp3.write_bytes(mp3.read_bytes() + b"TAG" + b"old v1 title".ljust(125, b"\x00"))  # a stray ID3v1

    write_tags(mp3, TagInfo(title="Evening"), [ChapterMark("Only", 0, 5000), ChapterMark("Rest", 5000, 6000)])

    tag = eyed3.load(str(mp3)).tag
    assert tag.version == (2, 4, 0)
    assert tag.title == "Evening"
    assert tag.artist is None and tag.album is None
    assert tag.track_num == (None, None)
    assert list(tag.images) == [] and list(tag.comments) == [] and list(tag.lyrics) == []
    assert len(tag.frame_set[b"TIT2"]) == 1
    assert eyed3_chapters(tag) == [("ch0", "Only", (0, 5000)), ("ch1", "Rest", (5000, 6000))]
    tocs = list(tag.table_of_contents)
    assert len(tocs) == 1 and tocs[0].child_ids == [b"ch0", b"ch1"]

    # One ID3v2.4 tag, then exactly the original audio: no stacked old tag, no ID3v1 left.
    data, original = mp3.read_bytes(), pristine_mp3.read_bytes()
    assert data[:4] == b"ID3\x04"
    assert data[id3v2_size(data) :] == original[id3v2_size(original) :]

    glob, blocks = ffmetadata(mp3)
    assert glob["title"] == "Evening" and "artist" not in glob
    assert [t for t, _, _ in ff_chapters_ms(blocks)] == ["Only", "Rest"]


def test_no_chapters_writes_no_chap_or_ctoc(mp3):
    write_tags(mp3, full_info(track_total=None), CHAPTERS)
    write_tags(mp3, TagInfo(title="Plain", track=3), [])

    tag = eyed3.load(str(mp3)).tag
    assert tag.title == "Plain"
    assert tuple(tag.track_num) == (3, None)
    assert list(tag.chapters) == []
    assert list(tag.table_of_contents) == []
    assert ffmetadata(mp3)[1] == []


def test_non_ascii_round_trips(mp3):
    chapters = [ChapterMark("Étirement — début", 0, 3000), ChapterMark("顔のストレッチ", 3000, 6000)]
    write_tags(mp3, full_info(title=UNICODE_TITLE, artist="Zoë Ødegård", album="Ünïcode ✓"), chapters)

    tag = eyed3.load(str(mp3)).tag
    assert tag.title == UNICODE_TITLE
    assert tag.artist == "Zoë Ødegård"
    assert tag.album == "Ünïcode ✓"
    assert [title for _, title, _ in eyed3_chapters(tag)] == ["Étirement — début", "顔のストレッチ"]

    glob, blocks = ffmetadata(mp3)
    assert glob["title"] == UNICODE_TITLE
    assert glob["artist"] == "Zoë Ødegård"
    assert glob["album"] == "Ünïcode ✓"
    assert sorted(ff_chapters_ms(blocks), key=lambda c: c[1])[1][0] == "顔のストレッチ"


def test_unwritable_path_raises_output_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file")
    target = blocker / "session.mp3"

    with pytest.raises(OutputError) as info:
        write_tags(target, full_info(), CHAPTERS)
    assert info.value.path == str(target)
    assert str(target) in str(info.value)


def test_missing_file_raises_output_error(tmp_path):
    with pytest.raises(OutputError) as info:
        write_tags(tmp_path / "absent.mp3", full_info(), [])
    assert info.value.path == str(tmp_path / "absent.mp3")


def test_non_mp3_raises_output_error_and_is_left_alone(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(OutputError):
        write_tags(path, full_info(), [])
    assert path.read_text() == "this is not audio\n" * 20


@pytest.mark.parametrize(
    "chapters",
    [
        [ChapterMark("b", 2000, 4000), ChapterMark("a", 0, 2000)],  # out of order
        [ChapterMark("a", 0, 2500), ChapterMark("b", 2000, 4000)],  # overlapping
        [ChapterMark("a", -10, 2000)],  # negative start
        [ChapterMark("a", 3000, 2000)],  # ends before it starts
        [ChapterMark("a", 1000, 1000)],  # empty
    ],
    ids=["disordered", "overlapping", "negative", "reversed", "empty"],
)
def test_invalid_chapters_raise_value_error_before_touching_the_file(mp3, chapters):
    before = mp3.read_bytes()
    with pytest.raises(ValueError):
        write_tags(mp3, full_info(), chapters)
    assert mp3.read_bytes() == before


def test_gaps_between_chapters_are_allowed(mp3):
    write_tags(mp3, TagInfo(title="Gaps"), [ChapterMark("a", 0, 1000), ChapterMark("b", 3000, 6000)])
    assert eyed3_chapters(eyed3.load(str(mp3)).tag) == [("ch0", "a", (0, 1000)), ("ch1", "b", (3000, 6000))]
