"""index.html in a real (headless) Chromium at phone size, served by our server: play, jump to a chapter.

Needs Debian's chromium (/usr/bin/chromium) and the playwright package; no browser is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import pytest
from test_indexes import add_session

from audiogen.publish.indexes import write_indexes
from audiogen.publish.serve import make_server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

pytestmark = [
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and importlib.util.find_spec("playwright") is not None),
        reason="install Debian's chromium and pip install playwright to run",
    ),
    pytest.mark.slow,  # starts a real Chromium
]


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "output"
    add_session(root, "morning-lift", "Morning Lift", track=1, seconds=20,
                chapters=[("Intro", 0), ("Forehead sweep", 8000), ("Jawline lift (left)", 14000)],
                description="Ten minutes to wake up circulation before serums.", album="Facial Massage",
                artist="audiogen")
    add_session(root, "evening-release", "Evening Release: a longer title that wraps on a phone", track=2,
                seconds=2, chapters=[("Intro", 0), ("Shoulders", 1000)], album="Facial Massage",
                artist="audiogen")
    write_indexes(root, "Facial Massage", "audiogen")
    server = make_server(root, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_phone_plays_and_jumps_to_a_chapter(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio"],
        )
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                          is_mobile=True, has_touch=True)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.goto(site, wait_until="load")
            card = page.locator("article#morning-lift")
            audio = card.locator("audio")
            audio.evaluate("a => a.readyState >= 1 || new Promise(r => a.addEventListener('loadedmetadata', r))")
            assert abs(audio.evaluate("a => a.duration") - 20.0) < 0.3

            chapters = card.locator("button[data-t]")
            assert chapters.count() == 3
            chapters.nth(0).tap()  # play from the start
            page.wait_for_function("a => !a.paused && a.currentTime > 0", arg=audio.element_handle(), timeout=10000)
            chapters.nth(1).tap()  # "Forehead sweep" at 8 s
            page.wait_for_function("a => !a.paused && !a.seeking && a.currentTime >= 7.5", arg=audio.element_handle(),
                                   timeout=10000)
            now = audio.evaluate("a => a.currentTime")
            assert abs(now - 8.0) < 0.5, now
            assert chapters.nth(1).get_attribute("aria-current") == "true"  # the playing chapter is marked

            # fits a phone: no sideways scrolling, tap targets at least 44 px tall
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            for i in range(3):
                assert chapters.nth(i).bounding_box()["height"] >= 44
            assert card.locator("a[download]").bounding_box()["height"] >= 44
            assert not errors, errors

            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "index-phone.png"), full_page=True)
        finally:
            browser.close()
