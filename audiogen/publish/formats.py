"""Tags, cover and chapters for the other formats: M4B (iTunes-style MP4 atoms) and Ogg Opus (Vorbis
comments), with mutagen, into a file the encoder wrote.

An M4B's chapters are written by ffmpeg as it encodes (the Nero `chpl` atom and a QuickTime chapter
track, from FFMETADATA chapters: see audio/encode.py); mutagen then adds the tags and keeps both. An Opus
file's chapters are Vorbis comments (`CHAPTER001=00:01:02.500`, `CHAPTER001NAME=Warm up`), the chapter
extension ffmpeg, foobar2000 and Audiobookshelf read; its cover is a METADATA_BLOCK_PICTURE comment.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Sequence

import mutagen

from audiogen.publish.tags import SOFTWARE, ChapterMark, TagInfo, validate_chapters, write_tags
from audiogen.routine.errors import OutputError

#: Enclosure types by file suffix (the feed's `<enclosure type>` and the server's Content-Type).
MEDIA_TYPES = {".mp3": "audio/mpeg", ".m4b": "audio/mp4", ".m4a": "audio/mp4", ".opus": "audio/ogg",
               ".ogg": "audio/ogg", ".wav": "audio/wav", ".flac": "audio/flac"}


def media_type(name: str) -> str:
    """The MIME type of an audio file by its suffix (audio/mpeg when unknown: every session used to be MP3)."""
    return MEDIA_TYPES.get(os.path.splitext(str(name))[1].lower(), "audio/mpeg")


def _failed(path: str, exc: Exception, what: str) -> OutputError:
    cause = exc.__cause__ or exc.__context__ or exc
    if isinstance(cause, OSError):
        return OutputError(f"cannot write tags: {cause.strerror or cause}", path=path,
                           hint="check that the file exists and is writable")
    return OutputError(f"cannot write tags: not a readable {what} file ({exc})", path=path,
                       hint=f"the file should be an {what} rendered by audiogen")


def write_mp4_tags(path: str | os.PathLike[str], info: TagInfo) -> None:
    """iTunes-style tags and the cover into an M4B (its chapters are already there, from the encoder)."""
    from mutagen.mp4 import MP4, MP4Cover

    name = os.fspath(path)
    try:
        f = MP4(name)
        if f.tags is None:
            f.add_tags()
        t = f.tags
        t.clear()
        t["\xa9nam"] = [info.title]
        if info.artist:
            t["\xa9ART"] = [info.artist]
            t["aART"] = [info.artist]
        if info.album:
            t["\xa9alb"] = [info.album]
        if info.track is not None:
            t["trkn"] = [(info.track, info.track_total or 0)]
        if info.genre:
            t["\xa9gen"] = [info.genre]
        if info.year:
            t["\xa9day"] = [str(info.year)]
        if info.comment:
            t["\xa9cmt"] = [info.comment]
            t["desc"] = [info.comment]
        if info.lyrics:
            t["\xa9lyr"] = [info.lyrics]
        if info.cover_png:
            fmt = MP4Cover.FORMAT_JPEG if info.cover_mime == "image/jpeg" else MP4Cover.FORMAT_PNG
            t["covr"] = [MP4Cover(bytes(info.cover_png), imageformat=fmt)]
        t["\xa9too"] = [SOFTWARE]
        t["stik"] = [2]  # media kind: audiobook
        f.save()
    except (mutagen.MutagenError, OSError) as exc:
        raise _failed(name, exc, "M4B") from exc


def vorbis_time(ms: int) -> str:
    """A chapter start as the Vorbis chapter extension writes it: HH:MM:SS.mmm."""
    h, rest = divmod(int(ms), 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{milli:03d}"


def picture_block(data: bytes, mime: str, description: str = "Cover") -> str:
    """A FLAC METADATA_BLOCK_PICTURE (front cover), base64 as a Vorbis comment holds it."""
    from mutagen.flac import Picture

    pic = Picture()
    pic.type, pic.mime, pic.desc, pic.data = 3, mime, description, bytes(data)
    width, height = _png_size(data) if mime == "image/png" else (0, 0)
    pic.width, pic.height, pic.depth = width, height, 24 if width else 0
    return base64.b64encode(pic.write()).decode("ascii")


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return 0, 0


def opus_comments(info: TagInfo, chapters: Sequence[ChapterMark]) -> list[tuple[str, str]]:
    """Every Vorbis comment of a session's Opus file, in order."""
    validate_chapters(chapters)
    c = [("TITLE", info.title)]
    if info.artist:
        c.append(("ARTIST", info.artist))
    if info.album:
        c.append(("ALBUM", info.album))
    if info.track is not None:
        c.append(("TRACKNUMBER", str(info.track)))
        if info.track_total:
            c.append(("TRACKTOTAL", str(info.track_total)))
    if info.genre:
        c.append(("GENRE", info.genre))
    if info.year:
        c.append(("DATE", str(info.year)))
    if info.comment:
        c.append(("DESCRIPTION", info.comment))
    if info.lyrics:
        c.append(("LYRICS", info.lyrics))
    c.append(("ENCODER", SOFTWARE))
    for i, ch in enumerate(chapters, start=1):
        c.append((f"CHAPTER{i:03d}", vorbis_time(ch.start_ms)))
        c.append((f"CHAPTER{i:03d}NAME", ch.title))
    if info.cover_png:
        c.append(("METADATA_BLOCK_PICTURE", picture_block(info.cover_png, info.cover_mime)))
    return c


def write_opus_tags(path: str | os.PathLike[str], info: TagInfo, chapters: Sequence[ChapterMark]) -> None:
    """Replace the Vorbis comments of an Ogg Opus file with the session's tags, chapters and cover."""
    from mutagen.oggopus import OggOpus

    comments = opus_comments(info, chapters)
    name = os.fspath(path)
    try:
        f = OggOpus(name)
        f.tags.clear()
        for key, value in comments:
            f.tags.append((key, value))
        f.save()
    except (mutagen.MutagenError, OSError) as exc:
        raise _failed(name, exc, "Opus") from exc


def write_format_tags(path: str | os.PathLike[str], fmt: str, info: TagInfo, chapters: Sequence[ChapterMark]
                      ) -> None:
    """Tags (and chapters where the format keeps them in its tags) for a file of any output format."""
    if fmt == "mp3":
        write_tags(path, info, chapters)
    elif fmt == "m4b":  # its chapters were written by the encoder
        write_mp4_tags(path, info)
    elif fmt == "opus":
        write_opus_tags(path, info, chapters)
    else:
        raise ValueError(f"no tags for format {fmt!r}")
