"""Cover art: a calm square PNG with the session title, drawn with Pillow in a bundled font.

The hue comes from a hash of the title, so every session of a library gets its own colour and
rebuilding gives byte-identical art. Text is drawn in Noto Sans (package `fontpkg-noto-sans`, SIL Open
Font License 1.1: Latin with every diacritic, Greek, Cyrillic), or in Noto Sans CJK when a title needs
Chinese, Japanese or Korean and the optional `noto-cjk-sans-jp-regular` package is installed. A
character no installed font has is left out, never drawn as a box: `undrawable` names such characters,
so a build can say so.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from audiogen._version import __version__

#: Apple Podcasts asks for square art between 1400 and 3000 px.
DEFAULT_SIZE = 1400
_MAX_TITLE_LINES = 5
_TEXT = (250, 248, 244)
_SUBTEXT = (236, 232, 226)


def cover_hue(title: str) -> float:
    """A hue in [0, 1) that depends only on `title`."""
    digest = hashlib.sha256(title.strip().encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _rgb(h: float, lightness: float, saturation: float) -> np.ndarray:
    return np.array(colorsys.hls_to_rgb(h % 1.0, lightness, saturation), dtype=np.float64) * 255


def _background(size: int, hue: float) -> Image.Image:
    """A soft diagonal gradient between two neighbouring muted hues, darkest at the bottom right.

    Drawn at a quarter of the size and scaled up: the gradient is smooth, and it costs 1/16 of the work.
    """
    small = max(2, size // 4)
    return _gradient(small, hue).resize((size, size), Image.Resampling.BICUBIC)


def _gradient(size: int, hue: float) -> Image.Image:
    top = _rgb(hue, 0.46, 0.38)
    bottom = _rgb(hue + 0.08, 0.24, 0.42)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float64)
    xx = np.arange(size, dtype=np.float64)[None, :] / max(1, size - 1)
    out = np.empty((size, size, 3), dtype=np.uint8)
    for r0 in range(0, size, _GRADIENT_ROWS):  # a few rows at a time: the same numbers, a seventh of the memory
        r1 = min(size, r0 + _GRADIENT_ROWS)
        t = (ramp[r0:r1, None] * 0.7 + ramp[None, :] * 0.3)[..., None]  # mostly vertical, a little diagonal
        # a faint glow behind the title
        yy = np.arange(r0, r1, dtype=np.float64)[:, None] / max(1, size - 1)
        glow = np.exp(-(((xx - 0.5) ** 2) + ((yy - 0.45) ** 2)) / 0.08)[..., None] * 0.10
        pixels = top * (1 - t) + bottom * t
        pixels = pixels + (255 - pixels) * glow
        out[r0:r1] = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return Image.fromarray(out, "RGB")


#: Rows of the gradient computed at a time.
_GRADIENT_ROWS = 48


#: Weight of the title in the variable Noto Sans (400 regular .. 900 black): a little heavier than
#: regular reads better on a phone's lock screen.
_TITLE_WEIGHT = 500


@functools.cache
def font_files() -> tuple[Path, ...]:
    """The cover fonts installed, in order of preference: Noto Sans, then Noto Sans CJK (optional)."""
    found: list[Path] = []
    try:
        import fontpkg_noto_sans

        found += sorted((Path(fontpkg_noto_sans.ROOT) / "files").glob("NotoSans[[]*.ttf"))[:1]
    except ImportError:
        pass
    try:
        import noto_cjk_sans_jp_regular

        found.append(Path(str(noto_cjk_sans_jp_regular.FONT_PATH)))
    except ImportError:
        pass
    return tuple(p for p in found if p.is_file())


@functools.cache
def _face(path: Path, px: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(str(path), max(8, px))
    try:
        axes = font.get_variation_axes()
        font.set_variation_by_axes([_TITLE_WEIGHT if a["name"] == b"Weight" else a["default"] for a in axes])
    except OSError:  # not a variable font
        pass
    return font


_PROBE_PX = 48
#: A code point no font maps (a noncharacter): drawing it gives the font's missing-glyph (.notdef) box.
_UNMAPPED = "\U0010fffe"


@functools.cache
def _notdef(path: Path) -> tuple:
    return _mask(path, _UNMAPPED)


def _mask(path: Path, ch: str) -> tuple:
    mask = _face(path, _PROBE_PX).getmask(ch)
    return mask.size, bytes(mask)


@functools.cache
def has_glyph(path: Path, ch: str) -> bool:
    """Whether the font at `path` draws `ch` as a glyph of its own, not as its missing-glyph box."""
    if ch.isspace():
        return True
    return _mask(path, ch) != _notdef(path)


def _drawable(path: Path, text: str) -> bool:
    return all(has_glyph(path, ch) for ch in text)


def undrawable(text: str | None) -> list[str]:
    """The characters of `text` that no installed cover font can draw (they are left out of the cover)."""
    files = font_files()
    out: dict[str, None] = {}
    for ch in " ".join((text or "").split()):
        if not files or not any(has_glyph(p, ch) for p in files):
            out[ch] = None
    return list(out)


def _font_file(text: str) -> Path | None:
    """The first cover font that draws every character of `text` (else the one that draws most)."""
    files = font_files()
    if not files:
        return None
    for path in files:
        if _drawable(path, text):
            return path
    return max(files, key=lambda p: sum(has_glyph(p, ch) for ch in text))


def _drawn(text: str) -> str:
    """`text` without the characters no cover font has (a box would stand for them otherwise)."""
    missing = set(undrawable(text))
    return " ".join("".join(ch for ch in text if ch not in missing).split()) if missing else text


def _font(px: int, path: Path | None = None) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:  # no font package installed: Pillow's own (Latin without most diacritics)
        return ImageFont.load_default(size=max(8, px))
    return _face(path, px)


def _width(draw: ImageDraw.ImageDraw, text: str, font) -> float:
    return draw.textlength(text, font=font)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, max_width: float) -> list[str]:
    """Greedy word wrap; a word wider than the line is broken between characters."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        while _width(draw, word, font) > max_width and len(word) > 1:  # break an over-long word
            cut = len(word)
            while cut > 1 and _width(draw, word[:cut], font) > max_width:
                cut -= 1
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{line} {word}" if line else word
        if _width(draw, candidate, font) <= max_width:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines or [""]


