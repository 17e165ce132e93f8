"""The sessions of an output folder, read back from their `<slug>.json` sidecars, and the small helpers
the playlist, the feed and the page share.

Indexes are built from the sidecars, not from a build's results, so sessions skipped as unchanged are
listed too, and rebuilding nothing rewrites identical files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from audiogen.routine.atomic import write_bytes, write_text

#: The feed's (channel's) artwork; slugs never contain "_", so no session can be called this.
LIBRARY_COVER = "library_cover.png"
CHAPTERS_SUFFIX = ".chapters.json"
DEFAULT_ALBUM = "Guided sessions"


def _is_file_name(name: object) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name \
        and not name.startswith(".")


def listing(out_dir: str | Path) -> dict[str, os.DirEntry]:
    """The entries of `out_dir` by name (empty when it cannot be listed). One listing serves every index:
    an entry's `stat()` is made once and kept, and `is_file()` needs none for a file that is not a symlink."""
    try:
        with os.scandir(out_dir) as it:
            return {e.name: e for e in it}
    except OSError:
        return {}


def _is_file(entries: dict[str, os.DirEntry], name: str) -> bool:
    """`(out_dir / name).is_file()`, from the folder's listing."""
    entry = entries.get(name)
    try:
        return entry is not None and entry.is_file()
    except OSError:
        return False


def collect_sessions(out_dir: str | Path, memo: dict | None = None,
                     entries: dict[str, os.DirEntry] | None = None) -> list[dict]:
    """Every session in `out_dir`: each `*.json` sidecar that names an existing `mp3` beside it.

    Each dict is the sidecar plus `slug` (default: the sidecar's stem), `size_bytes` and `mtime`
    (seconds) of the MP3; `cover`, `thumb` and `lrc` are set to None when their file is missing. Sorted by
    track number (sessions without one last), then title. Unreadable sidecars are ignored.

    `memo` (sidecar name -> [[inode, size, mtime_ns], what the indexes read of it]) spares reading sidecars
    whose file it already holds; it is updated to this folder's sidecars. Sessions read through a memo
    lack the sidecar's timeline (`events`, `fitted`, `warnings`), which no index shows. `entries`: the
    folder's `listing` (taken now when not given), which the other indexes can share.
    """
    out_dir = Path(out_dir)
    entries = listing(out_dir) if entries is None else entries
    sessions = []
    seen: dict[str, list] = {}
    for name in sorted(n for n in entries if n.endswith(".json")):
        if name.startswith(".") or name.endswith(CHAPTERS_SUFFIX):
            continue
        path = out_dir / name
        data = None
        if memo is not None:
            try:
                st = entries[name].stat()
            except OSError:
                continue
            kept = memo.get(path.name)
            stamp = [st.st_ino, st.st_size, st.st_mtime_ns]  # sidecars are replaced, never edited in place
            if isinstance(kept, list) and len(kept) == 2 and kept[0] == stamp:
                data = kept[1]
        if data is None:
            try:
                data = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            if memo is not None and isinstance(data, dict):
                data = {k: v for k, v in data.items() if k not in _TIMELINE}
        if memo is not None:
            seen[path.name] = [stamp, data]
        if not isinstance(data, dict) or not _is_file_name(data.get("mp3")):
            continue
        mp3 = entries.get(data["mp3"])
        try:
            if mp3 is None or not mp3.is_file():
                continue
            st = mp3.stat()
        except OSError:
            continue
        session = dict(data)
        session["slug"] = str(data.get("slug") or path.stem)
        session["title"] = str(data.get("title") or session["slug"])
        session["size_bytes"] = st.st_size
        session["mtime"] = st.st_mtime
        track = data.get("track")
        session["track"] = track if isinstance(track, int) and not isinstance(track, bool) else None
        session["length_ms"] = int(data.get("length_ms") or 0)
        session["chapters"] = [c for c in data.get("chapters") or [] if isinstance(c, dict)]
        for key in ("cover", "thumb", "lrc"):
            if not (_is_file_name(data.get(key)) and _is_file(entries, data[key])):
                session[key] = None
        sessions.append(session)
    sessions.sort(key=lambda s: (s["track"] is None, s["track"] or 0, s["title"].casefold(), s["slug"]))
    if memo is not None:
        memo.clear()
        memo.update(seen)
    return sessions


