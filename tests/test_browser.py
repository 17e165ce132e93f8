"""index.html in a real (headless) Chromium at phone size, served by our server: play, jump to a chapter,
the lock screen (Media Session) following chapters, the next session starting, and playing offline.

Needs Debian's chromium (/usr/bin/chromium) and the playwright package; no browser is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
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


PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
ARGS = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio"]
# Records the page's Media Session action handlers and position states, as the lock screen would see them.
RECORD_MEDIA_SESSION = """
window.__handlers = {}; window.__positions = [];
const ms = navigator.mediaSession, setHandler = ms.setActionHandler.bind(ms), setPos = ms.setPositionState.bind(ms);
ms.setActionHandler = (name, fn) => { window.__handlers[name] = fn; return setHandler(name, fn); };
ms.setPositionState = (state) => { window.__positions.push(state); return setPos(state); };
"""


def _build(root: Path) -> Path:
    add_session(root, "morning-lift", "Morning Lift", track=1, seconds=20,
                chapters=[("Intro", 0), ("Forehead sweep", 8000), ("Jawline lift (left)", 14000)],
                description="Ten minutes to wake up circulation before serums.", album="Facial Massage",
                artist="audiogen")
    add_session(root, "evening-release", "Evening Release: a longer title that wraps on a phone", track=2,
                seconds=2, chapters=[("Intro", 0), ("Shoulders", 1000)], album="Facial Massage",
                artist="audiogen")
    write_indexes(root, "Facial Massage", "audiogen")
    return root


def _serve(root: Path):
    server = make_server(root, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _stop(server) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture
def site(tmp_path):
    server, url = _serve(_build(tmp_path / "output"))
    yield url
    _stop(server)


@pytest.fixture(scope="module")
def chromium():
    """One real Chromium for this file's tests; each test gets its own context (no storage, service worker or
    cache shared with another test's), closed after it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def phone(chromium):
    """A new page in a phone-sized context of a real Chromium (with `errors` collected on it)."""
    context = chromium.new_context(**PHONE)
    try:
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        yield page
    finally:
        context.close()


def _loaded(audio) -> None:
    audio.evaluate("a => a.readyState >= 1 || new Promise(r => a.addEventListener('loadedmetadata', r))")


def _play_from(audio, t: float) -> None:
    _loaded(audio)
    # not awaiting play(): near the end of a session the page may pause it (ended, next session) before a
    # loaded machine resolves the promise; callers wait for the state they expect instead
    audio.evaluate("(a, t) => { a.currentTime = t; a.play().catch(() => {}); }", t)


def _title(page) -> str | None:
    return page.evaluate("navigator.mediaSession.metadata && navigator.mediaSession.metadata.title")


def test_phone_plays_and_jumps_to_a_chapter(site, chromium):
    context = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                   is_mobile=True, has_touch=True)
    try:
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
        context.close()