def _fit_title(draw: ImageDraw.ImageDraw, title: str, size: int) -> tuple[object, list[str]]:
    """The largest font (from about 1/10 of the side down) at which the title fits in a few lines."""
    max_width = size * 0.80
    px = int(size * 0.105)
    path = _font_file(title)
    while True:
        font = _font(px, path)
        lines = _wrap(draw, title, font, max_width)
        words_fit = px <= size * 0.06 or all(_width(draw, w, font) <= max_width for w in title.split())
        if (len(lines) <= _MAX_TITLE_LINES and words_fit) or px <= size // 40:
            return font, lines[:_MAX_TITLE_LINES]
        px = int(px * 0.88)


def _line_height(font) -> int:
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (10, 2)
    return ascent + descent


def make_cover(title: str, subtitle: str | None, size: int = DEFAULT_SIZE) -> bytes:
    """A square PNG (`size` px) with `title` wrapped and centred, `subtitle` (the library) smaller below.

    Deterministic: the same arguments always give the same bytes.
    """
    return _cover_png(*_draw_cover(title, subtitle, size))


def make_cover_and_thumbnail(title: str, subtitle: str | None, size: int = DEFAULT_SIZE
                             ) -> tuple[bytes, tuple[bytes, str]]:
    """`make_cover(...)` and `make_thumbnail(make_cover(...))`, the same bytes, from one drawing: the
    thumbnail is made from the drawn image itself (a PNG gives back exactly its pixels) instead of
    decoding the PNG again, which would hold a second full-size copy."""
    img, title, subtitle = _draw_cover(title, subtitle, size)
    png = _cover_png(img, title, subtitle)
    img.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
    return png, _jpeg_thumbnail(img)


def _cover_png(img: Image.Image, title: str, subtitle: str | None) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6, pnginfo=_png_text(title, subtitle))
    return buf.getvalue()


