"""`index.html`: one self-contained page that plays every session and jumps to a chapter when tapped.

The page's CSS and JavaScript are files in `templates/` (package data), inlined into the page: it works
from `file://`, from `audiogen serve` and from any static host, and loads nothing from elsewhere.

On a phone it behaves like a player app: the lock screen shows the current chapter and its buttons step
through chapters (Media Session), the next session starts when one ends, and, served over http(s), a web
app manifest (`manifest.webmanifest`) and a service worker (`sw.js`) make the page, its covers and the
sessions played work offline.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import struct
from importlib.resources import files
from pathlib import Path
from string import Template
from urllib.parse import quote

from audiogen.publish.feed import FEED, INDEX
from audiogen.publish.playlist import PLAYLIST
from audiogen.publish.sessions import (
    LIBRARY_COVER,
    artist,
    clock,
    language_tag,
    library_language,
    library_meta,
    one_line,
    session_digest,
    write_if_changed,
)


@functools.cache
def template(name: str) -> str:
    """A file of `audiogen/publish/templates/`."""
    return files("audiogen.publish").joinpath("templates", name).read_text("utf-8")


#: The web app manifest and the service worker, beside index.html (no session slug ends in these suffixes).
MANIFEST = "manifest.webmanifest"
SERVICE_WORKER = "sw.js"
#: The size assumed for a cover whose size is unknown (make_cover's default).
COVER_SIZE = (1400, 1400)
#: The size assumed for a thumbnail whose size is unknown (make_thumbnail's default).
THUMB_SIZE = 300
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) of a PNG or baseline/progressive JPEG, read from its header; None if unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return (w, h) if w and h else None
            if head[:2] != b"\xff\xd8":
                return None
            f.seek(2)
            while True:
                marker = f.read(4)
                if len(marker) < 4 or marker[0] != 0xFF:
                    return None
                kind, length = marker[1], struct.unpack(">H", marker[2:])[0]
                if kind in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                    h, w = struct.unpack(">xHH", f.read(5))
                    return (w, h) if w and h else None
                f.seek(length - 2, 1)
    except (OSError, struct.error):
        return None


def _cover_size(session: dict | None, path: Path | None) -> tuple[int, int]:
    """A cover's size: from the sidecar (`cover_width`/`cover_height`) when given, else read from the file."""
    if session is not None:
        w, h = session.get("cover_width"), session.get("cover_height")
        if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
            return w, h
    return (image_size(path) if path is not None else None) or COVER_SIZE


def _image_type(name: str) -> str:
    return IMAGE_TYPES.get(Path(name).suffix.lower(), "image/png")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{max(1, round(n / 1e3))} kB"


def _e(text: object) -> str:
    return html.escape(str(text if text is not None else ""), quote=True)


def index_html(sessions: list[dict], album: str | None, author: str | None,
               out_dir: str | Path | None = None, fragments: dict | None = None,
               entries: dict | None = None, digests: dict | None = None) -> str:
    """One self-contained page (inline CSS and JS; only the folder's own files are linked).

    `out_dir`: the folder, to read the covers' sizes for the lock screen (else they are assumed 1400 px).
    `fragments`: session cards made by an earlier call, by what each is made of (updated to this page's);
    the page is the same with or without it. `entries`: the folder's listing (publish.sessions.listing),
    whose stats the cards' keys share; `digests`: the sessions' `session_digest`s, shared with the feed.
    """
    album, author = library_meta(sessions, album, author)
    folder = Path(out_dir) if out_dir is not None else None
    n = len(sessions)
    total = clock(sum(s["length_ms"] for s in sessions))
    collapsed = n > 2  # many sessions: chapter lists open on demand (and when a session plays)
    lang = library_language(sessions) or "en"
    if fragments is None:
        cards = "".join(_card(s, author, collapsed, folder, lang) for s in sessions)
    else:
        made: dict[str, str] = {}
        parts = []
        for s in sessions:
            key = _card_key(s, author, collapsed, folder, lang, entries, digests)
            kept = made.get(key, fragments.get(key))
            made[key] = kept if isinstance(kept, str) else _card(s, author, collapsed, folder, lang)
            parts.append(made[key])
        cards = "".join(parts)
        fragments.clear()
        fragments.update(made)
    cover_w, cover_h = _cover_size(None, folder / LIBRARY_COVER if folder else None)
    return _fill("page.html", lang=_e(lang), album=_e(album), feed=FEED, playlist=PLAYLIST, cover=LIBRARY_COVER,
                 cover_sizes=f"{cover_w}x{cover_h}", manifest=MANIFEST,
                 byline=_e(f"{author} · {n} session{'s' if n != 1 else ''} · {total}"),
                 sessions=cards.rstrip("\n") or "<p>No sessions yet: run <code>audiogen build</code>.</p>",
                 css=template("page.css"), js=template("page.js"))