#: What of a sidecar no index reads (the timeline): left out of the index memo.
_TIMELINE = ("events", "fitted", "warnings")
#: The index memo beside the manifest: what the indexes read of each sidecar (by the sidecar's inode, size and
#: mtime), and the feed items and page cards they made (by what each is made of).
INDEX_MEMO = ".audiogen-index.json"
#: Bump when what the memo holds changes.
INDEX_MEMO_FORMAT = 1


def load_index_memo(out_dir: str | Path) -> dict:
    """The output folder's index memo (empty when missing or unreadable: every sidecar is read)."""
    try:
        data = json.loads((Path(out_dir) / INDEX_MEMO).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != INDEX_MEMO_FORMAT:
        return {}
    return {k: v for k, v in data.items() if k != "format" and isinstance(v, dict)}


def save_index_memo(out_dir: str | Path, memo: dict) -> None:
    """Write the index memo (atomically; not when unchanged). Best effort: a memo that cannot be written (a
    full disk) only means the next build reads every sidecar again, and the old one, if any, is removed."""
    from audiogen.routine.errors import AudiogenError

    text = json.dumps({"format": INDEX_MEMO_FORMAT, **memo}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))
    path = Path(out_dir) / INDEX_MEMO
    try:
        write_if_changed(path, (text + "\n").encode("utf-8"))
    except (AudiogenError, OSError):
        with contextlib.suppress(OSError):
            path.unlink()


def session_digest(session: dict, digests: dict[int, str] | None = None) -> str:
    """A hash of everything in `session` (what its feed item, card and chapters file are made of); with
    `digests` (id(session) -> digest, for sessions alive and unchanged while it is used), computed once for
    all the indexes."""
    if digests is not None and id(session) in digests:
        return digests[id(session)]
    digest = hashlib.sha256(json.dumps(session, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()
    if digests is not None:
        digests[id(session)] = digest
    return digest


def library_meta(sessions: list[dict], album: str | None = None, author: str | None = None) -> tuple[str, str]:
    """The library's title and author: the given ones, else the sessions' most common album/artist."""

    def common(key: str) -> str | None:
        values = [s.get(key) for s in sessions if isinstance(s.get(key), str) and s.get(key).strip()]
        return max(values, key=values.count) if values else None

    return (album or common("album") or DEFAULT_ALBUM), (author or common("artist") or "audiogen")


def language_tag(code: object) -> str | None:
    """A routine's language code as a BCP 47 tag for `<html lang>` and the feed (`pt_br` -> `pt-BR`,
    `DE` -> `de`), or None when it is not one."""
    if not isinstance(code, str) or not code.strip():
        return None
    parts = code.strip().replace("_", "-").split("-")
    if not all(p.isascii() and p.isalnum() for p in parts) or not 2 <= len(parts[0]) <= 3:
        return None
    out = [parts[0].lower()]
    for p in parts[1:]:
        out.append(p.upper() if len(p) == 2 else p.title() if len(p) == 4 else p.lower())
    return "-".join(out)


def library_language(sessions: list[dict]) -> str | None:
    """The library's language: the one most of its sessions are in (the first of them on a tie)."""
    tags = [t for t in (language_tag(s.get("language")) for s in sessions) if t]
    return max(tags, key=tags.count) if tags else None


def one_line(text: object) -> str:
    return " ".join(str(text or "").split())


def clock(ms: int | float, *, floor: bool = False) -> str:
    """``m:ss`` or ``h:mm:ss``, rounded (`floor`: truncated, for a chapter start a player seeks to)."""
    s = int(max(0, ms) // 1000) if floor else int(round(max(0, ms) / 1000))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def artist(session: dict, author: str) -> str:
    return one_line(session.get("artist") or author)


def write_if_changed(path: Path, data: bytes) -> None:
    """Atomic write, skipped when the file already holds exactly `data` (keeps mtimes meaningful)."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    if path.suffix in (".png",):
        write_bytes(path, data)
    else:
        write_text(path, data.decode("utf-8"))