def _draw_cover(title: str, subtitle: str | None, size: int) -> tuple[Image.Image, str, str | None]:
    if size < 64:
        raise ValueError(f"cover size {size} px is too small")
    title = " ".join((title or "").split()) or "Untitled"
    subtitle = " ".join((subtitle or "").split()) or None
    img = _background(size, cover_hue(title))
    draw = ImageDraw.Draw(img)

    font, lines = _fit_title(draw, _drawn(title) or "·", size)
    title_lh = int(_line_height(font) * 1.12)
    blocks: list[tuple[str, object, int, tuple[int, int, int]]] = [(ln, font, title_lh, _TEXT) for ln in lines]
    gap = int(size * 0.05)
    sub_font = None
    if subtitle:
        sub_font = _font(int(size * 0.042), _font_file(subtitle))
        sub_lines = _wrap(draw, _drawn(subtitle), sub_font, size * 0.80)[:2]
        sub_lh = int(_line_height(sub_font) * 1.2)
        blocks += [(ln, sub_font, sub_lh, _SUBTEXT) for ln in sub_lines]
    total = sum(b[2] for b in blocks) + (gap if subtitle else 0)
    y = (size - total) / 2 - size * 0.02
    rule_drawn = False
    for text, f, lh, colour in blocks:
        if f is sub_font and not rule_drawn:  # a short rule between title and library name
            rule_y = y + gap / 2 - max(1, size // 500)
            half = size * 0.06
            draw.line([(size / 2 - half, rule_y), (size / 2 + half, rule_y)], fill=_SUBTEXT,
                      width=max(1, size // 350))
            y += gap
            rule_drawn = True
        draw.text((size / 2, y + lh / 2), text, font=f, fill=colour, anchor="mm")
        y += lh
    return img, title, subtitle


def _png_text(title: str, subtitle: str | None) -> PngInfo:
    info = PngInfo()
    info.add_itxt("Title", title)
    if subtitle:
        info.add_itxt("Description", subtitle)
    info.add_text("Software", f"audiogen {__version__}")
    info.add_text("Font", _fonts_used())
    return info


def _fonts_used() -> str:
    """Which cover fonts are installed (a cover drawn with other fonts is drawn again)."""
    return ", ".join(p.name for p in font_files()) or "Pillow default"


def cover_matches(data: bytes, title: str, subtitle: str | None) -> bool:
    """Whether `data` is the cover `make_cover(title, subtitle)` makes, judged from its text chunks
    (title, subtitle, audiogen version) without drawing it again."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            text = dict(getattr(img, "text", {}))
    except (OSError, ValueError, SyntaxError):
        return False
    title = " ".join((title or "").split()) or "Untitled"
    subtitle = " ".join((subtitle or "").split()) or None
    return (text.get("Title") == title and text.get("Description") == subtitle
            and text.get("Software") == f"audiogen {__version__}" and text.get("Font") == _fonts_used())


#: The page lists sessions with 88 CSS px art: 300 px is sharp up to a 3x phone screen, at a few kB.
THUMB_SIZE = 300


def make_thumbnail(data: bytes, size: int = THUMB_SIZE) -> tuple[bytes, str]:
    """A small copy of a cover for lists: (bytes, ".jpg" or ".png"), its longer side `size` px (never
    enlarged). JPEG (quality 85) for covers without transparency: the drawn gradients and photos are a
    tenth of their PNG size; PNG when the cover has an alpha channel, which JPEG cannot keep.

    Deterministic: the same cover always gives the same bytes.
    """
    with Image.open(io.BytesIO(data)) as src:
        src.load()
        img = src.convert("RGBA") if _has_alpha(src) else src.convert("RGB")
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    if img.mode == "RGBA":
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
        return buf.getvalue(), ".png"
    return _jpeg_thumbnail(img)


def _jpeg_thumbnail(img: Image.Image) -> tuple[bytes, str]:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85, optimize=True, progressive=False)
    return buf.getvalue(), ".jpg"


def _has_alpha(img: Image.Image) -> bool:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        alpha = img.convert("RGBA").getchannel("A")
        return alpha.getextrema()[0] < 255  # an alpha channel that is all opaque is no transparency
    return False
