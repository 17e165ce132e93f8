"""`feed.xml`: the RSS 2.0 podcast feed a phone subscribes to (iTunes tags, Podcasting 2.0 chapters in
`<slug>.chapters.json`, Podlove Simple Chapters inline), and the channel art."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from audiogen._version import __version__
from audiogen.publish.formats import media_type
from audiogen.publish.sessions import (
    CHAPTERS_SUFFIX,
    LIBRARY_COVER,
    artist,
    clock,
    library_language,
    library_meta,
    one_line,
    session_digest,
    write_if_changed,
)
from audiogen.routine.library import APPLE_CATEGORIES as APPLE_CATEGORIES  # re-exported: the list
from audiogen.routine.library import CATEGORY_CHOICES as CATEGORY_CHOICES
from audiogen.routine.library import DEFAULT_CATEGORY, FeedSettings

FEED = "feed.xml"
INDEX = "index.html"  # the feed's <link>: the library's page
#: Apple Podcasts category of a library that sets none (`feed.category` in audiogen.yaml). The category
#: list (APPLE_CATEGORIES) lives with audiogen.yaml's model, which validates it: the routine floor may not
#: import this one.
CATEGORY = DEFAULT_CATEGORY
#: Podcasting 2.0's namespace for `podcast:guid` (a UUIDv5 of the feed URL).
PODCAST_GUID_NS = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")

NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "psc": "http://podlove.org/simple-chapters",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)
#: Namespace of the stable item guids (uuid5 of album + slug).
_GUID_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/audiogen/#episode")


def guid(album: str | None, slug: str) -> str:
    """An episode id that survives rebuilds and edits: it depends only on the album and the slug."""
    return f"audiogen:{uuid.uuid5(_GUID_NS, json.dumps([album or '', slug]))}"


def podcast_guid(feed_url: str) -> str:
    """Podcasting 2.0 `podcast:guid`: UUIDv5 of the feed URL without its scheme and trailing slashes."""
    bare = feed_url.split("://", 1)[1] if "://" in feed_url else feed_url
    return str(uuid.uuid5(PODCAST_GUID_NS, bare.rstrip("/")))


def npt(ms: int | float) -> str:
    """A Podlove Simple Chapters start: normal play time `HH:MM:SS.mmm`."""
    ms = max(0, int(round(ms)))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _settings(feed: Any) -> FeedSettings:
    """The channel settings from audiogen.yaml's `feed:` section (FeedSettings), a mapping of its keys, the
    path of a feed.xml whose settings to keep (`read_feed_settings`), or None (the defaults)."""
    if isinstance(feed, FeedSettings):
        return feed
    if isinstance(feed, str | os.PathLike):
        feed = read_feed_settings(feed)
    values = dict(feed or {})
    try:
        return FeedSettings.model_validate(values)
    except ValidationError:  # a hand-edited feed.xml read back: keep what is valid
        good = {}
        for key, value in values.items():
            try:
                FeedSettings.model_validate({key: value})
            except ValidationError:
                continue
            good[key] = value
        return FeedSettings.model_validate(good)


def read_feed_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The channel settings a feed.xml was written with (empty when unreadable), so that a feed rendered
    again for another base URL (`audiogen serve`) says the same about its owner, category, blocking..."""
    try:
        ch = ET.parse(path).getroot().find("channel")
    except (OSError, ET.ParseError):
        return {}
    if ch is None:
        return {}
    it, pc = f"{{{NS['itunes']}}}", f"{{{NS['podcast']}}}"
    out: dict[str, Any] = {}
    owner = ch.find(f"{it}owner")
    if owner is not None:
        out["owner"] = owner.findtext(f"{it}name") or None
        out["email"] = owner.findtext(f"{it}email") or None
    cat = ch.find(f"{it}category")
    if cat is not None and cat.get("text"):
        sub = cat.find(f"{it}category")
        out["category"] = cat.get("text") + (f" > {sub.get('text')}" if sub is not None and sub.get("text") else "")
    explicit = ch.findtext(f"{it}explicit")
    if explicit is not None:
        out["explicit"] = explicit.strip().lower() in ("true", "yes")
    out["copyright"] = ch.findtext("copyright") or False
    locked = ch.findtext(f"{pc}locked")
    if locked is not None:
        out["locked"] = locked.strip().lower() == "yes"
    out["private"] = (ch.findtext(f"{pc}block") or ch.findtext(f"{it}block") or "").strip().lower() == "yes"
    return out


