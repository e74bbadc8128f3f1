"""The documents for users: every command and flag they name exists, and every code block is checked.

README.md, docs/*.md and examples/README.md are read with markdown-it (CommonMark + tables).
A fenced block's info string says what it is and how it is checked:

| info string | check |
|---|---|
| `python` | executed, in a temporary copy of the repository's programs/ and examples/ as working directory |
| `bash`, `sh`, `console` | each command line run there: `loyalty ...` through the click CLI (exit 0, or `# exit N` on the line), `pytest ...` must be what .ci/run runs, `python SCRIPT ...` names a script that has the flags, `pip ...` is the test environment's own install |
| `loyalty` | a program: parses and checks without errors |
| `yaml` | a scenario: loads, its paths (relative to examples/) name files that exist |
| `text` | not run (sample output, fragments, synopses); its commands and flags are still checked |

Any other info string, or none, fails: say what the block is.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

import rulelang
from simulator.cli import main
from simulator.scenario import loads_scenario
from tests.conftest import EXAMPLES, ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), EXAMPLES / "README.md"]
# What a command in a document may name, copied into the temporary working directory.
# tests/data: the CDNOW history of docs/simulator.md; simulator/data: the bundled sample, which programs/coffee_pilot.yaml names
WORKING_FILES = ("programs", "examples", "tests/data", "simulator/data")
SHELL = {"bash", "sh", "console"}
KINDS = {"python", "loyalty", "yaml", "text"} | SHELL
MARKDOWN = MarkdownIt("commonmark").enable("table")

# `loyalty <command>` where `loyalty` is a word of its own (not the end of `coffee.loyalty`).
COMMAND = re.compile(r"(?<![\w./-])loyalty\s+([a-z][a-z0-9-]*)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?![\w.>-])")  # not `--parser.parse-->`, an arrow
SCRIPT = re.compile(r"(?<![\w./-])python3?\s+(\S+\.py)\b")
EXPECTED_EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


@dataclass(frozen=True)
class Block:
    document: Path
    line: int  # of the block's first line of content, 1-based
    info: str
    text: str

    def where(self, offset: int = 0) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line + offset}"


def fenced_blocks(document: Path) -> list[Block]:
    tokens = MARKDOWN.parse(document.read_text(encoding="utf-8"))
    return [Block(document, t.map[0] + 2, t.info.strip(), t.content) for t in tokens if t.type == "fence"]


def code_snippets(markdown: str) -> list[str]:
    """The text of every code span (prose and tables) and every line of every code block but programs."""
    out: list[str] = []
    for token in MARKDOWN.parse(markdown):
        if token.type == "inline":
            out += [child.content for child in token.children or () if child.type == "code_inline"]
        elif token.type in ("fence", "code_block") and token.info.strip() != "loyalty":
            out += token.content.splitlines()
    return out


def mentions(snippet: str) -> list[tuple[str | None, str | None, str | None]]:
    """(command, flag, script) triples a snippet names, one command line (split at `&&`) at a time.

    `loyalty simulate X --runs 2` gives ("simulate", None, None) and ("simulate", "--runs", None);
    `python benchmarks/run.py --json` gives (None, "--json", "benchmarks/run.py"); a flag on its own
    (`--rejects FILE` in prose) gives (None, "--rejects", None). Other programs' flags (pip, pytest,
    dask's `dask worker`) are not the project's to check.
    """
    out: list[tuple[str | None, str | None, str | None]] = []
    for segment in snippet.split("&&"):
        if command := COMMAND.search(segment):
            out.append((command.group(1), None, None))
            out += [(command.group(1), flag, None) for flag in FLAG.findall(segment[command.end():])]
        elif script := SCRIPT.search(segment):
            out += [(None, flag, script.group(1)) for flag in FLAG.findall(segment[script.end():])]
        elif not re.match(r"\s*(pip|pytest|dask|python3?\s+-m\s+(pip|pytest))\b", segment):
            out += [(None, flag, None) for flag in FLAG.findall(segment)]
    return out


def cli_flags(group: click.Group) -> dict[str, set[str]]:
    """Each command's long options, introspected from the click group."""
    return {name: {opt for p in cmd.params for opt in p.opts + p.secondary_opts if opt.startswith("--")} for name, cmd in group.commands.items()}


