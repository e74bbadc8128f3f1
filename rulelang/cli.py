"""The language commands of `loyalty`: check, fmt, explain (`trace` and
`test` read data, so they live in `simulator.inspection`).

Each command is a function registered on `commands`; `simulator.cli` adds them to the `loyalty`
group. Errors in user input are printed as diagnostics, never as tracebacks.
Exit codes: 0 clean (warnings allowed), 1 errors found, 2 usage or I/O problems.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

import click

from rulelang import parser
from rulelang.errors import ProgramError, visible
from rulelang.program import analyse

commands: list[click.Command] = []


def command(fn):
    commands.append(fn)
    return fn


def _program_files(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("*.loyalty")))
        else:
            files.append(p)
    return files


@command
@click.command("check")
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="json: a list of findings for editors and CI")
def check_cmd(paths, fmt):
    """Check program files (or folders of *.loyalty) and report every mistake."""
    found = []
    checked = unreadable = 0
    for path in _program_files(paths):
        try:
            source = parser.read(path)
        except ProgramError as exc:
            # A file that cannot be read is not checked; one that is read but is not UTF-8 is.
            readable = not any(d.code == "E002" for d in exc.diagnostics)
            checked += readable
            unreadable += not readable
            found.extend(exc.diagnostics)
            continue
        checked += 1
        found.extend(analyse(source)[1])
    if fmt == "json":
        click.echo(json.dumps([d.to_json() for d in found], ensure_ascii=False, indent=2))
    else:
        for d in found:
            click.echo(d.render() + "\n", err=False)
        count = Counter(d.severity for d in found)
        files = f"{checked} file(s) checked" + (f", {unreadable} could not be read" if unreadable else "")
        click.echo(f"{files}: {count['error']} error(s), {count['warning']} warning(s), {count['note']} note(s)", err=True)
    if unreadable:
        sys.exit(2)
    sys.exit(1 if any(d.is_error for d in found) else 0)


@command
@click.command("fmt")
@click.argument("paths", nargs=-1, required=True)
@click.option("--check", "check_only", is_flag=True, help="list files that are not in canonical layout; exit 1 if any")
@click.option("--write", is_flag=True, help="rewrite the files in place")
def fmt_cmd(paths, check_only, write):
    """Print program files in the canonical layout (comments kept)."""
    from rulelang.files import atomic_write_bytes
    from rulelang.fmt import format_program

    if check_only and write:
        raise click.UsageError("use either --check or --write, not both")
    status = 0
    for path in _program_files(paths):
        try:
            raw = parser.read_bytes(path)
        except ProgramError as exc:
            click.echo(str(exc), err=True)
            status = 2
            continue
        try:
            formatted = format_program(parser.parse(parser.decode(raw, str(path))))
        except ProgramError as exc:
            click.echo(str(exc) + "\n", err=True)
            status = max(status, 1)
            continue
        changed = raw != formatted.encode("utf-8")
        if check_only:
            if changed:
                click.echo(f"{path}: would be reformatted")
                status = max(status, 1)
        elif write:
            if changed:
                try:
                    # Beside it, synced, then renamed over it: a failed write leaves the program as it was.
                    # A link is followed: the program it names is rewritten, the link kept.
                    atomic_write_bytes(os.path.realpath(path), formatted.encode("utf-8"))
                except OSError as exc:
                    click.echo(f"{path}: error: cannot write the file: {exc.strerror or exc}; it is unchanged", err=True)
                    status = 2
                    continue
                click.echo(f"{path}: reformatted", err=True)
        else:
            click.echo(formatted, nl=False)
    sys.exit(status)


@command
@click.command("explain")
@click.argument("path")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", help="the language of the terms")
def explain_cmd(path, lang):
    """Print a program's member-facing terms in plain language."""
    from rulelang.explain import explain
    from rulelang.program import from_source

    try:
        source = parser.read(path)
        loaded = from_source(source)
    except ProgramError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2 if any(d.code == "E002" for d in exc.diagnostics) else 1)
    # The terms quote the program's own texts (its name, categories): no control character reaches the terminal.
    click.echo(visible(explain(loaded.tree, lang)), nl=False)


# `trace` and `test` read data through the one loader, so they live in simulator.inspection.