def _copyright(published: dict[str, int], author: str) -> str | None:
    years = sorted({_utc(t).year for t in published.values()})
    if not years:
        return None
    span = str(years[0]) if years[0] == years[-1] else f"{years[0]}\u2013{years[-1]}"
    return f"\u00a9 {span} {author}"


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
             *, chapters: bool = True, feed: Any = None, fragments: dict | None = None,
             digests: dict | None = None) -> str:
    """The RSS 2.0 podcast feed as text. URLs are relative unless `base_url` is given (apps need it).

    `feed`: the channel settings (audiogen.yaml's `feed:` section, a mapping of its keys, or the path of
    a feed.xml to take them from); None: the defaults. `fragments`: items serialised by an earlier call,
    by what each is made of (updated to this feed's items); the text is the same with or without it.
    `digests`: the sessions' `session_digest`s, shared with the other indexes.
    """
    album, author = library_meta(sessions, album, author)
    settings = _settings(feed)
    published = publication_times(sessions)
    rss = ET.Element("rss", {"version": "2.0"})
    ch = _sub(rss, "channel")
    link = _url(base_url, INDEX)
    _sub(ch, "title", album)
    _sub(ch, "link", link)
    n = len(sessions)
    total = clock(sum(s["length_ms"] for s in sessions))
    _sub(ch, "description", f"{album}: {n} guided session{'s' if n != 1 else ''} ({total}) by {author}.")
    language = library_language(sessions)  # what most sessions are in, as a BCP 47 tag (pt-BR)
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
    rights = _copyright(published, author) if settings.copyright is None else settings.copyright
    if rights:
        _sub(ch, "copyright", one_line(rights))
    _sub(ch, "itunes:author", author)
    _sub(ch, "itunes:image", href=image)
    email = settings.email or None
    owner = _sub(ch, "itunes:owner")
    _sub(owner, "itunes:name", one_line(settings.owner or author))
    if email:  # Apple mails a code here to verify ownership; without one, only the name
        _sub(owner, "itunes:email", email)
    top, _, sub = settings.category.partition(" > ")  # validated: one of CATEGORY_CHOICES
    cat = _sub(ch, "itunes:category", text=top)
    if sub:
        _sub(cat, "itunes:category", text=sub)
    explicit = "true" if settings.explicit else "false"
    _sub(ch, "itunes:explicit", explicit)
    serial = bool(sessions) and all(s["track"] is not None for s in sessions)
    _sub(ch, "itunes:type", "serial" if serial else "episodic")
    if settings.private:
        _sub(ch, "itunes:block", "Yes")
        _sub(ch, "podcast:block", "yes")
    _sub(ch, "podcast:locked", "yes" if settings.locked else "no", **({"owner": email} if email else {}))
    # podcast:guid names the feed by its URL: a feed with relative URLs (no base URL) has no URL yet, and
    # a guid made up now would not match the one apps derive once it is published, so there is none.
    if base_url:
        _sub(ch, "podcast:guid", podcast_guid(_url(base_url, FEED)))

    if fragments is None:
        for s in sessions:
            _item(_sub(ch, "item"), s, album, author, base_url, published, explicit, chapters)
        ET.indent(rss, space=" ")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(rss, encoding="unicode") + "\n"
    # the same bytes, each item serialised alone and kept by what it is made from: a library in which one
    # session changed serialises one item, not all of them
    items, used, keys = [], set(), set()
    for s in sessions:
        key, text, prefixes = _item_text(s, album, author, base_url, published, explicit, chapters, fragments,
                                         digests)
        items.append(text)
        used.update(prefixes)
        keys.add(key)
    for key in [k for k in fragments if k not in keys]:  # items no longer in the feed
        del fragments[key]
    if items:  # where the items go, carrying their namespaces, so the root declares the same ones
        _sub(ch, "item", **{f"{{{NS[p]}}}{_SLOT}": "" for p in sorted(used)})
    ET.indent(rss, space=" ")
    text = ET.tostring(rss, encoding="unicode")
    if items:
        start = text.index("<item ")
        end = text.index("/>", start) + 2
        text = text[:start] + "\n  ".join(items) + text[end:]
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


#: The attribute that marks where a feed's items go while the channel is serialised (never in the output).
_SLOT = "audiogen-items"
_XMLNS = re.compile(r' xmlns:(\w+)="[^"]*"')


