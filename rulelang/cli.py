"""The language commands of `loyalty`: check, fmt, explain, trace, test.

Each command is a function registered on `commands`; `simulator.cli` adds them to the `loyalty`
group. Errors in user input are printed as diagnostics, never as tracebacks.
Exit codes: 0 clean (warnings allowed), 1 errors found, 2 usage or I/O problems.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rulelang import parser
from rulelang.errors import ProgramError
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
    io_error = False
    for path in _program_files(paths):
        if not path.exists():
            click.echo(f"{path}: error: no such file", err=True)
            io_error = True
            continue
        try:
            source = parser.read(path)
        except ProgramError as exc:
            io_error = io_error or any(d.code == "E002" for d in exc.diagnostics)
            found.extend(exc.diagnostics)
            continue
        found.extend(analyse(source)[1])
    if fmt == "json":
        click.echo(json.dumps([d.to_json() for d in found], ensure_ascii=False, indent=2))
    else:
        for d in found:
            click.echo(d.render() + "\n", err=False)
        errors = sum(d.is_error for d in found)
        warnings = len(found) - errors
        click.echo(f"{len(_program_files(paths))} file(s) checked: {errors} error(s), {warnings} warning(s)", err=True)
    if io_error:
        sys.exit(2)
    sys.exit(1 if any(d.is_error for d in found) else 0)
