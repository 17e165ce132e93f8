"""`feed.xml`: the RSS 2.0 podcast feed a phone subscribes to (iTunes tags, Podcasting 2.0 chapters in
`<slug>.chapters.json`), and the channel art."""

from __future__ import annotations

import html
import json
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

from audiogen.publish.sessions import (
    CHAPTERS_SUFFIX,
    LIBRARY_COVER,
    artist,
    clock,
    library_meta,
    one_line,
    write_if_changed,
)

FEED = "feed.xml"
INDEX = "index.html"  # the feed's <link>: the library's page
#: Apple Podcasts category (from its fixed list).
CATEGORY = "Health & Fitness"

NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)
#: Namespace of the stable item guids (uuid5 of album + slug).
_GUID_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/audiogen/#episode")


def guid(album: str | None, slug: str) -> str:
    """An episode id that survives rebuilds and edits: it depends only on the album and the slug."""
    return f"audiogen:{uuid.uuid5(_GUID_NS, json.dumps([album or '', slug]))}"


def _url(base_url: str | None, name: str) -> str:
    rel = quote(name)
    if not base_url:
        return rel
    return base_url.rstrip("/") + "/" + rel


def chapters_json(session: dict) -> dict:
    """Podcasting 2.0 JSON chapters (https://github.com/Podcastindex-org/podcast-namespace, chapters.md)."""
    return {
        "version": "1.2.0",
        "chapters": [
            {"startTime": round(int(c.get("start_ms", 0)) / 1000, 3),
             "endTime": round(int(c.get("end_ms", 0)) / 1000, 3),
             "title": one_line(c.get("title"))}
            for c in session["chapters"]
        ],
    }


def chapters_file(session: dict) -> str:
    return f"{session['slug']}{CHAPTERS_SUFFIX}"


def _show_notes(session: dict) -> tuple[str, str]:
    """Plain-text and HTML episode notes: the description, then `m:ss Title` per chapter (apps that
    ignore chapter tags often turn such timestamps into links)."""
    desc = one_line(session.get("description"))
    stamps = [f"{clock(c.get('start_ms', 0), floor=True)} {one_line(c.get('title'))}" for c in session["chapters"]]
    text = "\n".join(([desc, ""] if desc else []) + stamps)
    parts = [f"<p>{html.escape(desc)}</p>"] if desc else []
    if stamps:
        parts.append("<p>" + "<br>".join(html.escape(s) for s in stamps) + "</p>")
    return text or one_line(session["title"]), "".join(parts)


def _sub(parent: ET.Element, tag: str, content: object = None, /, **attrs: str) -> ET.Element:
    prefix, _, local = tag.rpartition(":")
    el = ET.SubElement(parent, f"{{{NS[prefix]}}}{local}" if prefix else tag, attrs)
    if content is not None:
        el.text = str(content)
    return el


