"""Which files of a folder are routines: standard library only, so the command line's no-op check
(build/noop.py) can walk a library without loading pydantic, YAML or the rest of the routine floor."""

from __future__ import annotations

import os
from pathlib import Path

#: A library folder's settings file (not a routine).
LIBRARY_FILE = "audiogen.yaml"


def routine_files(folder: Path) -> list[Path]:
    """Every routine file below `folder` (`*.yaml`/`*.yml`, not audiogen.yaml, nothing in a hidden folder),
    in the order of their paths (as `sorted(folder.rglob("*"))` gives them).

    One `os.scandir` per folder: whether an entry is a file or a folder comes with the listing (a stat only
    for symlinks, followed as `Path.is_file` follows them; symlinked folders are not entered, as `rglob`
    does not), and hidden folders are not walked at all (a library's `.git` costs nothing)."""
    found: list[tuple[str, ...]] = []

    def walk(path: str, rel: tuple[str, ...]) -> None:
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            return
        for e in entries:
            if e.name.startswith("."):
                continue  # a hidden file, or a hidden folder and all in it
            try:
                if e.is_dir() and not e.is_symlink():
                    walk(e.path, (*rel, e.name))
                    continue
                if (os.path.splitext(e.name)[1].lower() in (".yaml", ".yml") and e.name != LIBRARY_FILE
                        and e.is_file()):
                    found.append((*rel, e.name))
            except OSError:
                continue

    walk(os.fspath(folder), ())
    return [folder.joinpath(*parts) for parts in sorted(found)]
