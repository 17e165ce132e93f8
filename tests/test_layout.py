"""The package's floors hold: the import contract, no cycles, no private reaches, and light imports.

The contract itself is `[tool.importlinter]` in pyproject.toml (import-linter's `layers`); these tests run
it on the real package, show that it fails on an upward import, and check what the floors promise about
start-up: the planner loads no numpy, and `audiogen plan` loads no speech engine.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp", reason="pip install -e '.[test]' (import-linter) to check the floors")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "audiogen"
EXAMPLE = ROOT / "examples" / "facial-massage" / "01-morning-circulation.yaml"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """import-linter's own command on the package found in `cwd` (its pyproject.toml holds the contract)."""
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_import_contract_is_kept():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 kept, 0 broken" in run.stdout


def test_the_contract_breaks_on_an_upward_import(tmp_path):
    """A copy of the package with one import running up the floors (the planner importing the renderer)."""
    shutil.copytree(PACKAGE, tmp_path / "audiogen", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    planner = tmp_path / "audiogen" / "plan" / "planner.py"
    planner.write_text(planner.read_text() + "\n\ndef _upward():\n    from audiogen.audio import session  # noqa\n")
    run = lint_imports(tmp_path)
    assert run.returncode != 0
    assert "BROKEN" in run.stdout and "audiogen.plan.planner -> audiogen.audio.session" in run.stdout


def test_no_module_is_part_of_an_import_cycle():
    graph = grimp.build_graph("audiogen", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported == "audiogen" or module == "audiogen":
                continue  # the package facade re-exports the API lazily; nothing imports it for a name
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                cycles.append(" -> ".join((module, *chain)))
    assert not cycles, "\n".join(cycles)


def test_no_module_imports_another_modules_private_names():
    reaches = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("audiogen"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        reaches.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{alias.name}")
    assert not reaches, "\n".join(reaches)


def test_every_module_is_on_a_floor():
    """Besides the facade, the API, the CLI and the version, every module lives in a floor's package."""
    floors = {"routine", "plan", "dsp", "voice", "audio", "publish", "build", "edit"}
    loose = {"__init__.py", "__main__.py", "_version.py", "api.py", "cli.py"}
    stray = [p.name for p in PACKAGE.iterdir() if p.suffix == ".py" and p.name not in loose]
    stray += [p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name not in floors | {"__pycache__"}]
    assert not stray


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code` (and the shared libraries it mapped)."""
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        maps = open("/proc/self/maps").read() if sys.platform == "linux" else ""
        loaded = set(sys.modules)
        if "libespeak-ng" in maps:
            loaded.add("<libespeak-ng>")
        print("\\n".join(sorted(loaded)))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUDIOGEN_CACHE_DIR": os.environ.get("AUDIOGEN_CACHE_DIR", "")}
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120,
                         cwd=ROOT)
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


def test_importing_the_planner_loads_no_numpy_and_no_audio_stack():
    loaded = _modules_after("import audiogen.plan.planner, audiogen.plan.variants, audiogen")
    assert "numpy" not in loaded
    assert not {m for m in loaded if m.startswith(("audiogen.audio", "audiogen.voice", "audiogen.build"))}


def test_the_cli_starts_without_numpy_pydantic_or_yaml():
    loaded = _modules_after("""
        from audiogen.cli import cli
        try:
            cli(["--help"])
        except SystemExit:
            pass
    """)
    assert "click" in loaded
    assert not {"numpy", "pydantic", "yaml", "mutagen", "PIL"} & loaded


def test_plan_loads_no_speech_engine(tmp_path):
    """`audiogen plan` uses cached clip lengths where it has them, but never loads an engine to find them."""
    loaded = _modules_after(f"""
        import os
        os.environ["AUDIOGEN_CACHE_DIR"] = {str(tmp_path)!r}
        from audiogen.cli import cli
        try:
            cli(["plan", {str(EXAMPLE)!r}])
        except SystemExit as e:
            assert not e.code, e.code
    """)
    assert "audiogen.plan.planner" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("onnxruntime", "piper", "gtts")}
    assert "<libespeak-ng>" not in loaded
