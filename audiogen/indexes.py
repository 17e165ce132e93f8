"""Library indexes built from the `<slug>.json` sidecars of an output folder.

`playlist.m3u8` (any player), `feed.xml` (a podcast feed a phone can subscribe to, with
Podcasting 2.0 `<slug>.chapters.json`) and `index.html` (one self-contained page that plays every
session and jumps to its chapters). They are built from the sidecars, not from a build's results,
so sessions skipped as unchanged are listed too, and rebuilding nothing rewrites identical files.
"""

from __future__ import annotations

import html
import json
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

from audiogen.routine.atomic import write_bytes, write_text

PLAYLIST = "playlist.m3u8"
FEED = "feed.xml"
INDEX = "index.html"
#: The feed's (channel's) artwork; slugs never contain "_", so no session can be called this.
LIBRARY_COVER = "library_cover.png"
CHAPTERS_SUFFIX = ".chapters.json"
#: Apple Podcasts category (from its fixed list).
CATEGORY = "Health & Fitness"
DEFAULT_ALBUM = "Guided sessions"

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


# -- reading --------------------------------------------------------------------------------------
def _is_file_name(name: object) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name \
        and not name.startswith(".")


def collect_sessions(out_dir: str | Path) -> list[dict]:
    """Every session in `out_dir`: each `*.json` sidecar that names an existing `mp3` beside it.

    Each dict is the sidecar plus `slug` (default: the sidecar's stem), `size_bytes` and `mtime`
    (seconds) of the MP3; `cover` and `lrc` are set to None when their file is missing. Sorted by
    track number (sessions without one last), then title. Unreadable sidecars are ignored.
    """
    out_dir = Path(out_dir)
    sessions = []
    for path in sorted(out_dir.glob("*.json")):
        if path.name.startswith(".") or path.name.endswith(CHAPTERS_SUFFIX):
            continue
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or not _is_file_name(data.get("mp3")):
            continue
        mp3 = out_dir / data["mp3"]
        try:
            st = mp3.stat()
        except OSError:
            continue
        if not mp3.is_file():
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
        for key in ("cover", "lrc"):
            if not (_is_file_name(data.get(key)) and (out_dir / data[key]).is_file()):
                session[key] = None
        sessions.append(session)
    sessions.sort(key=lambda s: (s["track"] is None, s["track"] or 0, s["title"].casefold(), s["slug"]))
    return sessions


def library_meta(sessions: list[dict], album: str | None = None, author: str | None = None) -> tuple[str, str]:
    """The library's title and author: the given ones, else the sessions' most common album/artist."""

    def common(key: str) -> str | None:
        values = [s.get(key) for s in sessions if isinstance(s.get(key), str) and s.get(key).strip()]
        return max(values, key=values.count) if values else None

    return (album or common("album") or DEFAULT_ALBUM), (author or common("artist") or "audiogen")


# -- small helpers --------------------------------------------------------------------------------
def _one_line(text: object) -> str:
    return " ".join(str(text or "").split())


