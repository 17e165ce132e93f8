"""Validated routines kept between builds of a library, so a change to one routine file re-parses that file
alone, not the other hundreds.

Parsing and validating a routine (YAML with marks, pydantic) costs about 2 ms; a 500-routine library paid
about 1 s of that on every build in which anything changed. After a library build, each routine that
loaded cleanly is kept as it came out of the loader, keyed by everything its loading read: the file's
path and bytes (SHA-256), the library defaults merged under it, and the code that validates it (audiogen's
version, the routine and build floors' source files' sizes and mtimes, PyYAML's and pydantic's versions). The next
build reads each file's bytes (no parsing) and reuses the kept routine when the key is the same; anything
else (a changed byte, changed defaults, another audiogen) loads the file as before, so an error is located
exactly as it always is, and a file with an error is never kept. A kept routine's sound references are
checked again (a cue file deleted since is still an error, reported by loading the file anew).

The memo is one file per library folder in the clip cache folder (`builds/routines-<hash>.pickle`), never
in the output folder: it holds pickled objects, so it lives where only this user writes (like the clip
cache), not in a folder that may be published or shared. A memo that cannot be read is ignored; one that
cannot be written only means the next build parses again.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

from audiogen.routine.model import Routine

#: Bump when what an entry holds changes.
MEMO_FORMAT = 3


def _code_stamp() -> str:
    """What a kept routine and its derived values depend on besides the file: audiogen's routine floor (the
    loader), the build floor (what is derived from a routine), and the libraries that validate."""
    import pydantic
    import yaml

    from audiogen._version import __version__

    package = Path(__file__).resolve().parent.parent
    stats = []
    for p in sorted([*(package / "routine").glob("*.py"), *(package / "build").glob("*.py")]):
        st = p.stat()
        stats.append([p.parent.name, p.name, st.st_size, st.st_mtime_ns])
    blob = json.dumps([MEMO_FORMAT, __version__, pydantic.VERSION, yaml.__version__, stats])
    return hashlib.sha256(blob.encode()).hexdigest()


class RoutineMemo:
    """Load a library's routine files, reusing the validated routine of every file unchanged since the
    last build. `parsed` and `reused` count what this build did (the build reports them)."""

    def __init__(self, folder: Path, defaults: dict | None, cache_root: Path) -> None:
        ident = hashlib.sha256(os.path.abspath(folder).encode()).hexdigest()[:32]
        self.path = Path(cache_root) / "builds" / f"routines-{ident}.pickle"
        self.defaults = defaults or None
        self._context = hashlib.sha256(
            json.dumps([_code_stamp(), self.defaults], sort_keys=True, default=str).encode()).hexdigest()
        self._old: dict[str, list] = {}
        try:
            with open(self.path, "rb") as f:
                data = pickle.load(f)
            if isinstance(data, dict) and data.get("format") == MEMO_FORMAT:
                self._old = data["entries"]
        except Exception:  # noqa: BLE001 - missing, truncated or from another version: start afresh
            self._old = {}
        self._new: dict[str, list] = {}  # path -> [key, pickled routine, sound files named, derived values]
        self._routines: dict[int, str] = {}  # id(routine handed out) -> its path, for `derived`
        self.parsed = 0
        self.reused = 0

    def _key(self, path: Path, data: bytes) -> str:
        return hashlib.sha256(self._context.encode() + b"\0" + str(path).encode() + b"\0"
                              + os.path.abspath(path).encode() + b"\0" + data).hexdigest()

    def load(self, path: Path) -> Routine:
        """The routine in `path`, as `load_routine(path, defaults=...)` gives it (raises its errors)."""
        from audiogen.routine.loader import load_routine

        try:
            data = Path(path).read_bytes()
        except OSError:
            data = None
        if data is not None:
            key = self._key(path, data)
            kept = self._old.get(str(path))
            if isinstance(kept, list) and len(kept) == 4 and kept[0] == key:
                routine = self._reuse(kept[1], kept[2])
                if routine is not None:
                    self._new[str(path)] = list(kept)  # a copy: `derived` may add to it
                    self._routines[id(routine)] = str(path)
                    self.reused += 1
                    return routine
        self.parsed += 1
        routine = load_routine(path, defaults=self.defaults)
        if data is not None:
            try:
                blob = pickle.dumps(routine, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - a routine that cannot be kept is parsed again next time
                return routine
            self._new[str(path)] = [key, blob, _named_files(routine), {}]
            self._routines[id(routine)] = str(path)
        return routine

    def derived(self, routine: Routine, name: str, compute):
        """`compute(routine)`, a value that depends on `routine` alone (and audiogen's code), kept with it: an
        unchanged routine's comes from the last build."""
        entry = self._new.get(self._routines.get(id(routine), ""))
        if entry is None:
            return compute(routine)
        if name not in entry[3]:
            entry[3] = {**entry[3], name: compute(routine)}  # a new dict: the entry read from disk stays as it was
        return entry[3][name]

    @staticmethod
    def _reuse(blob: bytes, files: list) -> Routine | None:
        """A kept routine, or None when it cannot be used (then the file is loaded anew, errors located)."""
        from audiogen.routine.soundref import check_sound_ref

        try:
            routine = pickle.loads(blob)
        except Exception:  # noqa: BLE001
            return None
        if not isinstance(routine, Routine):
            return None
        # a sound file the routine names may have gone since: loading it anew reports that, located
        if any(check_sound_ref(ref, kind, routine.base_dir) for ref, kind in files):
            return None
        return routine

    def save(self) -> None:
        """Keep this build's routines (only the files it loaded: a deleted routine's entry goes)."""
        if self._new == self._old:
            return
        try:
            from audiogen.routine.atomic import write_bytes

            write_bytes(self.path, pickle.dumps({"format": MEMO_FORMAT, "entries": self._new},
                                                protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:  # noqa: BLE001 - never fail a build over its memo
            pass


def _named_files(routine: Routine) -> list[tuple[str, str]]:
    """The sounds `routine` names that are not built in ((reference, kind): files, which can go)."""
    from audiogen.routine.markup import CueMark, parse_markup
    from audiogen.routine.soundref import is_builtin

    refs = [(routine.cue, "cue")] if routine.cue else []
    if routine.background:
        refs.append((routine.background.track, "ambience"))
    texts = [routine.intro, routine.outro] + [t for step in routine.steps for t in (step.say, step.side_prompt)]
    refs += [(seg.sound, "cue") for text in texts for seg in parse_markup(text or "") if isinstance(seg, CueMark)]
    return [(ref, kind) for ref, kind in refs if not is_builtin(ref, kind)]