def test_lock_screen_shows_the_chapter_and_steps_through_chapters(site, phone):
    page = phone
    page.add_init_script(RECORD_MEDIA_SESSION)
    page.goto(site, wait_until="load")
    audio = page.locator("article#morning-lift audio")
    handlers = page.evaluate("Object.keys(window.__handlers)")
    for name in ("play", "pause", "previoustrack", "nexttrack", "seekbackward", "seekforward", "seekto"):
        assert name in handlers

    _play_from(audio, 5.0)  # before "Forehead sweep" (8 s), with room for a loaded machine to see Intro
    page.wait_for_function("navigator.mediaSession.metadata && navigator.mediaSession.metadata.title === 'Intro'",
                           timeout=10000)
    page.wait_for_function("navigator.mediaSession.metadata.title === 'Forehead sweep'", timeout=10000)
    meta = page.evaluate("""(() => { const m = navigator.mediaSession.metadata;
        return {artist: m.artist, album: m.album, artwork: m.artwork.map(a => [a.src, a.sizes, a.type])}; })()""")
    assert meta["artist"] == "Morning Lift" and meta["album"] == "Facial Massage"
    assert meta["artwork"][0][0].endswith("/morning-lift.png") and meta["artwork"][0][1:] == ["120x120", "image/png"]
    assert meta["artwork"][1][0].endswith("/library_cover.png") and meta["artwork"][1][1:] == ["1400x1400",
                                                                                            "image/png"]
    assert page.evaluate("navigator.mediaSession.playbackState") == "playing"
    state = page.evaluate("window.__positions[window.__positions.length - 1]")
    assert abs(state["duration"] - 20.0) < 0.3 and state["playbackRate"] == 1 and 5.0 <= state["position"] <= 20

    # the lock screen's "next": the next chapter's start, and the title follows
    page.evaluate("window.__handlers.nexttrack({action: 'nexttrack'})")
    assert abs(audio.evaluate("a => a.currentTime") - 14.0) < 0.3
    page.wait_for_function("navigator.mediaSession.metadata.title === 'Jawline lift (left)'", timeout=5000)
    state = page.evaluate("window.__positions[window.__positions.length - 1]")
    assert abs(state["position"] - 14.0) < 0.3  # the position state follows the jump
    # "previous" just after a chapter starts: the chapter before; well into it: its own start
    page.evaluate("window.__handlers.previoustrack({action: 'previoustrack'})")
    assert abs(audio.evaluate("a => a.currentTime") - 8.0) < 0.3
    audio.evaluate("a => { a.currentTime = 12; }")
    page.evaluate("window.__handlers.previoustrack({action: 'previoustrack'})")
    assert abs(audio.evaluate("a => a.currentTime") - 8.0) < 0.3
    # seek buttons: 10 s back / 30 s forward unless the lock screen says otherwise; seekto
    audio.evaluate("a => { a.currentTime = 15; }")
    page.evaluate("window.__handlers.seekbackward({action: 'seekbackward'})")
    assert abs(audio.evaluate("a => a.currentTime") - 5.0) < 0.3
    page.evaluate("window.__handlers.seekforward({action: 'seekforward', seekOffset: 5})")
    assert abs(audio.evaluate("a => a.currentTime") - 10.0) < 0.3
    page.evaluate("window.__handlers.seekto({action: 'seekto', seekTime: 3})")
    assert abs(audio.evaluate("a => a.currentTime") - 3.0) < 0.3
    page.evaluate("window.__handlers.pause({action: 'pause'})")
    assert audio.evaluate("a => a.paused") and page.evaluate("navigator.mediaSession.playbackState") == "paused"
    page.evaluate("window.__handlers.play({action: 'play'})")
    page.wait_for_function("a => !a.paused", arg=audio.element_handle(), timeout=5000)
    assert not page.errors, page.errors


def test_next_session_starts_when_one_ends(site, phone):
    page = phone
    page.goto(site, wait_until="load")
    box = page.get_by_label("Play the next session")
    assert box.is_checked() and box.bounding_box()["height"] >= 20
    first, second = page.locator("article#morning-lift audio"), page.locator("article#evening-release audio")
    _play_from(first, 19.0)
    page.wait_for_function("a => !a.paused && a.currentTime > 0", arg=second.element_handle(), timeout=10000)
    assert first.evaluate("a => a.ended || a.paused")
    assert _title(page) in ("Intro", "Shoulders")  # the lock screen shows the new session's chapter
    assert page.evaluate("navigator.mediaSession.metadata.artist").startswith("Evening Release")

    box.uncheck()  # remembered on this device
    page.reload(wait_until="load")
    assert not page.get_by_label("Play the next session").is_checked()
    _play_from(first, 19.0)
    page.wait_for_function("a => a.ended", arg=first.element_handle(), timeout=10000)
    page.wait_for_timeout(300)
    assert second.evaluate("a => a.paused && a.currentTime === 0")
    assert not page.errors, page.errors


