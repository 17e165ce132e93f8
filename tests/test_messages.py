"""What `audiogen build` and `audiogen check` tell the user: progress in a log, dry runs, cache counts,
--strict, errors found before synthesis, and errors that name their routine."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from audiogen.build import BuildOptions, build
from audiogen.cli import cli


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A clip cache of this test's own, empty at the start (so counts are exact)."""
    folder = tmp_path / "clip-cache"
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(folder))
    return folder


def clips_in(folder: Path) -> int:
    return len(list(folder.rglob("*.wav"))) if folder.exists() else 0


def routine(title: str, *phrases: str, extra: str = "") -> str:
    steps = "".join(f"  - title: S{i}\n    say: {p}\n" for i, p in enumerate(phrases))
    return f"title: {title}\nvoice: {{engine: espeak}}\ncue: none\n{extra}steps:\n{steps}"


def library(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text))
    return folder


def run(*args: str):
    return CliRunner(mix_stderr=False).invoke(cli, list(args))


# -- 1. progress in a log -----------------------------------------------------------------------------
def test_log_progress_lines_are_printed_when_done_with_real_counts(tmp_path, cache):
    lib = library(tmp_path / "lib", a=routine("Alpha", "First alpha phrase.", "A phrase both share."),
                  b=routine("Beta", "First beta phrase.", "A phrase both share."))
    res = run("build", str(lib), "-o", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output + res.stderr
    lines = [line for line in res.stderr.splitlines() if "'Alpha'" in line or "'Beta'" in line]
    alpha = next(line for line in lines if "1/2 'Alpha'" in line)
    beta = next(line for line in lines if "2/2 'Beta'" in line)
    assert "2 clips synthesised" in alpha, alpha
    assert "1 clip synthesised" in beta and "1 shared" in beta, beta
    assert "0 clips" not in res.stderr


def test_one_clip_is_singular(tmp_path, cache):
    src = tmp_path / "one.yaml"
    src.write_text(routine("One", "Only one phrase here."))
    res = run("build", str(src), "-o", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output + res.stderr
    assert "1 clip synthesised" in res.output and "1 clips" not in res.output + res.stderr


def test_terminal_progress_of_a_library_does_not_crash(tmp_path, cache, monkeypatch):
    import audiogen.cli as cli_mod

    init = cli_mod._Reporter.__init__

    def tty_init(self, *a):
        init(self, *a)
        self.tty = True

    monkeypatch.setattr(cli_mod._Reporter, "__init__", tty_init)
    lib = library(tmp_path / "lib", a=routine("Alpha", "Tty alpha phrase."), b=routine("Beta", "Tty beta phrase."))
    res = run("build", str(lib), "-o", str(tmp_path / "out"))
    assert res.exit_code == 0, (res.output, res.stderr, res.exception)
    assert "2 built; 2 clips synthesised" in res.output


# -- 2. --dry-run ---------------------------------------------------------------------------------------
def test_dry_run_says_planned_and_shows_estimated_lengths(tmp_path, cache):
    src = tmp_path / "dry.yaml"
    src.write_text(routine("Dry", "Press the palms gently over the face.", "Rest the hands.", extra="intro: Hi.\n"))
    checked = run("check", str(src))
    length = re.search(r", (\d+:\d\d(?:\.\d)?) \(speech estimated\)", checked.output).group(1)
    res = run("build", str(src), "-o", str(tmp_path / "out"), "--dry-run")
    assert res.exit_code == 0, res.output + res.stderr
    assert "rendered" not in res.stderr
    assert "planned 1/1 sessions" in res.stderr
    row = next(line for line in res.output.splitlines() if line.startswith("dry.mp3"))
    assert f"~{length}" in row and "planned" in row, row
    assert clips_in(cache) == 0 and not (tmp_path / "out").exists()


def test_dry_run_result_has_an_estimated_length(tmp_path, cache):
    src = tmp_path / "dry.yaml"
    src.write_text(routine("Dry", "One phrase for the api."))
    [r] = build([src], BuildOptions(out_dir=tmp_path / "out", dry_run=True))
    assert r.status == "planned" and r.length_ms and r.length_ms > 0 and r.estimated


# -- 3. cache counts ------------------------------------------------------------------------------------
def test_cold_build_counts_shared_phrases_as_shared_not_cached(tmp_path, cache):
    lib = library(tmp_path / "lib", a=routine("Alpha", "Cold alpha.", "Cold shared phrase."),
                  b=routine("Beta", "Cold beta.", "Cold shared phrase."))
    res = run("build", str(lib), "-o", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output + res.stderr
    assert res.output.rstrip().endswith("2 built; 3 clips synthesised, 1 shared"), res.output
    assert "from cache" not in res.output + res.stderr
    # built again: every clip was in the cache before this build
    res = run("build", str(lib), "-o", str(tmp_path / "out"), "--force")
    assert res.output.rstrip().endswith("2 built; 0 clips synthesised, 4 from cache"), res.output


def test_build_results_count_shared_clips(tmp_path, cache):
    lib = library(tmp_path / "lib", a=routine("Alpha", "Api alpha.", "Api shared."),
                  b=routine("Beta", "Api beta.", "Api shared."))
    a, b = build([lib], BuildOptions(out_dir=tmp_path / "out"))
    assert (a.synthesized, a.shared, a.cache_hits) == (2, 0, 0)
    assert (b.synthesized, b.shared, b.cache_hits) == (1, 1, 0)


# -- 4. check --strict ----------------------------------------------------------------------------------
def test_check_strict_with_warnings_does_not_say_ok(tmp_path):
    src = tmp_path / "long.yaml"
    src.write_text("title: Long\nvoice: {engine: espeak}\ncue: none\nsteps:\n  - title: A\n"
                   "    say: This sentence is far too long to be spoken in a single second of time.\n"
                   "    duration: 1s\n")
    plain = run("check", str(src))
    assert plain.exit_code == 0 and plain.output.startswith("ok ")
    res = run("check", "--strict", str(src))
    assert res.exit_code == 1
    assert "ok " not in res.output
    assert "failed (strict)" in res.output and "1 warning" in res.output and "1 warnings" not in res.output


# -- 5. check agrees with build -------------------------------------------------------------------------
def test_check_reports_a_language_no_engine_speaks(tmp_path):
    src = tmp_path / "xx.yaml"
    src.write_text(routine("Xx", "Hello.", extra="language: xx\n"))
    res = run("check", str(src))
    assert res.exit_code == 1, res.output
    assert "ok " not in res.output
    assert "language 'xx'" in res.stderr


def test_check_accepts_an_auto_routine_offline(tmp_path):
    src = tmp_path / "auto.yaml"
    src.write_text("title: Auto\ncue: none\nsteps:\n  - title: A\n    say: Hello.\n")
    res = run("check", str(src))
    assert res.exit_code == 0 and res.output.startswith("ok "), res.output + res.stderr


def test_check_reports_a_missing_or_unreadable_cover(tmp_path):
    missing = tmp_path / "missing.yaml"
    missing.write_text(routine("Missing", "Hello.", extra="cover: nowhere.png\n"))
    (tmp_path / "text.png").write_text("not an image")
    bad = tmp_path / "bad.yaml"
    bad.write_text(routine("Bad", "Hello.", extra="cover: text.png\n"))
    for src in (missing, bad):
        res = run("check", str(src))
        assert res.exit_code == 1, res.output
        assert "ok " not in res.output
        assert res.stderr.startswith(f"error: {src}") and "cover" in res.stderr, res.stderr


def test_build_rejects_language_and_cover_before_narrating(tmp_path, cache):
    lib = library(tmp_path / "lib", a=routine("Good", "Pre good phrase."),
                  b="title: Xx\nlanguage: xx\ncue: none\nsteps:\n  - title: A\n    say: Pre xx phrase.\n",
                  c=routine("Cover", "Pre cover phrase.", extra="cover: nowhere.png\n"))
    res = run("build", str(lib), "-o", str(tmp_path / "out"))
    assert res.exit_code == 1
    assert "narrating 1/1 'Good': 1 clip synthesised" in res.stderr, res.stderr  # the failing ones were never narrated
    assert clips_in(cache) == 1
    assert f"error: {lib / 'b.yaml'}: no engine can narrate language 'xx'" in res.stderr
    assert f"error: {lib / 'c.yaml'}" in res.stderr and "nowhere.png" in res.stderr


def test_dry_run_reports_the_same_errors(tmp_path, cache):
    src = tmp_path / "xx.yaml"
    src.write_text(routine("Xx", "Hello.", extra="language: xx\n"))
    res = run("build", str(src), "-o", str(tmp_path / "out"), "--dry-run")
    assert res.exit_code == 1 and "language 'xx'" in res.stderr


# -- 6. errors name the routine -------------------------------------------------------------------------
def test_engine_errors_start_with_the_routine_file(tmp_path, cache):
    src = tmp_path / "de.yaml"
    src.write_text("title: Deutsch\nlanguage: de\ncue: none\nphrases: {halfway: Halbzeit}\n"
                   "steps:\n  - title: A\n    say: Hallo.\n")
    res = run("build", str(src), "-o", str(tmp_path / "out"), "--engine", "piper")
    assert res.exit_code == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert errors and all(line.startswith(f"error: {src}: ") for line in errors), res.stderr


def test_every_failed_result_carries_a_path(tmp_path, cache):
    src = tmp_path / "xx.yaml"
    src.write_text(routine("Xx", "Hello.", extra="language: xx\n"))
    [r] = build([src], BuildOptions(out_dir=tmp_path / "out"))
    assert r.status == "failed" and r.error.path == str(src)


class _Refusing:
    """An engine that is there but refuses every phrase (its error does not know the routine)."""

    name, offline, parallel = "refusing", True, None

    def version(self) -> str:
        return "1"

    def unavailable_reason(self) -> None:
        return None

    def resolve_voice(self, voice) -> str:
        return "v"

    def synthesize(self, text, voice):
        from audiogen.routine.errors import EngineError

        raise EngineError("refusing: no")


def test_an_error_raised_while_narrating_names_the_routine(tmp_path, cache, monkeypatch):
    from audiogen.voice import engines

    monkeypatch.setitem(engines.ENGINES, "refusing", _Refusing)
    monkeypatch.setitem(engines._instances, "refusing", _Refusing())
    src = tmp_path / "r.yaml"
    src.write_text(routine("Refused", "Refused phrase."))
    [r] = build([src], BuildOptions(out_dir=tmp_path / "out", engine="refusing"))
    assert r.status == "failed" and r.error.message == "refusing: no" and r.error.path == str(src)


def test_plan_reports_what_check_reports(tmp_path):
    src = tmp_path / "xx.yaml"
    src.write_text(routine("Xx", "Hello.", extra="language: xx\n"))
    res = run("plan", str(src))
    assert res.exit_code == 1 and res.stderr.startswith(f"error: {src}: ") and "language 'xx'" in res.stderr


# -- 7. -o pointing at a file ---------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_output_that_is_a_file_fails_before_synthesis(tmp_path, cache, where):
    (tmp_path / "taken.mp3").write_text("x")
    out = tmp_path / "taken.mp3" if where == "file" else tmp_path / "taken.mp3" / "sub"
    lib = library(tmp_path / "lib", a=routine("A", "Out a phrase."), b=routine("B", "Out b phrase."))
    res = run("build", str(lib), "-o", str(out))
    assert res.exit_code == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(tmp_path / "taken.mp3") in errors[0], res.stderr
    assert "narrat" not in res.stderr and clips_in(cache) == 0


def test_verbose_says_what_each_stage_did(tmp_path):
    from click.testing import CliRunner

    from audiogen.cli import cli

    src = tmp_path / "v.yaml"
    src.write_text("title: Verbose\nvoice: {engine: espeak}\ncue: none\nbackground: rain\nsteps:\n"
                   "  - title: One\n    say: Rest your hands.\n    hold: 2s\n")
    quiet = CliRunner().invoke(cli, ["build", str(src), "-o", str(tmp_path / "a")])
    loud = CliRunner().invoke(cli, ["build", str(src), "-o", str(tmp_path / "b"), "--force", "-v"])
    assert quiet.exit_code == 0 and loud.exit_code == 0, loud.output
    for words in ("narrated by espeak (en-us)", "levelled (speech):", "dB on the mix", "wrote verbose.mp3",
                  "verbose.vtt"):
        assert words in loud.output, (words, loud.output)
        assert words not in quiet.output