def unknown_mentions(markdown: str, group: click.Group, root: Path) -> list[str]:
    """What `markdown` names that does not exist: commands, their flags, scripts and script flags."""
    flags = cli_flags(group)
    every_flag = set().union(*flags.values()) | {"--help"}
    found = [m for snippet in code_snippets(markdown) for m in mentions(snippet)]
    scripts = {script for _, _, script in found if script}
    script_sources = {s: (root / s).read_text(encoding="utf-8") for s in scripts if (root / s).is_file()}
    problems = []
    for command, flag, script in found:
        if command is not None and command not in flags:
            problems.append(f"`loyalty {command}`: no such command; commands: {', '.join(sorted(flags))}")
        elif command is not None and flag is not None and flag not in flags[command] | {"--help"}:
            problems.append(f"`loyalty {command} {flag}`: no such flag; {command}'s flags: {', '.join(sorted(flags[command]))}")
        elif script is not None and script not in script_sources:
            problems.append(f"`python {script}`: no such script")
        elif script is not None and f'"{flag}"' not in script_sources[script]:
            problems.append(f"`python {script} {flag}`: the script has no such flag")
        elif command is None and script is None and flag not in every_flag and not any(f'"{flag}"' in s for s in script_sources.values()):
            problems.append(f"`{flag}`: no `loyalty` command (nor a script this document runs) has this flag")
    return sorted(set(problems))


# --- the extractor itself --------------------------------------------------------------------------


def test_the_extractor_reports_unknown_commands_and_flags():
    made_up = """
Run `loyalty simulate PROGRAM [--scenario FILE]`, or `loyalty frobnicate FILE`.

| command | |
|---|---|
| `loyalty explain FILE [--lang en\\|zh] [--colour]` | x |

```text
loyalty check a.loyalty --format json --fix
python benchmarks/run.py --transactions 10 --turbo
python benchmarks/nothing.py --x
```

With `--rejects FILE` or `--no-such-flag`; `pip install --user x && pytest -q --lf` are not ours.
"""
    assert unknown_mentions(made_up, main, ROOT) == sorted([
        "`loyalty check --fix`: no such flag; check's flags: --format",
        "`loyalty explain --colour`: no such flag; explain's flags: --lang",
        "`loyalty frobnicate`: no such command; commands: " + ", ".join(sorted(main.commands)),
        "`loyalty simulate --scenario`: no such flag; simulate's flags: " + ", ".join(sorted(cli_flags(main)["simulate"])),
        "`python benchmarks/nothing.py`: no such script",
        "`python benchmarks/run.py --turbo`: the script has no such flag",
        "`--no-such-flag`: no `loyalty` command (nor a script this document runs) has this flag",
    ])


def test_the_extractor_passes_what_exists():
    real = "`loyalty simulate scenario.yaml --runs 2 --out DIR` and `coffee.loyalty --runs` and `--rejects FILE`"
    assert unknown_mentions(real, main, ROOT) == []
    assert ("simulate", "--runs", None) in mentions("loyalty simulate x.yaml --runs 2")


# --- the documents -----------------------------------------------------------------------------------


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_command_and_flag_a_document_names_exists(document: Path):
    assert unknown_mentions(document.read_text(encoding="utf-8"), main, ROOT) == []


def local_links(document: Path) -> list[str]:
    """The targets of a document's links to files (not web addresses, not anchors on the same page), and `../` paths in its code."""
    links = []
    for token in MARKDOWN.parse(document.read_text(encoding="utf-8")):
        for child in token.children or ():
            href = child.attrs.get("href", "") if child.type == "link_open" else ""
            if href and not re.match(r"[a-z][a-z0-9+.-]*:|#", href):
                links.append(str(href))
    # Paths in code that climb out of the document's folder (a path up and out to the shared examples folder) too.
    links += [m for snippet in code_snippets(document.read_text(encoding="utf-8")) for m in re.findall(r"(?<![\w.])(?:\.\./)+[\w./-]+", snippet)]
    return links


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_links_to_files_stay_inside_the_repository_and_exist(document: Path):
    # A clone has no shared folder beside it: a link out of the repository is broken for every user.
    for href in local_links(document):
        target = (document.parent / href.split("#")[0]).resolve()
        assert target.is_relative_to(ROOT) and target.exists(), f"{document.relative_to(ROOT)}: link to {href}: not a file of the repository"


