"""`audiogen voices`: availability tested where it can be, said to be unknown where testing needs the
network, and `-l LANG` listing only what speaks LANG."""

from __future__ import annotations

import json

import responses
from click.testing import CliRunner

from audiogen.cli import cli


def _json(*args: str) -> dict:
    res = CliRunner().invoke(cli, ["voices", "--json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_gtts_is_unknown_until_used_not_available_while_google_may_be_unreachable(monkeypatch):
    monkeypatch.delenv("AUDIOGEN_OFFLINE", raising=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        report = _json()
        text = CliRunner().invoke(cli, ["voices"]).output
        assert len(rsps.calls) == 0  # finding out would send a request: it is not asked
    gtts = next(e for e in report["engines"] if e["name"] == "gtts")
    assert gtts["available"] is None and "unknown until used" in gtts["reason"]
    first = next(line for line in text.splitlines() if line.startswith("gtts"))
    assert "unknown until used" in first and "available" not in first.replace("unavailable", "")


def test_language_filter_lists_only_what_speaks_it():
    report = _json("-l", "de")
    espeak = next(e for e in report["engines"] if e["name"] == "espeak")
    assert espeak["speaks_language"] and all(v.split("-")[0] == "de" for v in espeak["speaks_language"])
    text = CliRunner().invoke(cli, ["voices", "-l", "de"]).output
    block = text[text.index("espeak"):]
    assert "1 voice speaks 'de': de" in block
    assert "languages:" not in block and "voice: fr" not in block  # the other ~150 languages are not listed
    gtts_block = text[: text.index("espeak")]
    assert "speaks 'de': de" in gtts_block and "en: com" not in gtts_block
