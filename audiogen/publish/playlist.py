"""`playlist.m3u8`: extended M3U that any player opens, the sessions in order."""

from __future__ import annotations

from pathlib import Path

from audiogen.publish.sessions import artist, library_meta, one_line, write_if_changed

PLAYLIST = "playlist.m3u8"


def playlist_text(sessions: list[dict], album: str | None, author: str | None = None) -> str:
    album, author = library_meta(sessions, album, author)
    lines = ["#EXTM3U", f"#PLAYLIST:{one_line(album)}"]
    for s in sessions:
        seconds = int(round(s["length_ms"] / 1000))
        lines.append(f"#EXTINF:{seconds},{artist(s, author)} - {one_line(s['title'])}")
        lines.append(s["mp3"])
    return "\n".join(lines) + "\n"


def write_m3u8(out_dir: str | Path, sessions: list[dict], album: str | None, author: str | None = None) -> Path:
    """`playlist.m3u8`: extended M3U in UTF-8 with the sessions' relative file names, in order."""
    path = Path(out_dir) / PLAYLIST
    write_if_changed(path, playlist_text(sessions, album, author).encode("utf-8"))
    return path