BLOCKS = [block for document in DOCUMENTS for block in fenced_blocks(document)]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.where())
def test_every_code_block_says_what_it_is(block: Block):
    assert block.info in KINDS, f"{block.where()}: code block with info string {block.info!r}; use one of {sorted(KINDS)}"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding copies of the files documents name, so what they write lands here."""
    for name in WORKING_FILES:
        shutil.copytree(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _blocks(*kinds: str) -> list:
    return [pytest.param(b, id=b.where()) for b in BLOCKS if b.info in kinds]


@pytest.mark.parametrize("block", _blocks("python"))
def test_python_blocks_run(block: Block, workdir: Path):
    exec(compile(block.text, block.where(), "exec"), {"__name__": "__main__"})


def shell_commands(block: Block) -> list[tuple[int, str, int]]:
    """(line offset, command, expected exit status) for each command of a shell block, split at `&&`.

    In a `console` block only lines after a `$ ` prompt are commands (the rest is output).
    """
    out = []
    for offset, line in enumerate(block.text.splitlines()):
        if block.info == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        expected = EXPECTED_EXIT.search(line)
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            out += [(offset, segment.strip(), int(expected.group(1)) if expected else 0) for segment in line.split("&&")]
    return out


def test_shell_commands_are_split_with_their_expected_exit_status():
    block = Block(ROOT / "README.md", 1, "console", "$ loyalty check bad.loyalty  # exit 1\nbad.loyalty:1:1: error\n$ pip install -e . && loyalty fmt a.loyalty\n")
    assert shell_commands(block) == [(0, "loyalty check bad.loyalty", 1), (2, "pip install -e .", 0), (2, "loyalty fmt a.loyalty", 0)]
    assert shell_commands(Block(ROOT / "README.md", 1, "bash", "# a comment\n\nloyalty test p.loyalty --seed 3\n")) == [(2, "loyalty test p.loyalty --seed 3", 0)]


@pytest.mark.parametrize("block", _blocks(*SHELL))
def test_shell_blocks_run(block: Block, workdir: Path):
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for offset, command, expected in shell_commands(block):
        where = block.where(offset)
        words = shlex.split(command)
        if words[0] == "loyalty":
            result = CliRunner().invoke(main, words[1:])
            assert result.exit_code == expected, f"{where}: `{command}` exited {result.exit_code}, expected {expected}:\n{result.output}"
        elif words[0] == "pytest":
            # Not run from inside the tests: CI runs it, so the document's line must be .ci/run's.
            line = block.text.splitlines()[offset].strip()
            assert line in ci_script, f"{where}: `{line}` is not what .ci/run runs"
        elif words[0] in ("python", "python3") and words[1].endswith(".py"):
            assert (ROOT / words[1]).is_file(), f"{where}: no script {words[1]}"  # its flags: the test above
        elif words[0] == "pip":
            assert words[1] == "install", f"{where}: `{command}`: only installs are expected"  # the test environment is installed
        else:
            pytest.fail(f"{where}: `{command}`: no way to run this here; mark the block ```text if it is not meant to run")


@pytest.mark.parametrize("block", _blocks("loyalty"))
def test_program_blocks_check_clean(block: Block):
    rulelang.loads(block.text, block.where())


@pytest.mark.parametrize("block", _blocks("yaml"))
def test_scenario_blocks_load_and_name_files_that_exist(block: Block):
    scenario = loads_scenario(block.text, block.where(), EXAMPLES)
    for key in ("program", "transactions", "customers"):
        path = getattr(scenario, key)
        assert path is None or path.is_file(), f"{block.where()}: {key}: {path} does not exist (paths are relative to examples/)"


def test_the_readme_quick_start_is_the_two_commands_and_ci_runs_the_second_exactly():
    first = next(b for b in fenced_blocks(ROOT / "README.md") if b.info in SHELL)
    assert first.text.splitlines() == [
        "pip install -e . && loyalty simulate programs/coffee.yaml",
        "pip install -e '.[test]' && pytest -q",
    ]
    ci_commands = [line for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines() if line and not line.startswith(("#", " "))]
    assert ci_commands[-1] == "pip install -e '.[test]' && pytest -q", "the README's test command must be .ci/run's last command"
    assert "set -euo pipefail" in ci_commands