def feed_xml(sessions: list[dict], album: str | None, author: str | None, base_url: str | None = None,
             *, chapters: bool = True) -> str:
    """The RSS 2.0 podcast feed as text. URLs are relative unless `base_url` is given (apps need it)."""
    album, author = library_meta(sessions, album, author)
    rss = ET.Element("rss", {"version": "2.0"})
    ch = _sub(rss, "channel")
    link = _url(base_url, INDEX)
    _sub(ch, "title", album)
    _sub(ch, "link", link)
    n = len(sessions)
    total = clock(sum(s["length_ms"] for s in sessions))
    _sub(ch, "description", f"{album}: {n} guided session{'s' if n != 1 else ''} ({total}) by {author}.")
    language = next((s.get("language") for s in sessions if isinstance(s.get("language"), str)), None)
    if language:
        _sub(ch, "language", language)
    _sub(ch, "generator", "audiogen")
    if sessions:
        _sub(ch, "lastBuildDate", format_datetime(_utc(max(s["mtime"] for s in sessions))))
    if base_url:
        _sub(ch, "atom:link", href=_url(base_url, FEED), rel="self", type="application/rss+xml")
    image = _url(base_url, LIBRARY_COVER)
    img = _sub(ch, "image")
    _sub(img, "url", image)
    _sub(img, "title", album)
    _sub(img, "link", link)
    _sub(ch, "itunes:author", author)
    _sub(ch, "itunes:image", href=image)
    _sub(ch, "itunes:category", text=CATEGORY)
    _sub(ch, "itunes:explicit", "false")
    serial = bool(sessions) and all(s["track"] is not None for s in sessions)
    _sub(ch, "itunes:type", "serial" if serial else "episodic")

    published = publication_times(sessions)
    for s in sessions:
        item = _sub(ch, "item")
        title = one_line(s["title"])
        text, notes_html = _show_notes(s)
        _sub(item, "title", title)
        _sub(item, "itunes:title", title)
        _sub(item, "description", text)
        if notes_html:
            _sub(item, "content:encoded", notes_html)
        _sub(item, "enclosure", url=_url(base_url, s["mp3"]), length=str(s["size_bytes"]), type="audio/mpeg")
        _sub(item, "guid", guid(album, s["slug"]), isPermaLink="false")
        _sub(item, "pubDate", format_datetime(_utc(published[s["slug"]])))
        _sub(item, "itunes:duration", str(int(round(s["length_ms"] / 1000))))
        _sub(item, "itunes:author", artist(s, author))
        if s.get("cover"):
            _sub(item, "itunes:image", href=_url(base_url, s["cover"]))
        if s["track"] is not None:
            _sub(item, "itunes:episode", str(s["track"]))
        _sub(item, "itunes:episodeType", "full")
        _sub(item, "itunes:explicit", "false")
        if chapters and s["chapters"]:
            _sub(item, "podcast:chapters", url=_url(base_url, chapters_file(s)), type="application/json+chapters")
    ET.indent(rss, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(rss, encoding="unicode") + "\n"


def publication_times(sessions: list[dict]) -> dict[str, int]:
    """Each session's pubDate (seconds since the epoch) by slug: when it was first built (the manifest keeps
    that, so a re-render never moves it; the MP3's mtime for an output built before audiogen recorded it).
    A library's numbered sessions are dated a minute apart from the earliest, in track order (variants
    after their routine), so apps list the library in order however the builds finished."""
    def first(s: dict) -> int:
        value = s.get("first_built")
        return value if isinstance(value, int) and not isinstance(value, bool) else int(s["mtime"])

    out = {s["slug"]: first(s) for s in sessions}
    numbered = [s for s in sessions if s["track"] is not None]  # collect_sessions sorted them by track
    if numbered:
        start = min(first(s) for s in numbered)
        out.update({s["slug"]: start + 60 * i for i, s in enumerate(numbered)})
    return out


def _utc(mtime: float) -> datetime:
    return datetime.fromtimestamp(int(mtime), tz=UTC)


def write_library_cover(out_dir: str | Path, album: str, author: str | None) -> Path:
    """The channel art, drawn again only when the album, author or audiogen version changed."""
    from audiogen.publish.cover import cover_matches, make_cover

    path = Path(out_dir) / LIBRARY_COVER
    try:
        if cover_matches(path.read_bytes(), album, author):
            return path
    except OSError:
        pass
    write_if_changed(path, make_cover(album, author))
    return path


def write_feed(out_dir: str | Path, sessions: list[dict], album: str | None, author: str | None,
               base_url: str | None = None) -> Path:
    """`feed.xml`, each session's `<slug>.chapters.json` and the channel art `library_cover.png`."""
    out_dir = Path(out_dir)
    album, author = library_meta(sessions, album, author)
    for s in sessions:
        if s["chapters"]:
            data = json.dumps(chapters_json(s), indent=1, ensure_ascii=False) + "\n"
            write_if_changed(out_dir / chapters_file(s), data.encode("utf-8"))
    write_library_cover(out_dir, album, author)
    path = out_dir / FEED
    write_if_changed(path, feed_xml(sessions, album, author, base_url).encode("utf-8"))
    return path