def _item_text(s: dict, album: str, author: str, base_url: str | None, published: dict, explicit: str,
               chapters: bool, fragments: dict, digests: dict | None = None) -> tuple[str, str, list[str]]:
    """(key, text, prefixes): one `<item>` as `feed_xml` writes it inside the channel (indented for its
    depth, without the namespace declarations the root carries) and the namespace prefixes it uses; from `fragments`
    (key -> [text, prefixes]) when it holds this item, which is then kept there."""
    key = hashlib.sha256(json.dumps([session_digest(s, digests), album, author, base_url, published[s["slug"]],
                                     explicit, chapters],
                                    sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()
    kept = fragments.get(key)
    if not (isinstance(kept, list) and len(kept) == 2 and isinstance(kept[0], str)):
        item = ET.Element("item")
        _item(item, s, album, author, base_url, published, explicit, chapters)
        ET.indent(item, space=" ", level=2)
        text = ET.tostring(item, encoding="unicode")
        head = text[:text.index(">")]
        prefixes = sorted(_XMLNS.findall(head))
        kept = [_XMLNS.sub("", head) + text[len(head):], prefixes]
    fragments[key] = kept
    return key, kept[0], kept[1]


def _item(item: ET.Element, s: dict, album: str, author: str, base_url: str | None, published: dict,
          explicit: str, chapters: bool) -> None:
    """Fill one session's `<item>`."""
    title = one_line(s["title"])
    text, notes_html = _show_notes(s)
    _sub(item, "title", title)
    _sub(item, "itunes:title", title)
    _sub(item, "description", text)
    if notes_html:
        _sub(item, "content:encoded", notes_html)
    _sub(item, "enclosure", url=_url(base_url, s["mp3"]), length=str(s["size_bytes"]),
         type=media_type(s["mp3"]))
    _sub(item, "guid", guid(album, s["slug"]), isPermaLink="false")
    _sub(item, "pubDate", format_datetime(_utc(published[s["slug"]])))
    _sub(item, "itunes:duration", str(int(round(s["length_ms"] / 1000))))
    _sub(item, "itunes:author", artist(s, author))
    if s.get("cover"):
        _sub(item, "itunes:image", href=_url(base_url, s["cover"]))
    if s["track"] is not None:
        _sub(item, "itunes:episode", str(s["track"]))
    _sub(item, "itunes:episodeType", "full")
    _sub(item, "itunes:explicit", explicit)
    if chapters and s["chapters"]:
        _sub(item, "podcast:chapters", url=_url(base_url, chapters_file(s)), type="application/json+chapters")
        # Podlove Simple Chapters inline too: gPodder (podcastparser) reads these, not podcast:chapters.
        psc = _sub(item, "psc:chapters", version="1.2")
        for c in s["chapters"]:
            _sub(psc, "psc:chapter", start=npt(int(c.get("start_ms", 0))), title=one_line(c.get("title")))


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


def _file_stamp(path: Path) -> list[int] | None:
    """A file's inode, size and mtime (written atomically, a new file is a new inode); None when missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


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
               base_url: str | None = None, feed: Any = None, fragments: dict | None = None,
               chapters: dict | None = None, digests: dict | None = None) -> Path:
    """`feed.xml`, each session's `<slug>.chapters.json` and the channel art `library_cover.png`.
    `feed` and `fragments`: as for `feed_xml`. `chapters`: the chapters files written by an earlier call
    (file name -> [hash of the chapters, [inode, size, mtime_ns] of the file]; updated to this call's): a
    file whose chapters and stat are both unchanged is neither serialised nor read back."""
    out_dir = Path(out_dir)
    album, author = library_meta(sessions, album, author)
    kept: dict[str, list] = {}
    for s in sessions:
        if s["chapters"]:
            name = chapters_file(s)
            key = None
            if chapters is not None:
                key = hashlib.sha256(f"{__version__}\0{session_digest(s, digests)}".encode()).hexdigest()
                if chapters.get(name) == [key, _file_stamp(out_dir / name)]:
                    kept[name] = chapters[name]
                    continue
            data = json.dumps(chapters_json(s), indent=1, ensure_ascii=False) + "\n"
            write_if_changed(out_dir / name, data.encode("utf-8"))
            if key is not None:
                kept[name] = [key, _file_stamp(out_dir / name)]
    if chapters is not None:
        chapters.clear()
        chapters.update(kept)
    write_library_cover(out_dir, album, author)
    path = out_dir / FEED
    write_if_changed(path, feed_xml(sessions, album, author, base_url, feed=feed, fragments=fragments,
                                        digests=digests).encode("utf-8"))
    return path