def test_played_session_plays_offline(tmp_path, phone):
    root = _build(tmp_path / "output")
    assert (root / "sw.js").is_file() and (root / "manifest.webmanifest").is_file()
    server, url = _serve(root)
    page = phone
    try:
        page.goto(url, wait_until="load")
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15000)
        manifest = page.evaluate("fetch(document.querySelector('link[rel=manifest]').href).then(r => r.json())")
        assert manifest["name"] == "Facial Massage" and manifest["start_url"] == "./"
        assert manifest["display"] == "standalone" and manifest["icons"][0]["sizes"] == "1400x1400"
        card = page.locator("article#morning-lift")
        card.locator("button[data-t]").nth(0).tap()  # play: the session is kept for offline
        card.locator(".saved").wait_for(state="visible", timeout=15000)
        assert page.locator("article#evening-release .saved").is_hidden()  # not played: not downloaded
        card.locator("audio").evaluate("a => a.pause()")
    finally:
        _stop(server)

    page.errors.clear()
    page.reload(wait_until="load")  # the server is gone
    assert page.locator("h1").inner_text() == "Facial Massage"
    assert page.locator("article#morning-lift img.art").evaluate("i => i.complete && i.naturalWidth > 0")
    ranged = page.evaluate("""fetch('morning-lift.mp3', {headers: {Range: 'bytes=100-199'}})
        .then(async r => [r.status, r.headers.get('Content-Range'), (await r.arrayBuffer()).byteLength])""")
    size = (root / "morning-lift.mp3").stat().st_size
    assert ranged == [206, f"bytes 100-199/{size}", 100]
    audio = page.locator("article#morning-lift audio")
    _loaded(audio)
    assert abs(audio.evaluate("a => a.duration") - 20.0) < 0.3
    audio.evaluate("a => a.play()")
    page.wait_for_function("a => !a.paused && a.currentTime > 0", arg=audio.element_handle(), timeout=10000)
    audio.evaluate("a => { a.currentTime = 12.5; }")
    page.wait_for_function("a => !a.seeking && !a.paused && a.currentTime >= 12.5", arg=audio.element_handle(),
                           timeout=10000)
    assert abs(audio.evaluate("a => a.currentTime") - 12.5) < 0.6
    assert not [e for e in page.errors if "morning-lift" in e], page.errors

    Path("/tmp/audiogen-shots").mkdir(exist_ok=True)
    page.screenshot(path="/tmp/audiogen-shots/offline-phone.png", full_page=False)


def test_offline_files_are_rewritten_only_when_the_library_changes(tmp_path):
    root = _build(tmp_path / "output")
    names = ["sw.js", "manifest.webmanifest", "index.html"]
    before = {n: ((root / n).read_bytes(), (root / n).stat().st_mtime_ns) for n in names}
    write_indexes(root, "Facial Massage", "audiogen")
    assert before == {n: ((root / n).read_bytes(), (root / n).stat().st_mtime_ns) for n in names}

    def worker() -> tuple[str, dict]:
        text = (root / "sw.js").read_text("utf-8")
        version = re.search(r"var VERSION = '([0-9a-f]+)';", text).group(1)
        return version, json.loads(re.search(r"var MEDIA = (\{.*?\});", text).group(1))

    version, media = worker()
    assert set(media) == {"morning-lift.mp3", "evening-release.mp3"}
    mp3 = root / "evening-release.mp3"
    os.utime(mp3, ns=(mp3.stat().st_atime_ns, mp3.stat().st_mtime_ns + 10**9))  # a rebuilt session
    write_indexes(root, "Facial Massage", "audiogen")
    new_version, new_media = worker()
    assert new_version != version  # a new cache, so the rebuilt library shows offline too
    assert new_media["morning-lift.mp3"] == media["morning-lift.mp3"]  # kept offline across the rebuild
    assert new_media["evening-release.mp3"] != media["evening-release.mp3"]  # fetched again


def test_page_from_a_file_registers_no_service_worker(tmp_path, phone):
    root = _build(tmp_path / "output")
    page = phone
    page.add_init_script(RECORD_MEDIA_SESSION)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto((root / "index.html").as_uri(), wait_until="load")
    page.wait_for_timeout(300)
    assert not [u for u in requested if u.endswith("/sw.js")]  # a worker needs http(s): not even tried
    assert page.locator("#offline").is_hidden()
    audio = page.locator("article#morning-lift audio")
    _play_from(audio, 8.5)
    page.wait_for_function("navigator.mediaSession.metadata && "
                           "navigator.mediaSession.metadata.title === 'Forehead sweep'", timeout=10000)
    page.evaluate("window.__handlers.nexttrack({action: 'nexttrack'})")
    assert abs(audio.evaluate("a => a.currentTime") - 14.0) < 0.3
    assert not page.errors, page.errors
