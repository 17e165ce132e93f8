"""Cover art: a calm square PNG with the session title, drawn with Pillow (no system font needed).

The hue comes from a hash of the title, so every session of a library gets its own colour and
rebuilding gives byte-identical art. Text uses Pillow's bundled font (`ImageFont.load_default(size=)`,
Pillow >= 10.1 with FreeType); it covers Latin scripts, so titles in other scripts may show boxes.
"""

from __future__ import annotations

import colorsys
import hashlib
import io

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
    t = (ramp[:, None] * 0.7 + ramp[None, :] * 0.3)[..., None]  # mostly vertical, a little diagonal
    # a faint glow behind the title
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / max(1, size - 1)
    glow = np.exp(-(((xx - 0.5) ** 2) + ((yy - 0.45) ** 2)) / 0.08)[..., None] * 0.10
    pixels = top * (1 - t) + bottom * t
    pixels = pixels + (255 - pixels) * glow
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, px))


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
    while True:
        font = _font(px)
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
    if size < 64:
        raise ValueError(f"cover size {size} px is too small")
    title = " ".join((title or "").split()) or "Untitled"
    subtitle = " ".join((subtitle or "").split()) or None
    img = _background(size, cover_hue(title))
    draw = ImageDraw.Draw(img)

    font, lines = _fit_title(draw, title, size)
    title_lh = int(_line_height(font) * 1.12)
    blocks: list[tuple[str, object, int, tuple[int, int, int]]] = [(ln, font, title_lh, _TEXT) for ln in lines]
    gap = int(size * 0.05)
    sub_font = None
    if subtitle:
        sub_font = _font(int(size * 0.042))
        sub_lines = _wrap(draw, subtitle, sub_font, size * 0.80)[:2]
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

    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6, pnginfo=_png_text(title, subtitle))
    return buf.getvalue()


def _png_text(title: str, subtitle: str | None) -> PngInfo:
    info = PngInfo()
    info.add_itxt("Title", title)
    if subtitle:
        info.add_itxt("Description", subtitle)
    info.add_text("Software", f"audiogen {__version__}")
    return info


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
            and text.get("Software") == f"audiogen {__version__}")


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
    buf = io.BytesIO()
    if img.mode == "RGBA":
        img.save(buf, format="PNG", optimize=True)
        return buf.getvalue(), ".png"
    img.save(buf, format="JPEG", quality=85, optimize=True, progressive=False)
    return buf.getvalue(), ".jpg"


def _has_alpha(img: Image.Image) -> bool:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        alpha = img.convert("RGBA").getchannel("A")
        return alpha.getextrema()[0] < 255  # an alpha channel that is all opaque is no transparency
    return False
