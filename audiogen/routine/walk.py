"""Which files of a folder are routines: standard library only, so the command line's no-op check
(build/noop.py) can walk a library without loading pydantic, YAML or the rest of the routine floor."""

from __future__ import annotations

from pathlib import Path

#: A library folder's settings file (not a routine).
LIBRARY_FILE = "audiogen.yaml"


def routine_files(folder: Path) -> list[Path]:
    """Every routine file below `folder` (`*.yaml`/`*.yml`, not audiogen.yaml, nothing in a hidden folder)."""
    found = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in (".yaml", ".yml") or p.name == LIBRARY_FILE or not p.is_file():
            continue
        if any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        found.append(p)
    return found
