"""Piper voices from the official catalogue (rhasspy/piper-voices): list, install, remove.

The catalogue's `voices.json` names every voice with its files (paths relative to the catalogue's base URL),
their sizes and MD5 digests. A voice is downloaded into a temp folder beside the installed ones, each file
checked against the catalogue, and the folder renamed into place: an installed voice is always complete, and
a failed or interrupted download leaves nothing behind. Installed voices live in the user data folder
(`AUDIOGEN_DATA_DIR`, else platformdirs' user data dir), one folder per voice:
`<data>/piper-voices/<name>/<name>.onnx` (+ `.onnx.json`, `MODEL_CARD`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audiogen.routine.errors import AudiogenError
from audiogen.voice.privacy import offline_mode

#: The official Piper voice catalogue (Hugging Face); `AUDIOGEN_PIPER_VOICES_URL` points elsewhere (a mirror).
DEFAULT_URL = "https://huggingface.co/rhasspy/piper-voices/resolve/main/"
URL_ENV = "AUDIOGEN_PIPER_VOICES_URL"
DATA_ENV = "AUDIOGEN_DATA_DIR"
CATALOGUE_FILE = "voices.json"
#: Where a voice's licence is stated (each voice has its own, in its MODEL_CARD).
MODEL_CARDS = "https://huggingface.co/rhasspy/piper-voices"
_NAME = re.compile(r"^[A-Za-z]{2,3}_[A-Za-z0-9]+-[A-Za-z0-9_]+-[A-Za-z0-9_]+$")
_TIMEOUT_S = 30
_CHUNK = 1 << 16


class VoiceInstallError(AudiogenError):
    """A Piper voice cannot be listed, downloaded, checked or installed."""


def data_dir() -> Path:
    """`AUDIOGEN_DATA_DIR`, else the platform's user data folder for audiogen."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("audiogen", appauthor=False))


def voices_dir() -> Path:
    return data_dir() / "piper-voices"


def base_url(url: str | None = None) -> str:
    """The catalogue's base URL (argument, else `AUDIOGEN_PIPER_VOICES_URL`, else the official one), ending in /."""
    url = url or os.environ.get(URL_ENV) or DEFAULT_URL
    return url if url.endswith("/") else url + "/"


def valid_name(name: str) -> bool:
    """A Piper voice name: `<lang>_<REGION>-<voice>-<quality>` (no path separators)."""
    return bool(_NAME.match(name))


# -- installed voices ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class InstalledVoice:
    name: str
    model: Path
    config: Path
    language: str  # e.g. de_DE
    licence: str | None


def installed_model(name: str) -> Path | None:
    """The .onnx model of the installed voice `name`, if it is installed (complete: model and config)."""
    if not valid_name(name):
        return None
    model = voices_dir() / name / f"{name}.onnx"
    config = model.with_name(model.name + ".json")
    return model if model.is_file() and config.is_file() else None


def _licence(card: Path) -> str | None:
    """The dataset licence line of a Piper MODEL_CARD (`* License: CC0`), if it states one."""
    try:
        text = card.read_text("utf-8", "replace")
    except OSError:
        return None
    for line in text.splitlines():
        m = re.match(r"^\s*[*-]?\s*licen[cs]e\s*:\s*(.+)$", line, re.IGNORECASE)
        if m:
            return m.group(1).strip()
    return None


def installed_voices() -> list[InstalledVoice]:
    """Every complete installed voice, by name."""
    root = voices_dir()
    out = []
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or installed_model(folder.name) is None:
            continue
        model = folder / f"{folder.name}.onnx"
        lang = folder.name.split("-", 1)[0]
        out.append(InstalledVoice(folder.name, model, model.with_name(model.name + ".json"), lang,
                                  _licence(folder / "MODEL_CARD")))
    return out


def installed_for(language: str) -> list[InstalledVoice]:
    """Installed voices speaking `language` (`de`, `de-DE`, `de_DE`): region matches first, then by name."""
    tag = language.strip().lower().replace("-", "_")
    primary = tag.split("_")[0]
    hits = [v for v in installed_voices() if v.language.lower().split("_")[0] == primary]
    return sorted(hits, key=lambda v: (v.language.lower() != tag, _quality_rank(v.name), v.name))


