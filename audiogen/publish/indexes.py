"""A library's indexes, all at once: playlist, feed (with chapters and channel art) and page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audiogen.publish.feed import FEED, INDEX, NS, feed_xml, write_feed
from audiogen.publish.page import write_index_html, write_web_app
from audiogen.publish.playlist import PLAYLIST, write_m3u8
from audiogen.publish.sessions import collect_sessions

__all__ = ["FEED", "INDEX", "NS", "PLAYLIST", "collect_sessions", "feed_xml", "write_indexes"]


def write_indexes(out_dir: str | Path, album: str | None, author: str | None,
                  base_url: str | None = None, feed: Any = None) -> list[dict]:
    """Write playlist.m3u8, feed.xml (+ chapters JSON, channel art), index.html and, for the page as a
    phone app, manifest.webmanifest and sw.js for `out_dir`.

    `feed`: the feed's channel settings (audiogen.yaml's `feed:` section; None: the defaults).

    Returns the sessions listed. Files whose content did not change are not rewritten.
    """
    sessions = collect_sessions(out_dir)
    write_m3u8(out_dir, sessions, album, author)
    write_feed(out_dir, sessions, album, author, base_url, feed)
    write_index_html(out_dir, sessions, album, author)
    write_web_app(out_dir, sessions, album, author)
    return sessions
