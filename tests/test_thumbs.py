"""Thumbnails for the page's list: a small copy of each cover beside it, shown in the list, while the
lock screen (Media Session) keeps the full-size cover, its size and type declared. Images read with
Pillow; the page in a real Chromium at phone size."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from buildkit import make_library
from PIL import Image

from audiogen.build.jobs import BuildOptions
from audiogen.build.pipeline import build
from audiogen.publish.cover import THUMB_SIZE, make_cover, make_thumbnail


def pixels(data: bytes) -> tuple[str, tuple[int, int], str]:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.format, img.size, img.mode


def encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_a_drawn_cover_gets_a_300_px_jpeg_a_fraction_of_its_size():
    cover = make_cover("Morning Lift", "Facial Massage")
    thumb, ext = make_thumbnail(cover)
    assert ext == ".jpg" and pixels(thumb) == ("JPEG", (THUMB_SIZE, THUMB_SIZE), "RGB") and THUMB_SIZE == 300
    assert len(thumb) * 5 < len(cover)
    assert make_thumbnail(cover) == (thumb, ext)  # deterministic: a rebuild rewrites nothing


def test_a_transparent_cover_keeps_its_transparency_as_png():
    img = Image.new("RGBA", (1000, 1000), (200, 40, 40, 255))
    img.paste((0, 0, 0, 0), (0, 0, 500, 500))
    thumb, ext = make_thumbnail(encoded(img, "PNG"))
    fmt, size, mode = pixels(thumb)
    assert (ext, fmt, size, mode) == (".png", "PNG", (300, 300), "RGBA")
    with Image.open(io.BytesIO(thumb)) as t:
        assert t.getpixel((10, 10))[3] == 0 and t.getpixel((290, 290))[3] == 255
    opaque = Image.new("RGBA", (600, 600), (10, 20, 30, 255))  # an alpha channel with nothing see-through
    assert make_thumbnail(encoded(opaque, "PNG"))[1] == ".jpg"


def test_other_shapes_keep_their_aspect_and_small_covers_are_not_enlarged():
    wide = Image.new("RGB", (1600, 800), (90, 120, 150))
    assert pixels(make_thumbnail(encoded(wide, "JPEG"))[0])[1] == (300, 150)
    small = Image.new("RGB", (120, 120), (90, 120, 150))
    assert pixels(make_thumbnail(encoded(small, "PNG"))[0])[1] == (120, 120)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("thumbs")
    lib = make_library(root / "lib", numbers=(1, 2))
    photo = Image.new("RGB", (1600, 1600), (120, 90, 60))
    photo.save(lib / "photo.jpg", quality=90)
    (lib / "r2.yaml").write_text((lib / "r2.yaml").read_text() + "cover: photo.jpg\n")
    out = root / "out"
    results = build([lib], BuildOptions(out_dir=out))
    assert {r.status for r in results} == {"built"}, [r.error for r in results]
    return lib, out


def test_every_session_has_a_thumbnail_beside_its_cover(built):
    _, out = built
    for slug, cover, size in (("routine-1", "routine-1.png", (1400, 1400)), ("routine-2", "routine-2.jpg",
                                                                                (1600, 1600))):
        sidecar = json.loads((out / f"{slug}.json").read_text("utf-8"))
        assert sidecar["cover"] == cover and sidecar["thumb"] == f"{slug}.thumb.jpg"
        assert pixels((out / cover).read_bytes())[1] == size  # the full cover stays full size
        assert pixels((out / sidecar["thumb"]).read_bytes())[:2] == ("JPEG", (300, 300))


def test_the_page_lists_thumbnails_and_gives_the_lock_screen_the_full_cover(built):
    _, out = built
    page = (out / "index.html").read_text("utf-8")
    assert re.findall(r'<img class="art" src="([^"]+)"', page) == ["routine-1.thumb.jpg", "routine-2.thumb.jpg"]
    card = re.search(r'<article class="session" id="routine-1"[^>]*>', page).group(0)
    assert 'data-art="routine-1.png" data-art-sizes="1400x1400" data-art-type="image/png"' in card
    assert 'data-thumb="routine-1.thumb.jpg" data-thumb-sizes="300x300" data-thumb-type="image/jpeg"' in card
    card = re.search(r'<article class="session" id="routine-2"[^>]*>', page).group(0)
    assert 'data-art="routine-2.jpg" data-art-sizes="1600x1600" data-art-type="image/jpeg"' in card
    worker = (out / "sw.js").read_text("utf-8")
    precache = json.loads(re.search(r"var PRECACHE = (\[.*?\]);", worker).group(1))
    assert {"routine-1.thumb.jpg", "routine-2.thumb.jpg", "routine-1.png"} <= set(precache)  # works offline


def test_pruning_a_routine_removes_its_thumbnail(tmp_path):
    lib = make_library(tmp_path / "lib", numbers=(1, 2))
    out = tmp_path / "out"
    build([lib], BuildOptions(out_dir=out))
    assert (out / "routine-2.thumb.jpg").is_file()
    (lib / "r2.yaml").unlink()
    build([lib], BuildOptions(out_dir=out, prune=True))
    assert not list(out.glob("routine-2*")) and (out / "routine-1.thumb.jpg").is_file()


@pytest.mark.slow  # starts a real Chromium
def test_phone_shows_thumbnails_and_the_lock_screen_the_full_cover(built):
    pytest.importorskip("playwright")
    from test_browser import ARGS, CHROMIUM, PHONE, _serve, _stop

    if not Path(CHROMIUM).exists():
        pytest.skip("install Debian's chromium to run")
    from playwright.sync_api import sync_playwright

    _, out = built
    server, url = _serve(out)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                page = browser.new_context(**PHONE).new_page()
                loaded: list[str] = []
                page.on("response", lambda r: loaded.append(r.url.rsplit("/", 1)[-1]))
                page.goto(url, wait_until="load")
                page.wait_for_function("[...document.querySelectorAll('img.art')].every(i => i.complete)")
                shown = page.evaluate("""[...document.querySelectorAll('img.art')].map(i =>
                    [i.currentSrc.split('/').pop(), i.naturalWidth, i.getBoundingClientRect().width])""")
                assert shown == [["routine-1.thumb.jpg", 300, 88], ["routine-2.thumb.jpg", 300, 88]]
                assert "routine-1.png" not in loaded  # the list never downloads a full cover
                audio = page.locator("article#routine-1 audio")
                audio.evaluate("a => a.readyState >= 1 || new Promise(r => a.addEventListener('loadedmetadata', r))")
                audio.evaluate("a => { a.play().catch(() => {}); }")
                page.wait_for_function("navigator.mediaSession.metadata !== null", timeout=10000)
                art = page.evaluate("navigator.mediaSession.metadata.artwork.map(a => [a.src.split('/').pop(),"
                                    " a.sizes, a.type])")
                assert art[:2] == [["routine-1.png", "1400x1400", "image/png"],
                                   ["routine-1.thumb.jpg", "300x300", "image/jpeg"]]
            finally:
                browser.close()
    finally:
        _stop(server)