def _quality_rank(name: str) -> int:
    """Better-sounding qualities first (high, medium, low, x_low)."""
    quality = name.rsplit("-", 1)[-1]
    return {"high": 0, "medium": 1, "low": 2, "x_low": 3}.get(quality, 4)


def remove(name: str) -> Path:
    """Delete the installed voice `name`; its folder (VoiceInstallError when it is not installed)."""
    folder = voices_dir() / name
    if not valid_name(name) or not folder.is_dir():
        have = ", ".join(v.name for v in installed_voices()) or "none"
        raise VoiceInstallError(f"no installed Piper voice {name!r}", hint=f"installed: {have}")
    # renamed away first, so a half-deleted folder is never taken for a voice
    trash = Path(tempfile.mkdtemp(prefix=f".remove-{name}.", dir=folder.parent))
    os.replace(folder, trash / name)
    shutil.rmtree(trash, ignore_errors=True)
    return folder


# -- the catalogue -------------------------------------------------------------------------------------
def _refuse_offline(what: str, offline: bool | None = None) -> None:
    if offline_mode() if offline is None else offline:
        raise VoiceInstallError(f"offline mode (--offline / AUDIOGEN_OFFLINE=1) never contacts the network: "
                                f"cannot {what}", hint="run it again without --offline")


def _open(url: str):
    from urllib.request import Request, urlopen

    return urlopen(Request(url, headers={"User-Agent": "audiogen"}), timeout=_TIMEOUT_S)


def _network_error(url: str, e: BaseException) -> VoiceInstallError:
    from urllib.error import HTTPError, URLError

    if isinstance(e, HTTPError):
        why = f"HTTP {e.code} {e.reason}"
    elif isinstance(e, URLError):
        why = str(getattr(e.reason, "strerror", None) or e.reason)
    else:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return VoiceInstallError(f"cannot download {url}: {why}",
                             hint=f"check the network, or point {URL_ENV} at a reachable copy of the catalogue")


def fetch_catalogue(url: str | None = None, offline: bool | None = None) -> dict[str, dict]:
    """The catalogue's voices (name -> entry, as in voices.json)."""
    _refuse_offline("read the Piper voice catalogue", offline)
    where = base_url(url) + CATALOGUE_FILE
    try:
        with _open(where) as response:
            raw = response.read()
    except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors; ValueError: a malformed URL
        raise _network_error(where, e) from None
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError) as e:
        raise VoiceInstallError(f"the Piper voice catalogue {where} is not valid JSON ({e})") from None
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def available(url: str | None = None, offline: bool | None = None) -> dict[str, list[dict]]:
    """Installable voices by language code (`de_DE`): name, language names, quality, size in bytes, installed."""
    have = {v.name for v in installed_voices()}
    out: dict[str, list[dict]] = {}
    for name, entry in sorted(fetch_catalogue(url, offline).items()):
        lang = entry.get("language") or {}
        files = entry.get("files") or {}
        size = sum(int(f.get("size_bytes") or 0) for p, f in files.items() if isinstance(f, dict)
                   and p.endswith(".onnx"))
        out.setdefault(lang.get("code") or name.split("-")[0], []).append({
            "name": name, "language": lang.get("name_english"), "native": lang.get("name_native"),
            "region": lang.get("country_english"), "quality": entry.get("quality"),
            "speakers": entry.get("num_speakers"), "size_bytes": size, "installed": name in have,
        })
    return out


@dataclass(frozen=True)
class _File:
    path: str  # relative to the base URL
    size: int
    md5: str


