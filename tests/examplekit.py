"""The README's Python example, run once per test session as a user would run it: a fresh Python process,
offline, in a folder holding a copy of examples/. test_readme checks that it runs; test_example_levels
measures the sessions it built (reading them only), instead of building the same examples again."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_python() -> str:
    """The README's one Python block."""
    text = (ROOT / "README.md").read_text("utf-8")
    [python] = [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S) if lang == "python"]
    return python


@dataclass
class ExampleRun:
    run: subprocess.CompletedProcess
    folder: Path  # where it ran (cwd): examples/ copied in, its output below

    def built(self, src: Path) -> Path | None:
        """The MP3 this run built from the shipped routine `src` (matched by its folder and file name), if
        any: found through the build's manifest, wherever the example put its output."""
        want = (src.parent.name, src.name)
        for manifest in self.folder.rglob(".audiogen-manifest.json"):
            for slug, entry in json.loads(manifest.read_text("utf-8")).items():
                source = Path(entry.get("source", ""))
                mp3 = manifest.parent / f"{slug}.mp3"
                if (source.parent.name, source.name) == want and mp3.is_file():
                    return mp3
        return None


def run_readme_python(folder: Path) -> ExampleRun:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "examples", folder / "examples")
    env = {**os.environ, "AUDIOGEN_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", readme_python()], cwd=folder, env=env, capture_output=True,
                         text=True, timeout=900)
    return ExampleRun(run, folder)