def _card_key(s: dict, author: str, collapsed: bool, folder: Path | None, page_lang: str,
              entries: dict | None = None, digests: dict | None = None) -> str:
    """What a session's card is made of: the session, the page's settings, and the files whose headers give
    the images' sizes (replaced files are new inodes)."""
    def stat(name: object) -> list | None:
        if folder is None or not isinstance(name, str):
            return None
        try:
            if entries is None:
                st = (folder / name).stat()
            elif name in entries:
                st = entries[name].stat()
            else:
                return None
        except OSError:
            return None
        return [st.st_ino, st.st_size, st.st_mtime_ns]

    blob = json.dumps([session_digest(s, digests), author, collapsed, page_lang, folder is not None,
                       stat(s.get("cover")), stat(s.get("thumb"))],
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _card(s: dict, author: str, collapsed: bool, folder: Path | None = None, page_lang: str = "en") -> str:
    title = one_line(s["title"])
    meta = [clock(s["length_ms"], floor=True)]  # as the player shows it: whole seconds, truncated
    if s["track"] is not None:
        meta.insert(0, f"#{s['track']}")
    if s["chapters"]:
        meta.append(f"{len(s['chapters'])} chapters")
    art_data = ""
    if s.get("cover"):
        # the list shows the small thumbnail; the lock screen gets the full cover (and the thumbnail)
        small = s.get("thumb") or s["cover"]
        art = f'<img class="art" src="{_e(quote(small))}" alt="" width="88" height="88" loading="lazy">'
        w, h = _cover_size(s, folder / s["cover"] if folder else None)
        art_data = (f' data-art="{_e(quote(s["cover"]))}" data-art-sizes="{w}x{h}"'
                    f' data-art-type="{_image_type(s["cover"])}"')
        if s.get("thumb"):
            tw, th = (image_size(folder / s["thumb"]) if folder else None) or (THUMB_SIZE, THUMB_SIZE)
            art_data += (f' data-thumb="{_e(quote(s["thumb"]))}" data-thumb-sizes="{tw}x{th}"'
                         f' data-thumb-type="{_image_type(s["thumb"])}"')
    else:
        art = '<div class="art" aria-hidden="true"></div>'
    desc = one_line(s.get("description"))
    chapters = ""
    if s["chapters"]:
        items = "\n".join(
            _fill("chapter.html", seconds=f"{int(c.get('start_ms', 0)) / 1000:.3f}",
                  clock=clock(int(c.get("start_ms", 0)), floor=True), title=_e(one_line(c.get("title")))).rstrip("\n")
            for c in s["chapters"])
        chapters = _fill("chapters.html", open="" if collapsed else " open", count=len(s["chapters"]), items=items)
    own = language_tag(s.get("language"))
    lang = f' lang="{_e(own)}"' if own and own != page_lang else ""  # a session in another language says so
    return _fill("session.html", slug=_e(s["slug"]), lang=lang, title=_e(title), artist=_e(artist(s, author)),
                 art=art,
                 art_data=art_data,
                 meta=_e(" · ".join(meta)), description=f'<p class="desc">{_e(desc)}</p>\n' if desc else "",
                 mp3=_e(quote(s["mp3"])), chapters=chapters, size=_size(s["size_bytes"]),
                 kind=_e(_kind(s["mp3"])), more=_more_files(s))


def _kind(name: str) -> str:
    return {".m4b": "M4B", ".opus": "Opus"}.get(Path(name).suffix.lower(), "MP3")


def _more_files(s: dict) -> str:
    """Links to what else was built for a session: its other formats, its step files' playlist, its stems."""
    links = [(name, _kind(name)) for fmt, name in (s.get("files") or {}).items()
             if isinstance(name, str) and name != s["mp3"]]
    split = s.get("split") or {}
    if isinstance(split.get("playlist"), str):
        links.append((split["playlist"], "Steps (playlist)"))
    for k, name in (s.get("stems") or {}).items():
        if isinstance(name, str):
            links.append((name, f"{k.capitalize()} stem (WAV)"))
    return "".join(f' · <a class="dl" href="{_e(quote(n))}" download>{_e(label)}</a>' for n, label in links)


def _fill(name: str, **values: object) -> str:
    """A template with every `$name` replaced (values are inserted as given: escape them first)."""
    return Template(template(name)).substitute(values)


def write_index_html(out_dir: str | Path, sessions: list[dict], album: str | None, author: str | None,
                     fragments: dict | None = None, entries: dict | None = None,
                     digests: dict | None = None) -> Path:
    path = Path(out_dir) / INDEX
    write_if_changed(path, index_html(sessions, album, author, out_dir, fragments, entries,
                                                 digests).encode("utf-8"))
    return path


def manifest_json(sessions: list[dict], album: str | None, author: str | None,
                  out_dir: str | Path | None = None) -> str:
    """The web app manifest: the library as an installable app, its icon the library cover."""
    album, author = library_meta(sessions, album, author)
    w, h = _cover_size(None, Path(out_dir) / LIBRARY_COVER if out_dir is not None else None)
    manifest = {
        "name": album, "short_name": album, "description": f"{album}: guided sessions by {author}",
        "id": "./", "start_url": "./", "scope": "./", "display": "standalone",
        "background_color": "#f5f2ee", "theme_color": "#3d6e6a",
        "icons": [{"src": LIBRARY_COVER, "sizes": f"{w}x{h}", "type": "image/png", "purpose": "any"}],
    }
    if lang := library_language(sessions):
        manifest["lang"] = lang
    return json.dumps(manifest, ensure_ascii=False, indent=1) + "\n"


def service_worker_js(out_dir: str | Path, sessions: list[dict], entries: dict | None = None) -> str:
    """`sw.js` for the folder: the page, manifest and covers precached; each MP3 kept once it is played.

    The cache is versioned by a hash of the page, this script and the files' sizes and mtimes, so a
    rebuilt library replaces it; an MP3 is cached under its own revision and survives a rebuild that
    leaves it unchanged. `entries`: the folder's listing taken before the indexes were written (its stats
    are shared; the channel art, which the feed may have just drawn, is looked at anew).
    """
    out_dir = Path(out_dir)
    digest = hashlib.sha256(template(SERVICE_WORKER).encode("utf-8"))

    def rev(name: str) -> str:
        try:
            if entries is None or name == LIBRARY_COVER:
                st = (out_dir / name).stat()
            elif name in entries:
                st = entries[name].stat()
            else:
                return "0"
        except OSError:
            return "0"
        tag = f"{st.st_size:x}-{st.st_mtime_ns:x}"
        digest.update(f"\0{name}\0{tag}".encode())
        return hashlib.sha256(tag.encode()).hexdigest()[:12]

    try:
        digest.update((out_dir / INDEX).read_bytes())
    except OSError:
        pass
    covers = [LIBRARY_COVER, *(s[k] for s in sessions for k in ("thumb", "cover") if s.get(k))]
    precache = [MANIFEST, *dict.fromkeys(quote(c) for c in covers if rev(c) != "0")]
    media = {quote(s["mp3"]): rev(s["mp3"]) for s in sessions}
    return _fill(SERVICE_WORKER, version=digest.hexdigest()[:16], precache=json.dumps(precache),
                 media=json.dumps(media, sort_keys=True))


def write_web_app(out_dir: str | Path, sessions: list[dict], album: str | None, author: str | None,
                  entries: dict | None = None) -> list[Path]:
    """`manifest.webmanifest` and `sw.js` beside index.html (write index.html first: the worker hashes it)."""
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST
    write_if_changed(manifest, manifest_json(sessions, album, author, out_dir).encode("utf-8"))
    worker = out_dir / SERVICE_WORKER
    write_if_changed(worker, service_worker_js(out_dir, sessions, entries).encode("utf-8"))
    return [manifest, worker]