def _files(name: str, entry: dict) -> list[_File]:
    files = []
    for path, meta in (entry.get("files") or {}).items():
        base = path.rsplit("/", 1)[-1]
        if base not in (f"{name}.onnx", f"{name}.onnx.json", "MODEL_CARD") or not isinstance(meta, dict):
            continue
        try:
            files.append(_File(path, int(meta["size_bytes"]), str(meta["md5_digest"]).lower()))
        except (KeyError, TypeError, ValueError):
            raise VoiceInstallError(f"the catalogue's entry for {path} has no size_bytes/md5_digest") from None
    names = {f.path.rsplit("/", 1)[-1] for f in files}
    if {f"{name}.onnx", f"{name}.onnx.json"} - names:
        raise VoiceInstallError(f"the catalogue lists no model and config for {name!r}")
    return files


def install(name: str, *, url: str | None = None, force: bool = False, offline: bool | None = None,
            progress: Callable[[int, int], None] | None = None) -> InstalledVoice:
    """Download the catalogue's voice `name`, check every file's size and MD5, and install it atomically.

    `progress(done, total)` is called with bytes as the download goes. Already installed: returned as it is
    unless `force` downloads it again."""
    name = name.strip()
    if not force and installed_model(name) is not None:
        return next(v for v in installed_voices() if v.name == name)
    _refuse_offline(f"download the Piper voice {name!r}", offline)
    catalogue = fetch_catalogue(url, offline)
    entry = catalogue.get(name)
    if entry is None:
        entry = next((e for e in catalogue.values() if name in (e.get("aliases") or [])), None)
    if entry is None or not valid_name(str(entry.get("key", name))):
        import difflib

        close = difflib.get_close_matches(name, list(catalogue), n=3)
        hint = f"did you mean {' or '.join(close)}?" if close else "audiogen voices --available lists them"
        raise VoiceInstallError(f"the Piper voice catalogue has no voice {name!r}", hint=hint)
    name = str(entry.get("key", name))
    files = _files(name, entry)
    root = voices_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        _sweep(root)
        staging = Path(tempfile.mkdtemp(prefix=f".install-{name}.", dir=root))
    except OSError as e:
        raise VoiceInstallError(f"cannot write to {root}: {e.strerror or e}") from None
    try:
        folder = staging / name
        folder.mkdir()
        total, done = sum(f.size for f in files), [0]

        def step(n: int) -> None:
            done[0] += n
            if progress:
                progress(done[0], total)

        for f in files:
            _download(base_url(url) + f.path, folder / f.path.rsplit("/", 1)[-1], f, step)
        target = root / name
        if target.exists():  # --force: the old copy goes only once the new one is complete
            os.replace(target, staging / ".old")
        os.replace(folder, target)
    except OSError as e:
        raise VoiceInstallError(f"cannot install {name} into {root}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return next(v for v in installed_voices() if v.name == name)


def _download(url: str, dest: Path, f: _File, step: Callable[[int], None]) -> None:
    """One file, streamed to `dest`, checked against the catalogue's size and MD5."""
    import http.client

    digest, got = hashlib.md5(usedforsecurity=False), 0
    with dest.open("wb") as out:  # a local OSError here is reported as one by install()
        try:
            response = _open(url)
        except (OSError, ValueError) as e:
            raise _network_error(url, e) from None
        with response:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as e:  # the connection broke mid-file
                    raise _network_error(url, e) from None
                if not chunk or got + len(chunk) > f.size:
                    got += len(chunk)
                    break
                got += len(chunk)
                digest.update(chunk)
                out.write(chunk)
                step(len(chunk))
    if got != f.size:
        raise VoiceInstallError(f"{url} was cut short or has the wrong size: got {got:,} bytes, the catalogue "
                                f"lists {f.size:,}", hint="nothing was installed; try again")
    if digest.hexdigest() != f.md5:
        raise VoiceInstallError(f"{url} does not match the catalogue's MD5 digest (got {digest.hexdigest()}, "
                                f"expected {f.md5})", hint="nothing was installed; the file or the catalogue is "
                                "damaged, or a proxy changed it")


def _sweep(root: Path) -> None:
    """Staging folders of installs and removals that were killed (an hour old: not another one running now)."""
    import time

    for p in [*root.glob(".install-*"), *root.glob(".remove-*")]:
        with contextlib.suppress(OSError):
            if time.time() - p.stat().st_mtime > 3600:
                shutil.rmtree(p)
