"""`loyalty trace` and `loyalty test`: the language's commands that read data.

They read transactions and customers through the one loader (`simulator.io`), as `simulate` does:
the scenario's column mapping, period and timestamp format, text read as text, bad rows rejected
with their reasons and the rest used, rows numbered as in the file's data rows. So they live on the
simulator's side (rulelang never imports simulator); what they print is rendered by
`rulelang.trace` and `rulelang.invariants` from the loaded frames.
Exit codes: 0 clean, 1 a finding or an error in the input, 2 usage or unreadable data (`test`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import click
import pandas as pd

import rulelang
from rulelang import Program, names_in
from rulelang.engine import needed_columns
from rulelang.errors import LoyaltyError, visible
from simulator import io
from simulator.api import load_program
from simulator.scenario import Scenario, load_scenario

SCENARIO_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Inputs:
    """What a command reads: the program, the scenario (defaults when none), the data files."""

    program: Program
    scenario: Scenario
    transactions: Path | None
    customers: Path | None


def read_inputs(target: str, scenario: str | None, transactions: str | None, customers: str | None, sample: bool) -> Inputs:
    """The program and scenario from PROGRAM_OR_SCENARIO and --scenario, and the data files: the
    flags', else the scenario's, else (when `sample`) the bundled sample's, as `simulate` picks."""
    path = Path(target)
    if path.suffix in SCENARIO_SUFFIXES:
        if scenario is not None:
            raise click.UsageError(f"{target} is a scenario already; give the scenario once, as PROGRAM_OR_SCENARIO or with --scenario")
        sc = load_scenario(path)
        if sc.program is None:
            raise LoyaltyError(f"{path}: error: program: the scenario names no program; add `program: your_program.loyalty`")
        program_path = sc.program
    elif path.suffix == ".loyalty":
        sc = load_scenario(scenario) if scenario is not None else Scenario()
        program_path = path
    else:
        raise click.BadParameter(f"{target}: expected a program (.loyalty) or a scenario (.yaml)", param_hint="PROGRAM_OR_SCENARIO")
    if transactions is not None:
        tx, cu = Path(transactions), customers  # another history: its customers only if given
    elif sc.transactions is not None or sample:
        tx, cu = sc.data_paths()
        cu = customers if customers is not None else cu
    else:
        tx, cu = None, customers
    return Inputs(load_program(program_path), sc, tx, Path(cu) if cu is not None else None)


def load_data(inputs: Inputs, keep: set[str] | None = None) -> tuple[io.LoadResult, io.LoadResult | None]:
    """The transactions and customers loaded as `simulate` loads them (mapping, period, format, currency)."""
    sc, model = inputs.scenario, inputs.program.model
    tx = io.load_transactions(
        inputs.transactions, columns=sc.columns, currency_decimals=model.decimals, period=sc.period, keep=keep,
        **io.load_options(sc, model, inputs.customers),
    )  # fmt: skip
    cu = io.load_customers(inputs.customers, columns=sc.columns, timestamp_format=sc.timestamp_format) if inputs.customers is not None else None
    return tx, cu


def require_customers(program: Program, customers) -> None:
    """A clear error, in a user's words, when the program reads customer attributes and no
    customers file was given (the Python API's own message speaks of DataFrames)."""
    needed = needed_columns(program.model)[1]
    if customers is not None or not needed:
        return
    attr = sorted(needed)[0]
    rules = [r.name for r in program.model.rules if r.condition is not None and f"customer.{attr}" in set(names_in(r.condition))]
    by = f" (rule {', '.join(rules)})" if rules else ""
    raise LoyaltyError(
        f"{program.path}: error: the program reads customer.{attr}{by}, but no customers file was given; "
        f"pass --customers FILE (CSV or Parquet with the columns customer_id and {', '.join(sorted(needed))}), "
        "or name it in the scenario (`customers: FILE`)"
    )


def until_of(sc: Scenario):
    """The end of the replay: the last instant of the scenario's period (None: the data's last)."""
    return None if sc.period is None else pd.Timestamp(sc.period.end) + pd.Timedelta(days=1) - pd.Timedelta(nanoseconds=1)


def _report(*loads: io.LoadResult | None) -> None:
    for load in loads:
        if load is not None:
            # These commands have no --rejects of their own: the report points to simulate's.
            text = load.report().replace("write them all with --rejects FILE", "`loyalty simulate ... --rejects FILE` writes them all")
            click.echo(visible(text), err=True)


def _fail(exc: LoyaltyError, code: int) -> None:
    click.echo(visible(str(exc)), err=True)
    sys.exit(code)


