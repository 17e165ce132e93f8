"""Write ID3v2.3 or ID3v2.4 tags and chapters (CHAP + CTOC) into a finished MP3 with mutagen.

The tag is built from scratch and replaces whatever tag the encoder left (ffmpeg writes
its own ID3v2.4 tag with a ``TSSE`` "Lavf..." frame); an ID3v1 tag, if any, is removed.
The audio frames are not touched. ID3v2.3 is what id3lib-based readers and many car stereos
read (they see no v2.4 tag at all); v2.4 allows UTF-8 text. Both carry the same frames:
in v2.3 the text is UTF-16 and the date a year (TYER instead of TDRC).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import mutagen
from mutagen.id3 import (
    APIC,
    CHAP,
    COMM,
    CTOC,
    ID3,
    TALB,
    TCON,
    TDRC,
    TIT2,
    TLEN,
    TPE1,
    TRCK,
    TSSE,
    USLT,
    CTOCFlags,
    Encoding,
    PictureType,
)
from mutagen.mp3 import MP3

from audiogen.routine.errors import OutputError

try:  # private mutagen API (checked with 1.48), used only to keep CHAP frames in chapter order
    from mutagen.id3._tags import save_frame as _save_frame
except ImportError:  # pragma: no cover - a future mutagen; chapters then land in mutagen's order
    _save_frame = None

#: Value of TSSE (software used for encoding) in every file audiogen tags.
SOFTWARE = "audiogen"
#: Element id of the single top-level table of contents.
TOC_ID = "toc"
#: Title of the table of contents (its TIT2 sub-frame).
TOC_TITLE = "Chapters"
#: "Byte offset not used" marker for CHAP start/end offsets (times are authoritative).
NO_OFFSET = 0xFFFFFFFF
_MAX_TIME = 0xFFFFFFFF  # CHAP times are unsigned 32-bit milliseconds

_UTF8 = Encoding.UTF8


@dataclass
class ChapterMark:
    """One chapter: a title and its span in milliseconds from the start of the audio."""

    title: str
    start_ms: int
    end_ms: int


@dataclass
class TagInfo:
    """What goes into the ID3 tag of a rendered session."""

    title: str
    artist: str | None = None
    album: str | None = None
    track: int | None = None  # track number
    track_total: int | None = None
    genre: str | None = None
    year: str | None = None
    comment: str | None = None  # COMM, lang "eng"
    lyrics: str | None = None  # USLT (unsynced lyrics), optional
    cover_png: bytes | None = None  # APIC front cover
    cover_mime: str = "image/png"
    length_ms: int | None = None  # TLEN: the audio's length in milliseconds
    language: str | None = None  # the lyrics' language (an ISO 639-1 code such as "en"), for USLT


#: ID3 versions `write_tags` writes, as `output.id3` names them.
ID3_VERSIONS = {"2.3": 3, "2.4": 4}
#: ISO 639-1 -> the ISO 639-2 code ID3 language fields take (USLT); others are "und" (undetermined).
_LANG3 = {"en": "eng", "de": "ger", "fr": "fre", "es": "spa", "it": "ita", "pt": "por", "nl": "dut",
          "sv": "swe", "da": "dan", "no": "nor", "nb": "nob", "fi": "fin", "pl": "pol", "cs": "cze",
          "ru": "rus", "uk": "ukr", "tr": "tur", "el": "gre", "ja": "jpn", "zh": "chi", "ko": "kor",
          "ar": "ara", "he": "heb", "hi": "hin"}


def id3_language(code: str | None) -> str:
    """The three-letter code an ID3 USLT/COMM frame takes for a language code ("en-GB" -> "eng")."""
    base = (code or "").replace("_", "-").split("-")[0].lower()
    return _LANG3.get(base, base if len(base) == 3 else "und")


def chapter_id(index: int) -> str:
    """Element id of the `index`-th chapter: ``ch0``, ``ch1``, ..."""
    return f"ch{index}"


def validate_chapters(chapters: Sequence[ChapterMark]) -> None:
    """Raise ValueError unless chapters are non-negative, non-empty spans, ordered and non-overlapping.

    Chapters may leave gaps between them but may not overlap or go backwards. Zero-length
    chapters are rejected too: a chapter nobody can land on is a bug in the caller.
    """
    previous_end = 0
    for i, ch in enumerate(chapters):
        for name in ("start_ms", "end_ms"):
            value = getattr(ch, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"chapter {i} ({ch.title!r}): {name} must be an int, got {value!r}")
        if ch.start_ms < 0:
            raise ValueError(f"chapter {i} ({ch.title!r}): negative start {ch.start_ms} ms")
        if ch.end_ms <= ch.start_ms:
            raise ValueError(
                f"chapter {i} ({ch.title!r}): end {ch.end_ms} ms is not after start {ch.start_ms} ms"
            )
        if ch.end_ms >= _MAX_TIME:
            raise ValueError(f"chapter {i} ({ch.title!r}): end {ch.end_ms} ms does not fit in ID3 CHAP")
        if ch.start_ms < previous_end:
            raise ValueError(
                f"chapter {i} ({ch.title!r}) starts at {ch.start_ms} ms, before the previous "
                f"chapter ends ({previous_end} ms): chapters must be ordered and not overlap"
            )
        previous_end = ch.end_ms


def _track_text(info: TagInfo) -> str | None:
    if info.track is None:
        if info.track_total is not None:
            raise ValueError("track_total given without a track number")
        return None
    if info.track < 0 or (info.track_total is not None and info.track_total < 0):
        raise ValueError(f"negative track number: {info.track}/{info.track_total}")
    if info.track_total is None:
        return str(info.track)
    return f"{info.track}/{info.track_total}"


class _ChapterOrderedID3(ID3):
    """An ID3 tag that writes its CHAP frames last and in chapter order.

    mutagen sorts frames by size, which scatters CHAP frames (ch0, ch2, ch1, ...). The CTOC
    defines the order for readers that use it, but ffmpeg (and players built on it) list
    chapters in file order, so the CHAP frames are kept out of the frame dict and appended
    in order after mutagen has serialised everything else.
    """

    def __init__(self) -> None:
        super().__init__()
        self.chapter_frames: list[CHAP] = []

    def _write(self, config):  # overrides mutagen's private serialiser
        data = super()._write(config)
        for frame in self.chapter_frames:
            data += _save_frame(frame, config=config)
        return data


def _build_tag(info: TagInfo, chapters: Sequence[ChapterMark]) -> ID3:
    """The complete ID3 tag (not yet saved) for `info` and `chapters`; validates both."""
    validate_chapters(chapters)
    track = _track_text(info)

    tag = _ChapterOrderedID3() if _save_frame is not None else ID3()
    tag.add(TIT2(encoding=_UTF8, text=[info.title]))
    if info.artist:
        tag.add(TPE1(encoding=_UTF8, text=[info.artist]))
    if info.album:
        tag.add(TALB(encoding=_UTF8, text=[info.album]))
    if track is not None:
        tag.add(TRCK(encoding=_UTF8, text=[track]))
    if info.genre:
        tag.add(TCON(encoding=_UTF8, text=[info.genre]))
    if info.year:
        tag.add(TDRC(encoding=_UTF8, text=[str(info.year)]))
    if info.comment:
        tag.add(COMM(encoding=_UTF8, lang="eng", desc="", text=[info.comment]))
    if info.lyrics:
        lang = id3_language(info.language) if info.language else "eng"
        tag.add(USLT(encoding=_UTF8, lang=lang, desc="", text=info.lyrics))
    if info.length_ms is not None:
        if info.length_ms < 0:
            raise ValueError(f"negative length: {info.length_ms} ms")
        tag.add(TLEN(encoding=_UTF8, text=[str(int(info.length_ms))]))
    if info.cover_png:
        tag.add(
            APIC(
                encoding=_UTF8,
                mime=info.cover_mime,
                type=PictureType.COVER_FRONT,
                desc="Cover",
                data=bytes(info.cover_png),
            )
        )
    tag.add(TSSE(encoding=_UTF8, text=[SOFTWARE]))

    if chapters:
        ids = [chapter_id(i) for i in range(len(chapters))]
        for element_id, ch in zip(ids, chapters, strict=True):
            frame = CHAP(
                element_id=element_id,
                start_time=ch.start_ms,
                end_time=ch.end_ms,
                start_offset=NO_OFFSET,
                end_offset=NO_OFFSET,
                sub_frames=[TIT2(encoding=_UTF8, text=[ch.title])],
            )
            if isinstance(tag, _ChapterOrderedID3):
                tag.chapter_frames.append(frame)
            else:
                tag.add(frame)
        tag.add(
            CTOC(
                element_id=TOC_ID,
                flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[TIT2(encoding=_UTF8, text=[TOC_TITLE])],
            )
        )
    return tag


def write_tags(path: str | os.PathLike[str], info: TagInfo, chapters: Sequence[ChapterMark],
               version: str = "2.4") -> None:
    """Replace the tags of the MP3 at `path` with an ID3v2 tag (`version` "2.3" or "2.4") built from
    `info` and `chapters`.

    Raises ValueError for invalid chapters, track numbers or version (a programming error, checked
    before the file is touched) and OutputError when the file cannot be read as MP3 or written.
    """
    if version not in ID3_VERSIONS:
        raise ValueError(f"ID3 version {version!r}: write one of {', '.join(ID3_VERSIONS)}")
    tag = _build_tag(info, chapters)
    if ID3_VERSIONS[version] == 3:
        tag.update_to_v23()  # TDRC -> TYER (text encodings become UTF-16 as the frames are written)
        for frame in getattr(tag, "chapter_frames", []):
            frame.sub_frames.update_to_v23()
    name = os.fspath(path)
    try:
        MP3(name)  # refuse to prepend a tag to something that is not an MP3 stream
        # v1=0: drop any ID3v1 tag so it cannot disagree
        tag.save(name, v1=0, v2_version=ID3_VERSIONS[version])
    except mutagen.MutagenError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError) or isinstance(exc, OSError):
            detail = _os_detail(cause if isinstance(cause, OSError) else exc)
            raise OutputError(
                f"cannot write tags: {detail}",
                path=name,
                hint="check that the file exists and is writable",
            ) from exc
        raise OutputError(
            f"cannot write tags: not a readable MP3 file ({exc})",
            path=name,
            hint="the file should be an MP3 rendered by audiogen",
        ) from exc
    except OSError as exc:
        raise OutputError(
            f"cannot write tags: {_os_detail(exc)}",
            path=name,
            hint="check that the file exists and is writable",
        ) from exc


def _os_detail(exc: OSError) -> str:
    return exc.strerror or str(exc)
