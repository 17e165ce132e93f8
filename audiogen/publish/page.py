"""`index.html`: one self-contained page that plays every session and jumps to a chapter when tapped.

The page's CSS and JavaScript are files in `templates/` (package data), inlined into the page: it works
from `file://`, from `audiogen serve` and from any static host, and loads nothing from elsewhere.
"""

from __future__ import annotations

import functools
import html
from importlib.resources import files
from pathlib import Path
from string import Template
from urllib.parse import quote

from audiogen.publish.feed import FEED, INDEX
from audiogen.publish.playlist import PLAYLIST
from audiogen.publish.sessions import LIBRARY_COVER, artist, clock, library_meta, one_line, write_if_changed


@functools.cache
def template(name: str) -> str:
    """A file of `audiogen/publish/templates/`."""
    return files("audiogen.publish").joinpath("templates", name).read_text("utf-8")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{max(1, round(n / 1e3))} kB"


def _e(text: object) -> str:
    return html.escape(str(text if text is not None else ""), quote=True)


def index_html(sessions: list[dict], album: str | None, author: str | None) -> str:
    """One self-contained page (inline CSS and JS; only the folder's own files are linked)."""
    album, author = library_meta(sessions, album, author)
    n = len(sessions)
    total = clock(sum(s["length_ms"] for s in sessions))
    collapsed = n > 2  # many sessions: chapter lists open on demand (and when a session plays)
    lang = next((s.get("language") for s in sessions if isinstance(s.get("language"), str)), "en")
    cards = "".join(_card(s, author, collapsed) for s in sessions)
    return _fill("page.html", lang=_e(lang), album=_e(album), feed=FEED, playlist=PLAYLIST, cover=LIBRARY_COVER,
                 byline=_e(f"{author} · {n} session{'s' if n != 1 else ''} · {total}"),
                 sessions=cards.rstrip("\n") or "<p>No sessions yet: run <code>audiogen build</code>.</p>",
                 css=template("page.css"), js=template("page.js"))


def _card(s: dict, author: str, collapsed: bool) -> str:
    title = one_line(s["title"])
    meta = [clock(s["length_ms"])]
    if s["track"] is not None:
        meta.insert(0, f"#{s['track']}")
    if s["chapters"]:
        meta.append(f"{len(s['chapters'])} chapters")
    if s.get("cover"):
        art = f'<img class="art" src="{_e(quote(s["cover"]))}" alt="" width="88" height="88" loading="lazy">'
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
    return _fill("session.html", slug=_e(s["slug"]), title=_e(title), artist=_e(artist(s, author)), art=art,
                 meta=_e(" · ".join(meta)), description=f'<p class="desc">{_e(desc)}</p>\n' if desc else "",
                 mp3=_e(quote(s["mp3"])), chapters=chapters, size=_size(s["size_bytes"]))


def _fill(name: str, **values: object) -> str:
    """A template with every `$name` replaced (values are inserted as given: escape them first)."""
    return Template(template(name)).substitute(values)


def write_index_html(out_dir: str | Path, sessions: list[dict], album: str | None, author: str | None) -> Path:
    path = Path(out_dir) / INDEX
    write_if_changed(path, index_html(sessions, album, author).encode("utf-8"))
    return path
