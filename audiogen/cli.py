"""The `audiogen` command: a thin click layer over the library API."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from . import __version__
from .durations import format_ms
from .errors import AudiogenError


def _fail(e: AudiogenError) -> None:
    click.echo(click.style("error: ", fg="red", bold=True) + e.format(), err=True)


class _Cli(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AudiogenError as e:
            _fail(e)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: nothing half-written was left behind", err=True)
            ctx.exit(130)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="audiogen")
def cli() -> None:
    """Turn routine scripts written in YAML into narrated, chaptered MP3 guided sessions."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), help="Output folder.")
@click.option("--engine", type=click.Choice(["auto", "gtts", "piper", "espeak"]),
              help="Override every routine's engine.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Parallel jobs (default: the cores).")
@click.option("--force", is_flag=True, help="Rebuild even unchanged routines.")
@click.option("--strict", is_flag=True, help="Speech longer than its step is an error, not a warning.")
@click.option("--dry-run", is_flag=True, help="Narrate and plan, but write nothing.")
@click.option("--offline", is_flag=True, default=None, help="Never contact the network (also AUDIOGEN_OFFLINE=1).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option("-v", "--verbose", is_flag=True, help="Print every clip and note.")
def build(paths, out_dir, engine, jobs, force, strict, dry_run, offline, quiet, verbose) -> None:
    """Build routine files or library folders into MP3 sessions (+ JSON timelines)."""
    from .build import BuildOptions
    from .build import build as run_build

    def notify(msg: str) -> None:
        if not quiet:
            click.echo(click.style("note: ", fg="yellow") + msg, err=True)

    def progress(kind: str, info: dict) -> None:
        if quiet:
            return
        if kind == "routine":
            click.echo(f"narrating {info['title']!r} ({info['clips']} phrases)...", err=True)
        elif kind == "render":
            click.echo(f"rendering {info['title']!r} ({format_ms(info['length_ms'])})...", err=True)
        elif kind == "clip" and verbose:
            click.echo("  clip " + ("cached" if info["hit"] else "synthesised"), err=True)

    options = BuildOptions(out_dir=out_dir, engine=engine, offline=offline or None, strict=strict, force=force,
                           dry_run=dry_run, notify=notify, progress=progress)
    results = run_build(list(paths), options)
    failed = 0
    for r in results:
        if r.status == "failed":
            failed += 1
            _fail(r.error)
            continue
        if quiet:
            continue
        for w in r.warnings:
            click.echo(click.style("warning: ", fg="yellow") + f"{r.source}: {w}", err=True)
        where = str(r.mp3) if r.mp3 else r.source
        length = format_ms(r.length_ms) if r.length_ms is not None else "?"
        who = f"{r.engine} ({r.voice})" if r.engine else ""
        if r.status == "skipped":
            click.echo(f"unchanged {where} ({length}, {who})")
        elif r.status == "checked":
            click.echo(f"would build {where} ({length}, {who}; {r.synthesized} clips synthesised)")
        else:
            click.echo(f"built {where} ({length}, narrated by {who}; "
                       f"{r.synthesized} clips synthesised, {r.cache_hits} from cache)")
    if not quiet:
        counts = {s: sum(r.status == s for r in results) for s in ("built", "skipped", "checked", "failed")}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        click.echo(summary or "nothing to do")
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Warnings count as errors.")
def check(paths, strict) -> None:
    """Validate routines; print warnings and each routine's planned length. Exit 1 on errors."""
    from .check import check_paths

    errors = 0
    for item in check_paths(list(paths)):
        if item.error:
            errors += 1
            _fail(item.error)
            continue
        est = " (speech estimated)" if item.estimated else ""
        click.echo(f"ok {item.source}: {item.title!r}, {format_ms(item.length_ms)}{est}")
        for w in item.warnings:
            click.echo(click.style("warning: ", fg="yellow") + f"{item.source}: {w}")
            if strict:
                errors += 1
    if errors:
        sys.exit(1)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
def plan(file, as_json) -> None:
    """Show a routine's timeline (chapter, start, length, what plays) without synthesising."""
    from .check import plan_file
    from .planner import format_plan

    p = plan_file(file)
    click.echo(json.dumps(p.to_dict(), indent=1, ensure_ascii=False) if as_json else format_plan(p))


@cli.command()
@click.argument("name")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), default=Path("."))
def new(name, out_dir) -> None:
    """Scaffold a commented routine NAME.yaml to start from."""
    from .scaffold import scaffold

    path = scaffold(name, out_dir)
    click.echo(f"wrote {path}\nnext: audiogen check {path}  then  audiogen build {path}")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the routine format (for editor completion)."""
    from .model import routine_schema

    click.echo(json.dumps(routine_schema(), indent=2))


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def voices(as_json) -> None:
    """List engines, whether each works here, and their languages."""
    from .voices import engine_report

    report = engine_report()
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    for e in report["engines"]:
        state = click.style("available", fg="green") if e["available"] else click.style("unavailable", fg="red")
        click.echo(f"{e['name']:<8} {state}  {e.get('reason') or e.get('version', '')}")
        if e.get("languages"):
            langs = e["languages"]
            click.echo(f"         {len(langs)} languages: {', '.join(langs[:24])}{', ...' if len(langs) > 24 else ''}")
        if e.get("voices"):
            click.echo(f"         voices: {', '.join(e['voices'])}")
    click.echo(f"auto picks now: {report['auto']}")


@cli.group()
def cache() -> None:
    """The clip cache."""


@cache.command("info")
def cache_info() -> None:
    """Where the cache is and what it holds."""
    from .cache import ClipCache

    info = ClipCache().info()
    speech = format_ms(info.seconds * 1000)
    click.echo(f"{info.root}\n{info.clips} clips, {info.bytes / 1e6:.1f} MB, {speech} of speech")


@cache.command("clear")
def cache_clear() -> None:
    """Delete every cached clip."""
    from .cache import ClipCache

    c = ClipCache()
    click.echo(f"removed {c.clear()} clips from {c.root}")


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    import warnings

    warnings.filterwarnings("ignore")
    cli(prog_name="audiogen")


if __name__ == "__main__":
    main()
