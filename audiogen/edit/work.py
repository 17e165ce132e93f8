"""What the editor's page asks of audiogen: check text as `check` would, plan it, hear a step, build.

Every function takes the editor's text, not the file on disk, so the page shows the routine being typed.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import threading
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from audiogen.build.check import plan_for, problems_before_synthesis
from audiogen.routine.errors import AudiogenError
from audiogen.routine.library import config_for
from audiogen.routine.loader import parse_routine
from audiogen.routine.model import Routine

#: The longest silence a step preview keeps between two phrases (a 30 s hold is not worth waiting for).
PREVIEW_GAP_MS = 1200
_MARKUP = re.compile(r"\[[^\[\]]*\]")
# what a selection of YAML holds besides words to speak: `- say: >-` prefixes, comments and quotes
_KEY = re.compile(r"^\s*(?:-\s+)?[A-Za-z_][\w-]*\s*:(?:\s*[>|][-+]?)?\s*")
_COMMENT = re.compile(r"(^|\s)#.*$")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def problem_dict(p: AudiogenError) -> dict:
    return {"line": p.line, "column": p.column, "message": p.message, "field": p.field, "hint": p.hint,
            "text": p.format()}


def parse(text: str, file: Path, shown: str) -> Routine:
    """The routine in `text` as if it were `file` (its folder's audiogen.yaml applies); raises located errors
    named `shown`, the path `check` would print."""
    defaults = config_for(file).defaults or None
    return parse_routine(text, shown, defaults=defaults, base_dir=file.resolve().parent)


def _bed(routine: Routine) -> dict | None:
    bg = routine.background
    if bg is None:
        return None
    return {"track": str(bg.track), "volume_db": float(bg.volume), "duck_db": float(bg.duck)}


def check_text(text: str, file: Path, shown: str, cache=None, narrators=None) -> dict:
    """Errors (each located, the same messages as `check`), warnings and the plan of the editor's text."""
    try:
        routine = parse(text, file, shown)
        plan = plan_for(routine, cache)
    except AudiogenError as e:
        return {"ok": False, "errors": [problem_dict(p) for p in e.problems()], "plan": None, "warnings": []}
    errors: list[dict] = []
    if narrators is not None:
        problem = problems_before_synthesis(routine, shown, narrators(routine))
        if problem is not None:
            errors = [problem_dict(p) for p in problem.problems()]
    from audiogen.audio.checks import overruns

    est = " (estimated speech length)" if plan.estimated else ""
    warnings = [{"chapter": w.chapter, "message": f.format() + est, "planned_ms": w.planned_ms,
                 "real_ms": w.real_ms} for w, f in zip(plan.warnings, overruns(plan), strict=True)]
    return {"ok": not errors, "errors": errors, "plan": plan.to_dict(), "warnings": warnings,
            "bed": _bed(routine), "cue": routine.cue}


def unified_diff(mine: str, theirs: str, name: str) -> str:
    """What changed on disk (`theirs`) against the text the page holds (`mine`)."""
    return "".join(difflib.unified_diff(mine.splitlines(keepends=True), theirs.splitlines(keepends=True),
                                        f"{name} (in the editor)", f"{name} (on disk)"))


# -- jobs: a step preview or a build, run in a thread, polled by the page ------------------------------
@dataclass
class Job:
    id: str
    kind: str
    state: str = "running"  # running | done | failed
    message: str = "starting"
    done: int = 0
    total: int = 0
    result: dict = field(default_factory=dict)
    error: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "message": self.message, "done": self.done,
                "total": self.total, "result": self.result, "error": self.error}


class Jobs:
    """Jobs by id; one runs at a time (the engines and the clip cache are shared), the rest wait."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._run = threading.Lock()
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def start(self, kind: str, work: Callable[[Job], dict]) -> Job:
        job = Job(uuid.uuid4().hex, kind)
        with self._lock:
            self._jobs[job.id] = job
            for old in list(self._jobs)[:-50]:  # keep the last few for polling
                self._jobs.pop(old, None)

        def run() -> None:
            with self._run:
                try:
                    job.result = work(job)
                    job.state, job.message = "done", "done"
                except AudiogenError as e:
                    job.error = [problem_dict(p) for p in e.problems()]
                    job.state, job.message = "failed", e.message
                except Exception as e:  # noqa: BLE001 - shown in the page, the server keeps going
                    job.error = [{"text": f"{type(e).__name__}: {e}", "message": str(e)}]
                    job.state, job.message = "failed", str(e)

        threading.Thread(target=run, daemon=True, name=f"audiogen-edit-{kind}").start()
        return job


def preview_texts(routine: Routine, cache, chapter: int | None, selection: str | None) -> list[tuple[str, int]]:
    """(text, silence before it in ms) for what a preview speaks: a chapter's speech events, or a selection
    of text without its markup, and without keys and comments when it spans lines of YAML."""
    if selection is not None:
        lines = [_COMMENT.sub("", _KEY.sub("", line)).strip().strip("\"'") for line in selection.splitlines()]
        text = " ".join(_MARKUP.sub(" ", " ".join(lines)).split())
        return [(text, 0)] if text else []
    plan = plan_for(routine, cache)
    out: list[tuple[str, int]] = []
    end = None
    for e in plan.events:
        if e.chapter == chapter and e.kind == "speech" and e.text:
            gap = 0 if end is None else min(PREVIEW_GAP_MS, max(0, e.start_ms - end))
            out.append((e.text, gap))
            end = e.end_ms
    return out


def write_preview(path: Path, parts: list[tuple[list | object, int]], rate: int) -> int:
    """Write clips with the silences before them as one mono WAV; its length in ms."""
    import numpy as np

    chunks = []
    for samples, gap_ms in parts:
        if gap_ms:
            chunks.append(np.zeros(int(rate * gap_ms / 1000), dtype=np.int16))
        chunks.append(np.asarray(samples, dtype=np.int16))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    from audiogen.routine.atomic import atomic_path

    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio.astype("<i2").tobytes())
    return int(len(audio) * 1000 / rate)