def clock(ms: int | float, *, floor: bool = False) -> str:
    """``m:ss`` or ``h:mm:ss``, rounded (`floor`: truncated, for a chapter start a player seeks to)."""
    s = int(max(0, ms) // 1000) if floor else int(round(max(0, ms) / 1000))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def guid(album: str | None, slug: str) -> str:
    """An episode id that survives rebuilds and edits: it depends only on the album and the slug."""
    return f"audiogen:{uuid.uuid5(_GUID_NS, json.dumps([album or '', slug]))}"


def _url(base_url: str | None, name: str) -> str:
    rel = quote(name)
    if not base_url:
        return rel
    return base_url.rstrip("/") + "/" + rel


def _artist(session: dict, author: str) -> str:
    return _one_line(session.get("artist") or author)


# -- playlist -------------------------------------------------------------------------------------
def playlist_text(sessions: list[dict], album: str | None, author: str | None = None) -> str:
    album, author = library_meta(sessions, album, author)
    lines = ["#EXTM3U", f"#PLAYLIST:{_one_line(album)}"]
    for s in sessions:
        seconds = int(round(s["length_ms"] / 1000))
        lines.append(f"#EXTINF:{seconds},{_artist(s, author)} - {_one_line(s['title'])}")
        lines.append(s["mp3"])
    return "\n".join(lines) + "\n"


def write_m3u8(out_dir: str | Path, sessions: list[dict], album: str | None, author: str | None = None) -> Path:
    """`playlist.m3u8`: extended M3U in UTF-8 with the sessions' relative file names, in order."""
    path = Path(out_dir) / PLAYLIST
    _write_if_changed(path, playlist_text(sessions, album, author).encode("utf-8"))
    return path


# -- podcast feed ---------------------------------------------------------------------------------
def chapters_json(session: dict) -> dict:
    """Podcasting 2.0 JSON chapters (https://github.com/Podcastindex-org/podcast-namespace, chapters.md)."""
    return {
        "version": "1.2.0",
        "chapters": [
            {"startTime": round(int(c.get("start_ms", 0)) / 1000, 3),
             "endTime": round(int(c.get("end_ms", 0)) / 1000, 3),
             "title": _one_line(c.get("title"))}
            for c in session["chapters"]
        ],
    }


def chapters_file(session: dict) -> str:
    return f"{session['slug']}{CHAPTERS_SUFFIX}"


def _show_notes(session: dict) -> tuple[str, str]:
    """Plain-text and HTML episode notes: the description, then `m:ss Title` per chapter (apps that
    ignore chapter tags often turn such timestamps into links)."""
    desc = _one_line(session.get("description"))
    stamps = [f"{clock(c.get('start_ms', 0), floor=True)} {_one_line(c.get('title'))}" for c in session["chapters"]]
    text = "\n".join(([desc, ""] if desc else []) + stamps)
    parts = [f"<p>{html.escape(desc)}</p>"] if desc else []
    if stamps:
        parts.append("<p>" + "<br>".join(html.escape(s) for s in stamps) + "</p>")
    return text or _one_line(session["title"]), "".join(parts)


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

    for s in sessions:
        item = _sub(ch, "item")
        title = _one_line(s["title"])
        text, notes_html = _show_notes(s)
        _sub(item, "title", title)
        _sub(item, "itunes:title", title)
        _sub(item, "description", text)
        if notes_html:
            _sub(item, "content:encoded", notes_html)
        _sub(item, "enclosure", url=_url(base_url, s["mp3"]), length=str(s["size_bytes"]), type="audio/mpeg")
        _sub(item, "guid", guid(album, s["slug"]), isPermaLink="false")
        _sub(item, "pubDate", format_datetime(_utc(s["mtime"])))
        _sub(item, "itunes:duration", str(int(round(s["length_ms"] / 1000))))
        _sub(item, "itunes:author", _artist(s, author))
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


def _utc(mtime: float) -> datetime:
    return datetime.fromtimestamp(int(mtime), tz=UTC)


def write_library_cover(out_dir: str | Path, album: str, author: str | None) -> Path:
    """The channel art, drawn again only when the album, author or audiogen version changed."""
    from audiogen.cover import cover_matches, make_cover

    path = Path(out_dir) / LIBRARY_COVER
    try:
        if cover_matches(path.read_bytes(), album, author):
            return path
    except OSError:
        pass
    _write_if_changed(path, make_cover(album, author))
    return path


def write_feed(out_dir: str | Path, sessions: list[dict], album: str | None, author: str | None,
               base_url: str | None = None) -> Path:
    """`feed.xml`, each session's `<slug>.chapters.json` and the channel art `library_cover.png`."""
    out_dir = Path(out_dir)
    album, author = library_meta(sessions, album, author)
    for s in sessions:
        if s["chapters"]:
            data = json.dumps(chapters_json(s), indent=1, ensure_ascii=False) + "\n"
            _write_if_changed(out_dir / chapters_file(s), data.encode("utf-8"))
    write_library_cover(out_dir, album, author)
    path = out_dir / FEED
    _write_if_changed(path, feed_xml(sessions, album, author, base_url).encode("utf-8"))
    return path


# -- web page -------------------------------------------------------------------------------------
_CSS = """
:root{color-scheme:light dark;--bg:#f5f2ee;--fg:#2a2622;--muted:#6d655d;--card:#fffdfa;--line:#e4ddd4;
--accent:#3d6e6a;--accent-fg:#fff;--now:#e3efec}
@media (prefers-color-scheme:dark){:root{--bg:#171614;--fg:#ece7e1;--muted:#a59d94;--card:#22201d;
--line:#36322d;--accent:#7fb8b1;--accent-fg:#10201e;--now:#233532}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:17px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
sans-serif}
main{max-width:42rem;margin:0 auto;padding:1rem .75rem 3rem}
header{padding:.5rem .25rem 1rem}
h1{font-size:1.6rem;line-height:1.2;margin:.25rem 0}
.by,.meta{color:var(--muted);font-size:.95rem;margin:0}
.links{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:.75rem}
.links a,.dl{display:inline-flex;align-items:center;min-height:44px;padding:.5rem .9rem;border-radius:999px;
border:1px solid var(--line);background:var(--card);color:var(--fg);text-decoration:none;font-size:.95rem}
.hint{color:var(--muted);font-size:.85rem;margin:.75rem 0 0}
.feedurl{width:100%;margin-top:.25rem;min-height:44px;padding:.5rem .75rem;font:inherit;font-size:.85rem;
border:1px solid var(--line);border-radius:.6rem;background:var(--card);color:var(--muted)}
.session{background:var(--card);border:1px solid var(--line);border-radius:1rem;padding:1rem;margin:1rem 0;
box-shadow:0 1px 2px rgba(0,0,0,.05)}
.top{display:flex;gap:.9rem;align-items:center}
.art{width:88px;height:88px;flex:none;border-radius:.7rem;object-fit:cover;background:var(--line)}
h2{font-size:1.2rem;line-height:1.25;margin:0 0 .2rem}
.desc{margin:.75rem 0 0;color:var(--fg)}
audio{display:block;width:100%;margin:.9rem 0 .25rem}
details{margin-top:.5rem}
summary{min-height:44px;display:flex;align-items:center;cursor:pointer;color:var(--accent);font-weight:600;
list-style:none}
summary::-webkit-details-marker{display:none}
summary::before{content:"";width:0;height:0;border:.36em solid transparent;border-left:.5em solid currentColor;
margin-right:.45em;transform-origin:30% 50%}
details[open] summary::before{transform:rotate(90deg)}
ol{list-style:none;margin:0;padding:0}
.ch{display:flex;width:100%;gap:.75rem;align-items:center;min-height:48px;padding:.55rem .6rem;margin:0;
border:0;border-top:1px solid var(--line);background:none;color:var(--fg);font:inherit;text-align:left;
cursor:pointer;border-radius:0}
.ch:active,.ch[aria-current=true]{background:var(--now)}
.ch[aria-current=true] .t{color:var(--accent);font-weight:600}
.t{flex:none;min-width:3.6em;font-variant-numeric:tabular-nums;color:var(--muted)}
.dl{margin-top:.75rem}
footer{color:var(--muted);font-size:.85rem;text-align:center;margin-top:2rem}
"""

_JS = r"""
(function(){
  function card(el){return el.closest('.session');}
  function seek(a,t){
    if(a.readyState>=1){a.currentTime=t;}
    else{a.addEventListener('loadedmetadata',function(){a.currentTime=t;},{once:true});}
    var p=a.play(); if(p&&p.catch){p.catch(function(){});}
  }
  document.addEventListener('click',function(ev){
    var b=ev.target.closest('button[data-t]'); if(!b){return;}
    seek(card(b).querySelector('audio'),parseFloat(b.getAttribute('data-t')));
  });
  document.addEventListener('play',function(ev){
    var a=ev.target; if(a.tagName!=='AUDIO'){return;}
    document.querySelectorAll('audio').forEach(function(o){if(o!==a){o.pause();}});
    var c=card(a), d=c.querySelector('details'); if(d){d.open=true;}
    if('mediaSession' in navigator&&window.MediaMetadata){
      var img=c.querySelector('img.art');
      navigator.mediaSession.metadata=new MediaMetadata({title:c.getAttribute('data-title')||'',
        artist:c.getAttribute('data-artist')||'',album:document.body.getAttribute('data-album')||'',
        artwork:img?[{src:img.src}]:[]});
    }
  },true);
  document.addEventListener('timeupdate',function(ev){
    var a=ev.target; if(a.tagName!=='AUDIO'){return;}
    var now=null;
    card(a).querySelectorAll('button[data-t]').forEach(function(b){
      if(parseFloat(b.getAttribute('data-t'))<=a.currentTime+0.05){now=b;}
    });
    card(a).querySelectorAll('button[data-t]').forEach(function(b){
      if(b===now){b.setAttribute('aria-current','true');}else{b.removeAttribute('aria-current');}
    });
  },true);
  var f=document.getElementById('feedurl');
  if(f){f.value=new URL(f.getAttribute('data-href'),location.href).href;
    f.addEventListener('focus',function(){f.select();});}
})();
"""


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
    out = [
        "<!doctype html>",
        '<html lang="' + _e(next((s.get("language") for s in sessions if isinstance(s.get("language"), str)),
                                 "en")) + '">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        '<meta name="generator" content="audiogen">',
        f"<title>{_e(album)}</title>",
        f'<link rel="alternate" type="application/rss+xml" title="{_e(album)}" href="{FEED}">',
        f'<link rel="icon" type="image/png" href="{LIBRARY_COVER}">',
        f'<link rel="apple-touch-icon" href="{LIBRARY_COVER}">',
        f"<style>{_CSS}</style>",
        "</head>",
        f'<body data-album="{_e(album)}">',
        "<main>",
        "<header>",
        f"<h1>{_e(album)}</h1>",
        f'<p class="by">{_e(author)} · {n} session{"s" if n != 1 else ""} · {total}</p>',
        '<nav class="links">'
        f'<a href="{FEED}">Podcast feed</a><a href="{PLAYLIST}">Playlist (M3U)</a></nav>',
        '<p class="hint"><label for="feedurl">To subscribe, add this address in a podcast app:</label></p>',
        f'<input class="feedurl" id="feedurl" readonly data-href="{FEED}" value="{FEED}">',
        "</header>",
    ]
    for s in sessions:
        title = _one_line(s["title"])
        meta = [clock(s["length_ms"])]
        if s["track"] is not None:
            meta.insert(0, f"#{s['track']}")
        if s["chapters"]:
            meta.append(f"{len(s['chapters'])} chapters")
        out.append(f'<article class="session" id="{_e(s["slug"])}" data-title="{_e(title)}" '
                   f'data-artist="{_e(_artist(s, author))}">')
        out.append('<div class="top">')
        if s.get("cover"):
            out.append(f'<img class="art" src="{_e(quote(s["cover"]))}" alt="" width="88" height="88" '
                       'loading="lazy">')
        else:
            out.append('<div class="art" aria-hidden="true"></div>')
        out.append(f'<div><h2>{_e(title)}</h2><p class="meta">{_e(" · ".join(meta))}</p></div>')
        out.append("</div>")
        if _one_line(s.get("description")):
            out.append(f'<p class="desc">{_e(_one_line(s["description"]))}</p>')
        out.append(f'<audio controls preload="metadata" src="{_e(quote(s["mp3"]))}"></audio>')
        if s["chapters"]:
            out.append(f'<details class="chapters"{"" if collapsed else " open"}>'
                       f'<summary>Chapters ({len(s["chapters"])})</summary><ol>')
            for c in s["chapters"]:
                start = int(c.get("start_ms", 0))
                name = _e(_one_line(c.get("title")))
                out.append(f'<li><button class="ch" type="button" data-t="{start / 1000:.3f}">'
                           f'<span class="t">{clock(start, floor=True)}</span><span>{name}</span></button></li>')
            out.append("</ol></details>")
        out.append(f'<a class="dl" href="{_e(quote(s["mp3"]))}" download>Download MP3 ({_size(s["size_bytes"])})</a>')
        out.append("</article>")
    if not sessions:
        out.append("<p>No sessions yet: run <code>audiogen build</code>.</p>")
    out += ["<footer>Made with audiogen</footer>", "</main>", f"<script>{_JS}</script>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def write_index_html(out_dir: str | Path, sessions: list[dict], album: str | None, author: str | None) -> Path:
    path = Path(out_dir) / INDEX
    _write_if_changed(path, index_html(sessions, album, author).encode("utf-8"))
    return path


# -- all of them ----------------------------------------------------------------------------------
def write_indexes(out_dir: str | Path, album: str | None, author: str | None,
                  base_url: str | None = None) -> list[dict]:
    """Write playlist.m3u8, feed.xml (+ chapters JSON, channel art) and index.html for `out_dir`.

    Returns the sessions listed. Files whose content did not change are not rewritten.
    """
    sessions = collect_sessions(out_dir)
    write_m3u8(out_dir, sessions, album, author)
    write_feed(out_dir, sessions, album, author, base_url)
    write_index_html(out_dir, sessions, album, author)
    return sessions


def _write_if_changed(path: Path, data: bytes) -> None:
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
