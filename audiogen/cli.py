"""The `audiogen` command: a thin click layer over the library API."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import click

from audiogen._version import __version__
from audiogen.routine.durations import format_ms
from audiogen.routine.engines import ENGINE_CHOICES
from audiogen.routine.errors import AudiogenError


def _fail(e: AudiogenError) -> None:
    for problem in e.problems():  # every mistake in a file, each at its own line and column
        click.echo(click.style("error: ", fg="red", bold=True) + problem.format(), err=True)


class _Cli(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AudiogenError as e:
            _fail(e)
            ctx.exit(1)
        except KeyboardInterrupt:
            if sys.stderr.isatty():
                click.echo("", err=True)  # end the progress line
            click.echo("interrupted: nothing half-written was left behind", err=True)
            ctx.exit(130)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="audiogen")
def cli() -> None:
    """Turn routine scripts written in YAML into narrated, chaptered MP3 guided sessions."""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _clips(synth: int, shared: int, cached: int) -> str:
    """"3 clips synthesised, 1 shared, 2 from cache": shared clips were made by this build for an earlier
    routine, cached ones were in the clip cache before it."""
    parts = [f"{_plural(synth, 'clip')} synthesised"]
    if shared:
        parts.append(f"{shared} shared")
    if cached:
        parts.append(f"{cached} from cache")
    return ", ".join(parts)


class _Reporter:
    """Progress for long builds (one redrawn line on a terminal, plain lines otherwise) and the summary.

    On a terminal the line is redrawn as clips are made; in a log each routine's line is printed once its
    narration is done, with its own counts."""

    def __init__(self, quiet: bool, verbose: bool) -> None:
        self.quiet, self.verbose = quiet, verbose
        self.tty = sys.stderr.isatty()
        self.live = [0, 0, 0]  # synthesised, shared, from cache: every 'clip' event so far
        self.exact = [0, 0, 0]  # the same, from each routine's 'narrated' event (exact)
        self.narrated = False  # 'narrated' events came (a cluster build sends only 'clip' events)
        self.routine = [0, 0, 0]  # the current routine's 'clip' events (for a log line without 'narrated')
        self.current = "narrating"
        self.pending = ""  # a log's narrating line waiting for its routine's work to be done
        self.line = ""

    def _show(self, text: str, final: bool = False) -> None:
        if self.quiet:
            return
        if self.tty:
            pad = max(0, len(self.line) - len(text))
            click.echo("\r" + text + " " * pad, err=True, nl=final)
            self.line = "" if final else text
        elif final or self.verbose:
            click.echo(text, err=True)

    def note(self, msg: str) -> None:
        if not self.quiet:
            if self.line:
                self._show(self.line, final=True)
            click.echo(click.style("note: ", fg="yellow") + msg, err=True)

    @property
    def counts(self) -> list[int]:
        return self.exact if self.narrated else self.live

    def _flush(self) -> None:
        """A log: print the narrating line still waiting (no 'narrated' event came for it)."""
        if self.pending:
            self._show(f"{self.pending}: {_clips(*self.routine)}", final=True)
            self.pending = ""

    def progress(self, kind: str, info: dict) -> None:
        if kind == "batch":  # a log learns at once that synthesis started (routine lines follow when done)
            self.current = f"narrating {info['routines']} routines together"
            self._show(self.current + ("" if self.tty else ": their new phrases in one batch"), final=not self.tty)
        elif kind == "narrate":
            self.current = f"narrating {info['index']}/{info['total']} {info['title']!r}"
            if self.tty:
                self._show(f"{self.current}: {_clips(*self.live)}")
            else:
                self._flush()
                self.pending, self.routine = self.current, [0, 0, 0]
        elif kind == "clip":
            i = 0 if not info["hit"] else 1 if info.get("shared") else 2
            self.live[i] += 1
            self.routine[i] += 1
            if self.tty:
                self._show(f"{self.current}: {_clips(*self.live)}")
        elif kind == "narrated":
            self.narrated = True
            got = [info.get("synthesized", 0), info.get("shared", 0), info.get("cached", 0)]
            self.exact = [a + b for a, b in zip(self.exact, got, strict=True)]
            if not self.tty:
                self.pending = ""
                done = f"narrating {info['index']}/{info['total']} {info['title']!r}"  # done: real counts
                self._show(f"{done}: failed" if info.get("error") is not None else f"{done}: {_clips(*got)}",
                           final=True)
        elif kind == "session":
            r = info["result"]
            if not self.tty:
                self._flush()
            verb = "planned" if r.status == "planned" else "rendered"
            text = f"{verb} {info['done']}/{info['total']} sessions ({r.status}: {r.title})"
            self._show(text, final=not self.tty or info["done"] == info["total"])
            if self.verbose and not self.quiet and r.details:
                if self.tty and self.line:
                    self._show(self.line, final=True)
                for line in r.details:  # -v: what each stage did for this session
                    click.echo(f"  {r.mp3.name if r.mp3 else r.source}: {line}", err=True)

    def summary(self, results) -> int:
        """Print errors, warnings and the table; return how many failed."""
        if self.line:
            self._show(self.line, final=True)
        self._flush()
        failed = [r for r in results if r.status == "failed"]
        for r in failed:
            _fail(r.error)
        if self.quiet:
            return len(failed)
        for r in results:
            for w in r.warnings:
                click.echo(click.style("warning: ", fg="yellow") + f"{r.source}: {w}", err=True)
        rows = [("session", "length", "loudness", "engine", "status", "warn")]
        for r in results:
            name = r.mp3.name if r.mp3 is not None else Path(r.source).name
            lufs = f"{r.loudness:.1f} LUFS" if r.loudness is not None else ""
            if r.programme_loudness is not None and r.loudness is not None \
                    and abs(r.programme_loudness - r.loudness) >= 0.1:
                lufs += f" ({r.programme_loudness:.1f} whole)"  # speech-gated above, the whole mix here
            who = f"{r.engine} ({r.voice})" if r.engine else ""
            length = ("~" if r.estimated else "") + format_ms(r.length_ms) if r.length_ms is not None else ""
            rows.append((name, length, lufs, who, r.status, str(len(r.warnings) or "")))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for i, row in enumerate(rows):
            line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            click.echo(click.style(line, bold=True) if i == 0 else line)
        counts = {s: sum(r.status == s for r in results)
                  for s in ("built", "retagged", "skipped", "planned", "failed")}
        words = {"skipped": "unchanged (skipped)", "planned": "planned (dry run)",
                 "retagged": "retagged (audio unchanged)"}
        parts = [f"{n} {words.get(s, s)}" for s, n in counts.items() if n]
        tail = f"; {_clips(*self.counts)}" if any(self.counts) else ""
        if counts["skipped"] == len(results) and results:
            tail = "; nothing to do: no synthesis, no rendering"
        elif counts["retagged"] and counts["retagged"] + counts["skipped"] == len(results) and not any(self.counts):
            tail = "; only tags rewritten: no synthesis, no rendering"
        click.echo((", ".join(parts) or "nothing to do") + tail)
        return len(failed)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), help="Output folder.")
@click.option("--engine", type=click.Choice(ENGINE_CHOICES),
              help="Override every routine's engine.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Sessions rendered at once "
              "(default: the cores).")
@click.option("--force", is_flag=True, help="Rebuild even unchanged routines.")
@click.option("--strict", is_flag=True, help="Speech longer than its step, and every sound check that fails (bed "
              "too loud under speech, limiter, clipping, long silence, cue on speech), is an error, not a warning: "
              "the session is not written, exit 1.")
@click.option("--dry-run", is_flag=True, help="Show what would be built; synthesise and write nothing.")
@click.option("--prune", is_flag=True, help="Remove outputs whose routine was deleted.")
@click.option("--base-url", help="Absolute URL the output folder is published at (for feed.xml).")
@click.option("--scheduler", help="Build on a Dask cluster: tcp://host:8786, or local:N worker processes.")
@click.option("--offline", is_flag=True, default=None, help="Never contact the network (also AUDIOGEN_OFFLINE=1).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option("-v", "--verbose", is_flag=True, help="Print every step of the work.")
@click.option("--json", "as_json", is_flag=True, help="Print the results (warnings, sound checks) as JSON.")
def build(paths, out_dir, engine, jobs, force, strict, dry_run, prune, base_url, scheduler, offline, quiet,
          verbose, as_json) -> None:
    """Build routine files or library folders into MP3 sessions (+ JSON timelines)."""
    from audiogen import api

    rep = _Reporter(quiet, verbose)
    import types

    quick = types.SimpleNamespace(out_dir=out_dir, engine=engine, offline=offline or None, strict=strict, force=force,
                                  dry_run=dry_run, prune=prune, base_url=base_url, scheduler=scheduler, cache=None,
                                  notify=rep.note)
    results = api.unchanged(paths, quick)  # an unchanged library, answered without loading it
    if results is None:
        options = api.BuildOptions(out_dir=out_dir, engine=engine, offline=offline or None, strict=strict,
                                   force=force, dry_run=dry_run, prune=prune, jobs=jobs, base_url=base_url,
                                   scheduler=scheduler, notify=rep.note, progress=rep.progress)
        results = api.build(paths, options)
    if as_json:  # errors on stderr as ever; stdout is the JSON alone
        rep.quiet = True
        failed = rep.summary(results)
        click.echo(json.dumps([r.to_dict() for r in results], indent=1, ensure_ascii=False))
        if failed:
            sys.exit(1)
        return
    if rep.summary(results):
        sys.exit(1)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Warnings count as errors.")
def check(paths, strict) -> None:
    """Validate routines; print warnings and each routine's planned length. Exit 1 on errors."""
    from audiogen import api

    errors = 0
    for item in api.check(paths):
        if item.error:
            errors += 1
            _fail(item.error)
            continue
        est = " (speech estimated)" if item.estimated else ""
        about = f"{item.source}: {item.title!r}, {format_ms(item.length_ms)}{est}"
        if strict and item.warnings:  # the verdict and the exit status agree
            errors += 1
            click.echo(click.style("failed (strict): ", fg="red", bold=True)
                       + f"{_plural(len(item.warnings), 'warning')} in {about}")
        else:
            click.echo(f"ok {about}")
        for w in item.warnings:
            click.echo(click.style("warning: ", fg="yellow") + f"{item.source}: {w}")
    if errors:
        sys.exit(1)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
