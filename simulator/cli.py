"""`loyalty`: the command line. Language commands come from rulelang.cli; simulation ones live here."""

from __future__ import annotations

import importlib
import signal
import sys
import threading


def _interrupted_while_starting(signum, frame):
    sys.stderr.write("interrupted\n")
    raise SystemExit(130)


# Ctrl-C while the command's modules load (pandas, numba: a second or more) ends it quietly with exit
# 130, as Ctrl-C does later, not with a traceback of the imports; the usual handler is back below.
_STARTING = threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler
if _STARTING:
    signal.signal(signal.SIGINT, _interrupted_while_starting)

from simulator import memory  # noqa: E402

memory.before_numpy()  # the command's own process: NumPy reads this once, on import (simulator.memory)

import click  # noqa: E402

from rulelang import cli_commands  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loyalty-toolkit")
def main():
    """Design loyalty programs before they launch: check, explain, simulate, test."""


for _cmd in cli_commands:
    main.add_command(_cmd)

# The modules that bring commands (each a `commands` list): simulate and compare; trace and test
# (they read data); fit (the purchase models); calibrate (lift from a pilot); triangles (a ledger);
# backtest (a forecast against what happened); sensitivity (the tornado and the break-even);
# partition (a history as customer-partitioned Parquet files, for --cluster).
COMMAND_MODULES = (
    "simulator.commands", "simulator.inspection", "simulator.forecast.fitting", "simulator.calibrate",
    "simulator.finance.commands", "simulator.backtest", "simulator.sensitivity", "simulator.partition",
)  # fmt: skip
for _module in COMMAND_MODULES:
    for _cmd in importlib.import_module(_module).commands:
        main.add_command(_cmd)

if _STARTING:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@main.command("sample-data")
@click.option("--customers", type=click.IntRange(min=1), default=2000, show_default=True, help="how many customers")
@click.option("--months", type=click.IntRange(min=1, max=120), default=12, show_default=True, help="how many months of history")
@click.option("--seed", type=click.IntRange(min=0), default=2026, show_default=True, help="same seed, same files")
@click.option("--start", default="2026-01-01", show_default=True, help="the first day (YYYY-MM-DD)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="folder to write into")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
def sample_data_cmd(customers, months, seed, start, out_dir, fmt):
    """Write a synthetic purchase history: transactions and customers (the defaults give the bundled sample)."""
    import datetime as dt

    from simulator import sample_data

    try:
        dt.date.fromisoformat(start)
    except ValueError:
        raise click.BadParameter(f"{start!r} is not a date; write it like 2026-01-01", param_hint="--start") from None
    tx, cu = sample_data.generate(customers, months, seed, start)
    try:
        paths = sample_data.write(tx, cu, out_dir, fmt)
    except OSError as exc:
        click.echo(f"{out_dir}: error: cannot write: {exc}", err=True)
        raise SystemExit(2) from None
    for p, frame in zip(paths, (tx, cu), strict=True):
        click.echo(f"{p}: {len(frame):,} rows")

if __name__ == "__main__":
    main()
