"""The page and the feed carry the library's language: `<html lang>`, a session in another language marked
as such, the feed's `<language>` and the web app manifest's `lang`, read back by parsers that did not write them."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import feedparser
import pytest

from audiogen.build import BuildOptions, build
from audiogen.publish.sessions import language_tag, library_language

ROUTINE = """\
title: {title}
language: {lang}
voice: {{engine: espeak}}
cue: none
steps:
  - title: Eins
    say: "{say}"
"""


class _Langs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.html_lang: str | None = None
        self.sessions: dict[str, str | None] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag == "article" and "session" in (a.get("class") or ""):
            self.sessions[a["id"]] = a.get("lang")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    lib = tmp_path_factory.mktemp("lib")
    (lib / "audiogen.yaml").write_text("album: Atmen\nauthor: Test\n")
    (lib / "a.yaml").write_text(ROUTINE.format(title="Atmen", lang="de", say="Atme ruhig."))
    (lib / "b.yaml").write_text(ROUTINE.format(title="Dehnen", lang="de-at", say="Dehne dich."))
    (lib / "c.yaml").write_text(ROUTINE.format(title="Respirer", lang="fr", say="Respirez."))
    results = build([lib], BuildOptions())
    assert all(r.status == "built" for r in results), [r.error for r in results]
    return lib / "output"


def test_the_page_is_in_the_librarys_language_and_marks_the_other_session(library):
    page = _Langs()
    page.feed((library / "index.html").read_text(encoding="utf-8"))
    assert page.html_lang == "de"
    assert page.sessions == {"atmen": None, "dehnen": "de-AT", "respirer": "fr"}


def test_the_feed_and_the_web_app_name_the_language(library):
    feed = feedparser.parse(str(library / "feed.xml"))
    assert feed.feed.language == "de"
    manifest = json.loads((library / "manifest.webmanifest").read_text(encoding="utf-8"))
    assert manifest["lang"] == "de"


@pytest.mark.parametrize(("code", "tag"), [
    ("de", "de"), ("DE", "de"), ("pt_br", "pt-BR"), ("zh-hant-tw", "zh-Hant-TW"), ("en-GB", "en-GB"),
    ("", None), ("d", None), ("de-<x>", None), (None, None),
])
def test_language_codes_become_bcp47_tags(code, tag):
    assert language_tag(code) == tag


def test_the_most_common_language_wins_and_the_first_breaks_a_tie():
    assert library_language([{"language": "fr"}, {"language": "de"}, {"language": "de"}]) == "de"
    assert library_language([{"language": "fr"}, {"language": "de"}]) == "fr"
    assert library_language([{}, {"language": 3}]) is None