def plan(file, as_json) -> None:
    """Show a routine's timeline (chapter, start, length, what plays) without synthesising."""
    from audiogen import api
    from audiogen.plan.planner import format_plan

    p = api.plan_file(file)
    click.echo(json.dumps(p.to_dict(), indent=1, ensure_ascii=False) if as_json else format_plan(p))


@cli.command()
@click.argument("name")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), default=Path("."))
@click.option("--force", is_flag=True, help="Replace an existing file of that name.")
@click.option("--template", type=click.Choice(["routine", "breathing", "stretch", "massage", "workout", "meditation"]),
              default="routine", show_default=True, help="The kind of session to start from.")
def new(name, out_dir, force, template) -> None:
    """Scaffold a commented routine NAME.yaml to start from."""
    from audiogen import api

    path = api.new_routine(name, out_dir, force=force, template=template)
    click.echo(f"wrote {path}\nnext: audiogen check {path}  then  audiogen build {path}")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the routine format (for editor completion)."""
    from audiogen import api

    click.echo(json.dumps(api.routine_schema(), indent=2))


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report (for scripts).")
@click.option("--language", "-l", default="en", show_default=True, help="Which engine `auto` picks for this language.")
@click.option("--offline", is_flag=True, default=None, help="As a build with --offline would see it (also "
              "AUDIOGEN_OFFLINE=1).")
@click.option("--all", "show_all", is_flag=True, help="List every language and voice, not the first ones.")
@click.option("--available", "show_available", is_flag=True,
              help="List the Piper voices `voices install` can download (by language; -l LANG for one).")
@click.pass_context
def voices(ctx, as_json, language, offline, show_all, show_available) -> None:
    """List engines, whether each works here and why not, their languages and voices, and auto's pick.

    `voices install NAME` downloads a Piper voice, `voices remove NAME` deletes one."""
    from click.core import ParameterSource

    from audiogen import api
    from audiogen.voice.report import speaks

    if ctx.invoked_subcommand is not None:
        ctx.obj = {"offline": offline}
        return
    # -l LANG given: list only what speaks it (without -l, everything, for en's pick)
    only = click.get_current_context().get_parameter_source("language") != ParameterSource.DEFAULT
    if show_available:
        _available(api.available_voices(offline=offline or None), language if only else None, as_json)
        return
    report = api.voices(language=language, offline=offline or None)
    if as_json:
        click.echo(json.dumps(report, indent=1, ensure_ascii=False))
        return

    def some(items: list[str], n: int = 24) -> str:
        return ", ".join(items if show_all else items[:n]) + (", ..." if len(items) > n and not show_all else "")

    for e in report["engines"]:
        state = {True: click.style("available", fg="green"), None: click.style("unknown until used", fg="yellow"),
                 False: click.style("unavailable", fg="red")}[e["available"]]
        click.echo(f"{e['name']:<7} {state}  {e.get('version', '')}".rstrip())
        if e.get("about"):
            click.echo(f"        {e['about']}")
        if e.get("reason"):
            click.echo(f"        {'why not: ' if e['available'] is False else ''}{e['reason']}")
        langs = e.get("languages") or []
        voices_ = [v for v in e.get("voices") or [] if not only or speaks(v.get("language", ""), language)]
        if only:
            matching = e.get("speaks_language") or []
            n = len(matching)
            click.echo(f"        {n} voice{'s' if n != 1 else ''} speak{'s' if n == 1 else ''} {language!r}"
                       + (f": {some(matching)}" if matching else ""))
        elif langs:
            click.echo(f"        {len(langs)} language{'s' if len(langs) != 1 else ''}: {some(langs)}")
        if e["name"] == "gtts" and voices_:
            click.echo("        accents (voice.name is the Google domain):")
            by_lang: dict[str, list[str]] = {}
            for v in voices_:
                region = (v.get("description") or "").partition("(")[2].partition(")")[0]
                by_lang.setdefault(v["language"], []).append(
                    f"{v['id']} ({region}{', default' if v.get('default') else ''})" if region else v["id"])
            for lang, items in by_lang.items():
                click.echo(f"          {lang}: {', '.join(items)}")
        elif voices_ and len(voices_) <= 30:  # espeak has one voice per language: its language list says it
            for v in voices_:
                click.echo(f"        voice: {v['id']} ({v.get('description') or v.get('language', '')})")
        if e.get("custom") and e["name"] != "gtts":
            click.echo(f"        {e['custom']}")
        pick = e.get("voice_for_language")
        if pick and pick.get("voice") is None:
            click.echo(f"        {pick['language']}: {pick['reason']}")
    click.echo(f"auto picks now for {language!r}: {report['auto']['summary']}")


def _available(by_language: dict[str, list[dict]], language: str | None, as_json: bool) -> None:
    """`voices --available`: the catalogue's voices, per language (only `language`'s when given)."""
    from audiogen.voice.catalogue import MODEL_CARDS

    if language:
        want = language.lower().replace("-", "_")
        by_language = {code: items for code, items in by_language.items()
                       if code.lower() == want or code.lower().split("_")[0] == want.split("_")[0]}
    if as_json:
        click.echo(json.dumps(by_language, indent=1, ensure_ascii=False))
        return
    for code, items in by_language.items():
        first = items[0]
        where = f", {first['region']}" if first.get("region") else ""
        click.echo(f"{code} ({first.get('language') or code}{where})")
        for v in items:
            mark = "  [installed]" if v["installed"] else ""
            click.echo(f"  {v['name']:<40} {v.get('quality') or '':<7} {v['size_bytes'] / 1e6:5.0f} MB{mark}")
    if not by_language:
        click.echo(f"no Piper voice in the catalogue speaks {language!r}")
    click.echo(f"install one: audiogen voices install NAME. Each voice has its own licence, in its MODEL_CARD "
               f"({MODEL_CARDS}); `voices install` prints it.")


@voices.command("install")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download it again even if it is installed.")
@click.option("--offline", is_flag=True, default=None, help="Refuse (offline mode never downloads).")
@click.pass_context
def voices_install(ctx, name, force, offline) -> None:
    """Download the Piper voice NAME (such as de_DE-thorsten-medium), check it and install it."""
    from audiogen import api

    offline = offline or (ctx.obj or {}).get("offline")
    bar = {}

    def progress(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = click.progressbar(length=total, label=f"downloading {name}", file=sys.stderr,
                                           show_pos=False, show_percent=True)
            bar["bar"].__enter__()
            bar["at"] = 0
        bar["bar"].update(done - bar["at"])
        bar["at"] = done

    try:
        v = api.install_voice(name, force=force, offline=offline or None, progress=progress)
    finally:
        if "bar" in bar:
            bar["bar"].__exit__(None, None, None)
    click.echo(f"installed {v.name} ({v.language}) in {v.model.parent}")
    click.echo(f"licence: {v.licence or 'not stated'} (see {v.model.parent / 'MODEL_CARD'})")
    click.echo(f"use it: voice: {{engine: piper, name: {v.name}}}, or engine auto for language "
               f"{v.language.split('_')[0]!r} offline")


@voices.command("remove")
@click.argument("name")
def voices_remove(name) -> None:
    """Delete the installed Piper voice NAME."""
    from audiogen import api

    folder = api.remove_voice(name)
    click.echo(f"removed {name} ({folder})")


@cli.command()
@click.argument("text")
@click.option("--voice", help="engine or engine:name, e.g. espeak:en-gb, piper:de_DE-thorsten-medium, gtts:co.uk.")
@click.option("--speed", type=click.FloatRange(0.5, 2.0), help="Tempo (pitch preserved).")
@click.option("--language", "-l", help="Language code (default: the routine's, else en).")
@click.option("--routine", "routine_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Use this routine's voice and pronounce: rules (and its library's defaults).")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the phrase here (.mp3 or .wav) instead of playing it.")
@click.option("--offline", is_flag=True, default=None, help="Never contact the network (also AUDIOGEN_OFFLINE=1).")
def say(text, voice, speed, language, routine_file, out, offline) -> None:
    """Speak TEXT as a build would (pronounce: applied) and play it, or write it with -o."""
    from audiogen import api

    said = api.say(text, routine=routine_file, voice=voice, speed=speed, language=language, out=out,
                   play=out is None, offline=offline or None)
    for note in said.notes:
        click.echo(click.style("note: ", fg="yellow") + note, err=True)
    who = f"{said.engine} ({said.voice})"
    if said.spoken != " ".join(text.split()):
        click.echo(f"spoken as: {said.spoken}", err=True)
    if out is not None:
        click.echo(f"wrote {said.path} ({who})")
    elif said.played:
        click.echo(f"played ({who}); the file: {said.path}")
    elif said.player:
        click.echo(f"{said.player} could not play it: wrote {said.path} ({who})")
    else:
        click.echo(f"no audio player found (ffplay, mpv, paplay, aplay, afplay, play): wrote {said.path} ({who})")


@cli.group()
def cache() -> None:
    """The clip cache."""


@cache.command("info")
def cache_info() -> None:
    """Where the cache is and what it holds."""
    from audiogen.voice.cache import ClipCache

    info = ClipCache().info()
    speech = format_ms(info.seconds * 1000)
    click.echo(f"{info.root}\n{info.clips} clips, {info.bytes / 1e6:.1f} MB, {speech} of speech")
    if info.oldest_use is not None:
        import datetime

        def when(t: float) -> str:
            return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")

        click.echo(f"least recently used {when(info.oldest_use)}, most recently {when(info.newest_use)}")


@cache.command("prune")
@click.option("--max-size", "max_size", required=True, metavar="SIZE",
              help="Keep at most this much, e.g. 500MB, 2GB or 300MiB; the least recently used clips go first.")
def cache_prune(max_size: str) -> None:
    """Remove the least recently used clips until the cache fits in SIZE (never a clip a running build uses)."""
    from audiogen.api import prune_cache
    from audiogen.voice.cache import ClipCache

    try:
        r = prune_cache(max_size)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--max-size") from None
    click.echo(f"removed {r.removed} clips ({r.freed / 1e6:.1f} MB) from {ClipCache().root}; kept {r.kept} clips "
               f"({r.bytes / 1e6:.1f} MB)")
    if r.in_use:
        click.echo(f"{r.in_use} clips over the limit are in use by a running build and were kept")


@cache.command("clear")
def cache_clear() -> None:
    """Delete every cached clip."""
    from audiogen.voice.cache import ClipCache

    c = ClipCache()
    click.echo(f"removed {c.clear()} clips from {c.root}")


@cli.command("serve")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--lan", is_flag=True, help="Listen on every interface so phones on your network can connect.")
@click.option("--base-url", help="Address to advertise (QR code, feed URLs), e.g. behind a proxy.")
def serve(directory: Path, port: int, lan: bool, base_url: str | None) -> None:
    """Serve a built library folder (index.html, feed.xml, MP3s) to phones on the local network."""
    from audiogen.publish.feed import FEED
    from audiogen.publish.serve import advertised_address, open_server

    server = open_server(directory, port, lan=lan, base_url=base_url, log=lambda line: click.echo(line, err=True))
    try:  # from here on Ctrl-C (even during the banner) ends in one line, exit status 0
        where = advertised_address(server, lan)
        if where.no_lan_address:
            click.echo(click.style("note: ", fg="yellow") + "no LAN address found; phones may not reach this "
                       "computer (use --base-url http://NAME:PORT/)", err=True)
        click.echo(f"serving {server.root} on {where.local}")
        click.echo(f"open:  {where.url}")
        click.echo(f"feed:  {where.url}{FEED}  (subscribe in a podcast app)")
        if where.loopback_only:
            click.echo("only this computer can open it: add --lan to serve phones on your network")
        else:
            import segno

            segno.make(where.url, error="m").terminal(out=sys.stdout, compact=True)
            click.echo("scan with the phone's camera (same Wi-Fi network)")
        click.echo("Ctrl-C to stop")
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("\nstopped serving")
    finally:
        server.server_close()


@cli.command("edit")
@click.argument("path", metavar="FILE_OR_FOLDER", type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: any free one).")
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser.")
@click.option("--offline", is_flag=True, default=None, help="Previews never contact the network.")
def edit(path: Path, port: int, no_browser: bool, offline: bool | None) -> None:
    """Edit a routine in the browser: live checks, the timeline, hear a step, build and play."""
    from audiogen import api

    server = api.open_editor(path, port, offline=offline or None)
    try:
        click.echo(f"editing {path} at {server.url}")
        click.echo("only this computer can open it; the URL carries this session's key. Ctrl-C to stop")
        if not no_browser:
            import webbrowser

            webbrowser.open(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("\nstopped editing (unsaved changes in the page are lost)")
    finally:
        server.server_close()


def _on_ctrl_c(signum, frame) -> None:
    """Ctrl-C as KeyboardInterrupt, except inside a finalizer (`__del__`, such as `wave.Wave_read`'s, run by
    the garbage collector anywhere): raised there it is printed as "Exception ignored" and lost, and the
    build would go on to the end. There the signal is delivered again a moment later, after the finalizer."""
    f = frame
    while f is not None:
        if f.f_code.co_name == "__del__":
            import threading

            threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT)).start()
            return
        f = f.f_back
    raise KeyboardInterrupt


def install_ctrl_c() -> None:
    """Install the Ctrl-C handler of the command line (main thread only)."""
    signal.signal(signal.SIGINT, _on_ctrl_c)


def main() -> None:
    install_ctrl_c()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    import warnings

    warnings.filterwarnings("ignore")
    cli(prog_name="audiogen")


if __name__ == "__main__":
    main()
