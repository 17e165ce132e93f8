"""The output folder's manifest (what each session was built from) and the lock that lets builds share it."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from audiogen.build.jobs import BuildOptions, Job
from audiogen.routine.atomic import write_text
from audiogen.routine.errors import OutputError
from audiogen.routine.library import LibraryConfig

MANIFEST = ".audiogen-manifest.json"


def load_manifest(out_dir: Path) -> dict:
    try:
        data = json.loads((out_dir / MANIFEST).read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (FileNotFoundError, ValueError, OSError):
        return {}


def write_manifest(out_dir: Path, manifest: dict, jobs: list[Job], config: LibraryConfig, options: BuildOptions,
            library: bool, changed: bool) -> None:
    """Write the manifest; report (and with --prune remove) outputs whose routine is gone."""
    current = {j.slug for j in jobs}
    stale = []
    if library:
        for slug, entry in list(manifest.items()):
            if slug in current:
                continue
            src = Path(entry.get("source", ""))
            if not src.exists() or not any(j.source.resolve() == src for j in jobs):
                stale.append(slug)
    for slug in stale:
        if options.prune:
            for p in out_dir.glob(f"{slug}.*"):
                if (p.suffix in (".mp3", ".json", ".lrc", ".vtt", ".srt", ".png", ".jpg", ".m4b", ".opus", ".wav")
                        or p.name.endswith(".chapters.json")):
                    p.unlink(missing_ok=True)
            if (out_dir / slug / f"{slug}.m3u8").is_file():  # its step files (output.split: steps)
                import shutil

                shutil.rmtree(out_dir / slug, ignore_errors=True)
            manifest.pop(slug, None)
            if options.notify:
                options.notify(f"removed {out_dir / (slug + '.mp3')} (its routine is gone)")
        elif options.notify:
            options.notify(f"{out_dir / (slug + '.mp3')} has no routine any more (--prune removes it)")
    if changed or (stale and options.prune):
        built = {j.slug: manifest[j.slug] for j in jobs
                 if (j.result.status in ("built", "retagged") or j.refreshed) and j.slug in manifest}
        pruned = set(stale) if options.prune else set()
        with locked(out_dir):
            # another build may have written the manifest since we read it: merge, never overwrite
            current = load_manifest(out_dir)
            current.update(built)
            for slug in pruned:
                current.pop(slug, None)
            write_text(out_dir / MANIFEST, json.dumps(current, indent=1, sort_keys=True) + "\n")


@contextlib.contextmanager
def locked(folder: Path):
    """An exclusive advisory lock (flock) on the output folder itself, held for the duration of the block.

    Locking the folder leaves no lock file behind (a lock file cannot be removed safely: a build waiting
    on it would then hold a lock nobody else sees).
    """
    import fcntl

    from audiogen.routine.atomic import os_error_hint

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise OutputError(f"cannot write to {folder}: {e.strerror or e}", path=str(folder),
                          hint=os_error_hint(e)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
