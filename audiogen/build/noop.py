"""The no-op fast path: a rebuild of an unchanged library answered from a stamp, without loading anything.

A full no-op rebuild loads and validates every routine (YAML, pydantic), fingerprints it and finds its
outputs current: for 500 routines that, and importing numpy and the render stack, is most of a second.
After every clean local build a *stamp* is recorded: a hash of everything the build read (the routine
files' bytes, the library's audiogen.yaml, the options and environment that change outputs, audiogen's
own code and the installed packages, external sound files) and the size and mtime of every file the
output folder then held, with each session's result. The next build of the same paths computes the
stamp again from file bytes and stats alone (standard library only: this module imports nothing of
audiogen's heavy floors); when it and the output folder match, nothing can have changed and the recorded
results are the answer. Anything else (a changed byte, a deleted or touched output, --force) takes the
full path, which is always right. Stamps live in the clip cache folder (`builds/`), one small file per
set of paths and options, so the output folder itself is never written by a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from audiogen.routine.walk import LIBRARY_FILE, routine_files

#: Bump when a stamp's meaning changes.
STAMP_FORMAT = 2  # 2: the library notes are recorded
_ENV_PREFIXES = ("AUDIOGEN_", "ORT_", "PIPER_", "ESPEAK")


@dataclass
class UnchangedResult:
    """A session found unchanged by its stamp: the fields of `BuildResult` the command line shows."""

    source: str
    status: str = "skipped"
    title: str | None = None
    slug: str | None = None
    variant: str | None = None
    mp3: Path | None = None
    length_ms: int | None = None
    engine: str | None = None
    voice: str | None = None
    loudness: float | None = None
    programme_loudness: float | None = None
    warnings: list[str] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)  # the sound checks' findings when it was built
    limiter_db: float | None = None
    notes: list[str] = field(default_factory=list)
    error: None = None
    estimated: bool = False
    synthesized: int = 0
    cache_hits: int = 0
    shared: int = 0
    details: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """As `BuildResult.to_dict` (`audiogen build --json`)."""
        return result_dict(self)


def result_dict(r) -> dict:
    """A build result (`BuildResult` or `UnchangedResult`) as JSON-ready data (`audiogen build --json`)."""
    return {"source": r.source, "status": r.status, "title": r.title, "slug": r.slug,
            "variant": r.variant, "mp3": str(r.mp3) if r.mp3 else None, "length_ms": r.length_ms,
            "engine": r.engine, "voice": r.voice, "loudness": r.loudness,
            "programme_loudness": r.programme_loudness, "limiter_db": r.limiter_db,
            "warnings": list(r.warnings), "checks": list(r.checks), "notes": list(r.notes),
            "error": r.error.format() if r.error is not None else None}


_FIELDS = ("source", "title", "slug", "variant", "length_ms", "engine", "voice", "loudness", "programme_loudness",
           "warnings", "checks", "limiter_db")


def _cache_root(cache) -> Path:
    if cache is not None:
        return Path(getattr(cache, "root", cache))
    env = os.environ.get("AUDIOGEN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("audiogen", appauthor=False))


def _stat(p: Path) -> list[int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _environment() -> list:
    """What outside the routines changes a build's outputs: audiogen's code, installed packages, env vars."""
    from audiogen._version import __version__

    pkg = Path(__file__).resolve().parent.parent
    kinds = (".py", ".html", ".css", ".js", ".json", ".txt", ".svg")
    code = sorted((str(p.relative_to(pkg)), *(_stat(p) or [])) for p in pkg.rglob("*")
                  if p.suffix in kinds and "__pycache__" not in p.parts)
    sites = [(p, _stat(Path(p))) for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES) and k != "AUDIOGEN_CACHE_DIR")
    return [STAMP_FORMAT, __version__, sys.version, code, sites, env]


def _options_key(options) -> list:
    from audiogen.voice.privacy import offline_mode

    out_dir = getattr(options, "out_dir", None)
    offline = getattr(options, "offline", None)
    return [str(Path(out_dir).resolve()) if out_dir is not None else None, getattr(options, "engine", None),
            bool(offline) if offline is not None else offline_mode(), bool(getattr(options, "strict", False)),
            getattr(options, "base_url", None)]


def _key(files: list[Path], library: bool, options) -> str:
    ident = json.dumps([STAMP_FORMAT, library, [os.path.abspath(f) for f in files], _options_key(options)])
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def _parents(path: str) -> list[str]:
    out = []
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            return out
        out.append(parent)
        path = parent


#: This process's last stamp per record path: (stamp, the stats of the files it hashed then). A build
#: that checked for a no-op records that stamp (from the bytes as they were before the build read them)
#: rather than hashing every file again, unless a routine file's size or mtime moved meanwhile.
_SEEN: dict[Path, tuple[str, list]] = {}


def _folders(names: list[str]) -> list[str]:
    """Every folder above a routine, so the library's own audiogen.yaml is among them (wherever its routines
    lie)."""
    return list(dict.fromkeys(d for name in dict.fromkeys(os.path.dirname(n) for n in names)
                              for d in [name, *_parents(name)]))


def _input_stats(files: list[Path]) -> list:
    """Size and mtime of what a stamp hashes (the routine files and every audiogen.yaml above them)."""
    names = [os.path.abspath(f) for f in files]
    return [_stat(Path(n)) for n in names] + [_stat(Path(d) / LIBRARY_FILE) for d in _folders(names)]


def _stamp(files: list[Path], library: bool, options, environment: list) -> str | None:
    h = hashlib.sha256(json.dumps([environment, _options_key(options), library]).encode())
    names = [os.path.abspath(f) for f in files]
    folders = _folders(names)
    try:
        for name, f in zip(names, files, strict=True):
            h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
        for folder in folders:
            config = os.path.join(folder, LIBRARY_FILE)
            h.update(b"config\0" + (Path(config).read_bytes() if os.path.isfile(config) else b"-") + b"\0")
    except OSError:
        return None
    return h.hexdigest()


def _listing(out_dir: Path) -> dict[str, list[int]]:
    out = {}
    try:
        with os.scandir(out_dir) as it:
            for e in it:
                if e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    out[e.name] = [st.st_size, st.st_mtime_ns]
    except OSError:
        return {}
    return out


def _record_path(files: list[Path], library: bool, options) -> Path:
    return _cache_root(getattr(options, "cache", None)) / "builds" / f"{_key(files, library, options)}.json"


def _files_of(path: Path) -> tuple[list[Path], bool]:
    return (routine_files(path), True) if path.is_dir() else ([path], False)


def unchanged_results(paths, options) -> list[UnchangedResult] | None:
    """Every session of `paths` when a recorded stamp shows nothing changed since the last clean build,
    else None (then a full build decides). Reads file bytes and stats only; writes nothing. The library
    notes that build gave (`options.notify`, if any) are given again, once an answer is certain."""
    if any(getattr(options, k, None) for k in ("force", "dry_run", "prune", "scheduler")):
        return None
    environment = None
    results: list[UnchangedResult] = []
    notices: list[str] = []
    for raw in paths:
        files, library = _files_of(Path(raw))
        if not files:
            return None
        try:
            record = json.loads(_record_path(files, library, options).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        environment = environment if environment is not None else _environment()
        stats = _input_stats(files)
        stamp = _stamp(files, library, options, environment)
        if stamp is not None:
            _SEEN[_record_path(files, library, options)] = (stamp, stats)
        if not isinstance(record, dict) or record.get("stamp") != stamp:
            return None
        if record.get("config_scheduler"):
            return None
        out_dir = Path(record["out_dir"])
        if _listing(out_dir) != record.get("outputs"):
            return None
        if any(_stat(Path(p)) != st for p, st in record.get("sounds", {}).items()):
            return None
        for r in record.get("results", []):
            results.append(UnchangedResult(mp3=out_dir / (r.get("mp3") or f"{r['slug']}.mp3"),
                                           **{k: r.get(k) for k in _FIELDS}))
            results[-1].warnings = list(results[-1].warnings or [])
            results[-1].checks = list(results[-1].checks or [])
        notices += [n for n in record.get("notices", []) if isinstance(n, str)]
    notify = getattr(options, "notify", None)
    for message in notices if notify else ():  # what the full build said of the library, said again
        notify(message)
    return results


def record(files: list[Path], out_dir: Path, options, jobs, failed, library: bool, scheduler=None,
           notices: list[str] = ()) -> None:
    """After a clean local build (nothing failed), the stamp the next no-op rebuild is answered from;
    `notices`: the build's library-level notes, which the no-op rebuild says again.

    Best effort: a stamp that cannot be written only means the next no-op takes the full path."""
    try:
        path = _record_path(files, library, options)
        if failed or options.dry_run or any(j.result.status not in ("built", "retagged", "skipped") for j in jobs):
            path.unlink(missing_ok=True)
            return
        seen = _SEEN.pop(path, None)
        if seen is not None and seen[1] == _input_stats(files):
            stamp = seen[0]  # hashed before this build read the files: if one changed since, it will not match
        else:
            stamp = _stamp(files, library, options, _environment())
        if stamp is None:
            return
        sounds = {}
        for j in jobs:
            r = j.routine
            for ref, kind in ((r.cue, "cue"), (r.background.track if r.background else None, "ambience")):
                if ref:
                    from audiogen.routine.soundref import is_builtin, resolve_path

                    if not is_builtin(ref, kind):
                        p = resolve_path(ref, r.base_dir)
                        sounds[str(p)] = _stat(p)
        data = {"stamp": stamp, "out_dir": str(Path(out_dir).resolve()), "config_scheduler": scheduler,
                "outputs": _listing(Path(out_dir)), "sounds": sounds, "notices": list(notices),
                "results": [{k: getattr(j.result, k) for k in _FIELDS}
                            | {"source": str(j.result.source), "mp3": j.result.mp3.name if j.result.mp3 else None}
                            for j in jobs]}
        text = json.dumps(data, ensure_ascii=False, default=str)
        if path.is_file() and path.read_text("utf-8") == text:
            return
        from audiogen.routine.atomic import write_text

        write_text(path, text)
    except Exception:  # noqa: BLE001 - never fail a build over its stamp
        pass
