"""A library's indexes, all at once: playlist, feed (with chapters and channel art) and page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audiogen.publish.feed import FEED, INDEX, NS, feed_xml, write_feed
from audiogen.publish.page import write_index_html, write_web_app
from audiogen.publish.playlist import PLAYLIST, write_m3u8
from audiogen.publish.sessions import collect_sessions, listing, load_index_memo, save_index_memo

__all__ = ["FEED", "INDEX", "NS", "PLAYLIST", "collect_sessions", "feed_xml", "write_indexes"]


def write_indexes(out_dir: str | Path, album: str | None, author: str | None,
                  base_url: str | None = None, feed: Any = None) -> list[dict]:
    """Write playlist.m3u8, feed.xml (+ chapters JSON, channel art), index.html and, for the page as a
    phone app, manifest.webmanifest and sw.js for `out_dir`.

    `feed`: the feed's channel settings (audiogen.yaml's `feed:` section; None: the defaults).

    Returns the sessions listed. Files whose content did not change are not rewritten.
    """
    # what the last build read and made (sidecars, feed items, page cards), by what each came from: a
    # library in which one session changed reads one sidecar and serialises one item and one card
    memo = load_index_memo(out_dir)
    entries = listing(out_dir)  # one listing of the folder: its stats are shared by the sidecars, cards and sw.js
    sessions = collect_sessions(out_dir, memo.setdefault("sidecars", {}), entries)
    digests: dict[int, str] = {}  # each session hashed once for its feed item, chapters file and card
    write_m3u8(out_dir, sessions, album, author)
    write_feed(out_dir, sessions, album, author, base_url, feed, fragments=memo.setdefault("feed", {}),
               chapters=memo.setdefault("chapters", {}), digests=digests)
    write_index_html(out_dir, sessions, album, author, fragments=memo.setdefault("page", {}),
                     entries=entries, digests=digests)
    write_web_app(out_dir, sessions, album, author, entries)
    save_index_memo(out_dir, memo)
    return sessions
