"""Covers in every script: titles in Latin with diacritics, Greek, Cyrillic, Devanagari and CJK are drawn with
real glyphs, never the font's missing-glyph (.notdef) box; a character no font has is left out and reported.

The fonts' character maps are read with fontTools (which audiogen does not use to draw), and each glyph's
bitmap is compared with the bitmap of a character fontTools says the font does not map (its .notdef box)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageFont

from audiogen.build import BuildOptions, build
from audiogen.publish.cover import font_files, make_cover, undrawable

ttLib = pytest.importorskip("fontTools.ttLib", reason="pip install -e '.[test]' (fonttools)")

LATIN = "Fünf Minuten Atmen – ß ç ñ é ø ł ő ş ğ İ"
GREEK = "Πέντε λεπτά αναπνοής"
CYRILLIC = "Пять минут дыхания — ёжик"
DEVANAGARI = "पाँच मिनट साँस"
CJK = "五分間の呼吸 오분 호흡 五分钟呼吸"
#: Egyptian hieroglyphs: no cover font has them.
NOWHERE = "𓀀𓁐"


def cmap(path) -> dict[int, str]:
    return ttLib.TTFont(str(path), lazy=True).getBestCmap()


def font_for(text: str):
    """The first installed cover font whose character map has every character of `text` (fontTools' view)."""
    for path in font_files():
        table = cmap(path)
        if all(ord(ch) in table for ch in text if not ch.isspace()):
            return path
    return None


def mask(font: ImageFont.FreeTypeFont, ch: str) -> tuple:
    m = font.getmask(ch)
    return m.size, bytes(m)


def cjk_font_installed() -> bool:
    return font_for("五") is not None


SCRIPTS = [LATIN, GREEK, CYRILLIC, DEVANAGARI] + ([CJK] if cjk_font_installed() else [])


def test_the_noto_sans_font_is_installed():
    assert font_files(), "fontpkg-noto-sans is a dependency"
    assert font_files()[0].name.startswith("NotoSans")


@pytest.mark.parametrize("title", SCRIPTS)
def test_every_character_of_the_title_is_a_real_glyph_not_the_notdef_box(title):
    path = font_for(title)
    assert path is not None, f"no installed cover font maps all of {title!r}"
    table = cmap(path)
    unmapped = next(chr(c) for c in range(0xF0000, 0xFFFFE) if c not in table)  # private use: drawn as .notdef
    font = ImageFont.truetype(str(path), 64)
    notdef = mask(font, unmapped)
    assert notdef[0][0] > 0 and any(notdef[1]), "the font's .notdef glyph is a visible box"
    for ch in title:
        if not ch.isspace():
            assert mask(font, ch) != notdef, f"{ch!r} would be drawn as the missing-glyph box"
    assert undrawable(title) == []


def bright_pixels(png: bytes) -> int:
    """Pixels of the text colour: the background never gets this light."""
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int((img.min(axis=2) > 235).sum())


@pytest.mark.parametrize("title", SCRIPTS)
def test_a_title_in_each_script_is_drawn(title):
    assert bright_pixels(make_cover(title, None, size=400)) > 2000


def test_a_character_no_font_has_is_reported_and_not_drawn_as_boxes():
    assert undrawable(f"Atmen {NOWHERE}") == list(NOWHERE)
    only_missing = bright_pixels(make_cover(NOWHERE * 3, None, size=400))
    drawn = bright_pixels(make_cover("ÄÖÜÄÖÜ", None, size=400))
    assert only_missing < drawn / 20  # a dot where the title would be, not six boxes


@pytest.mark.skipif(cjk_font_installed(), reason="the CJK font is installed: CJK titles are drawn")
def test_without_the_cjk_font_a_cjk_title_is_reported():
    assert set(undrawable(CJK)) >= set("五分間呼吸")


def test_the_cover_says_which_fonts_drew_it():
    text = Image.open(io.BytesIO(make_cover("Atmen", "Bibliothek", size=120))).text
    assert text["Font"].startswith("NotoSans")


ROUTINE = """\
title: "{title}"
voice: {{engine: espeak}}
cue: none
steps:
  - title: One
    say: Breathe.
"""


def test_a_build_warns_about_a_title_the_cover_cannot_draw(tmp_path):
    (tmp_path / "a.yaml").write_text(ROUTINE.format(title=f"Atmen {NOWHERE}"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(ROUTINE.format(title=CYRILLIC), encoding="utf-8")
    bad, good = build([tmp_path / "a.yaml", tmp_path / "b.yaml"], BuildOptions(out_dir=tmp_path / "out"))
    assert bad.status == good.status == "built", (bad.error, good.error)
    assert [w for w in bad.warnings if "cover leaves out" in w and NOWHERE in w]
    timeline = json.loads((tmp_path / "out" / f"{bad.slug}.json").read_text(encoding="utf-8"))
    assert [w["kind"] for w in timeline["warnings"]] == ["cover"]
    assert good.warnings == []