FILE = click.Path(exists=True, dir_okay=False)


def _data_options(transactions_help: str):
    """PROGRAM_OR_SCENARIO and the data flags of both commands; `transactions_help` says what the
    command does with a history."""
    options = (
        click.argument("target", metavar="PROGRAM_OR_SCENARIO", type=FILE),
        click.option("--transactions", "transactions", type=FILE, help=transactions_help),
        click.option("--scenario", "scenario", type=FILE, help="a scenario YAML: its columns, period, timestamp format and data files"),
        click.option(
            "--customers",
            "customers",
            type=FILE,
            help="customers CSV or Parquet (default: the scenario's; with the bundled sample, its customers)",
        ),
    )

    def add(fn):
        for opt in reversed(options):
            fn = opt(fn)
        return fn

    return add


@click.command("trace")
@_data_options("transactions CSV or Parquet (default: the scenario's, else the bundled sample)")
@click.option("--customer", "customer", required=True, help="the customer_id to trace")
@click.option("--quiet", is_flag=True, help="no load summary on stderr")
def trace_cmd(target, customer, transactions, scenario, customers, quiet):
    """Explain, row by row, how one member earned and spent their points."""
    from rulelang import trace_member

    try:
        inputs = read_inputs(target, scenario, transactions, customers, sample=True)
        tx, cu = load_data(inputs, keep=needed_columns(inputs.program.model)[0])
        if not quiet:
            _report(tx, cu)
        require_customers(inputs.program, cu)
        click.echo(trace_member(inputs.program, tx.frame, customer, cu.frame if cu is not None else None, until_of(inputs.scenario)))
    except LoyaltyError as exc:
        _fail(exc, 1)


@click.command("test")
@_data_options("also check the asserts over this real history, CSV or Parquet (default: the scenario's, if it names one)")
@click.option("--examples", default=100, show_default=True, type=click.IntRange(1), help="how many histories to generate")
@click.option("--seed", default=0, show_default=True, type=int, help="the seed; the same seed gives the same histories")
@click.option("--quiet", is_flag=True, help="no progress or load summary on stderr")
def test_cmd(target, examples, seed, transactions, scenario, customers, quiet):
    """Search for a member history that breaks the program's asserts or built-in invariants."""

    try:
        inputs = read_inputs(target, scenario, transactions, customers, sample=False)
    except LoyaltyError as exc:
        _fail(exc, 1)
    program = inputs.program
    model, text = program.model, program.source.text
    statements = program.asserts
    failed = False
    if inputs.transactions is not None:
        name = str(inputs.transactions)
        try:
            tx, cu = load_data(inputs)
            if not quiet:
                _report(tx, cu)
            require_customers(program, cu)
            _, found = rulelang.check_history(model, tx.frame, cu.frame if cu is not None else None, statements, metamorphic=False)
        except LoyaltyError as exc:
            _fail(exc, 2)
        # The file's own data rows (from 1, as the load report counts them), not the sorted frame's.
        source_row = tx.frame["source_row"].to_numpy()
        found = [replace(v, row=int(source_row[v.row]) - 1) if v.row >= 0 else v for v in found]
        lines = [f"{name}: " + "\n".join(rulelang.describe_violation(v, model, text)) for v in found[:10]]
        if len(found) > 10:
            lines.append(f"... and {len(found) - 10} more")
        lines.append(f"{name}: {tx.rows_used} row(s) checked, {len(found)} violation(s)")
        click.echo(visible("\n".join(lines)))
        failed = bool(found)
    from simulator.commands import _progress

    with _progress(examples, quiet or not _terminal(), "trying histories") as progress:
        outcome = rulelang.search_invariants(model, statements, examples, seed, progress=progress)
    if outcome.violation is None:
        click.echo(visible(f"{target}: ok, {outcome.tried} histories tried (seed {seed}), no invariant broken"))
        sys.exit(1 if failed else 0)
    lines = [f"{target}: FAILED after {outcome.tried} histories"] + rulelang.describe_violation(outcome.violation, model, text)
    lines += ["", "smallest history found:", rulelang.transactions_table(outcome.transactions, model.decimals, outcome.customers)]
    lines += ["", "its ledger:", rulelang.ledger_table(outcome.ledger)]
    lines += ["", f"reproduce: loyalty test {target} --seed {seed} --examples {examples}"]
    click.echo(visible("\n".join(lines)))
    sys.exit(1)


def _terminal() -> bool:
    """Whether stderr is a terminal: progress is shown there only (never in tests or CI logs)."""
    return sys.stderr.isatty()


commands = [trace_cmd, test_cmd]
