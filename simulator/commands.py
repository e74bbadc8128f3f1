"""`loyalty simulate` and `loyalty compare`: thin shells over `simulator.api`.

Errors in the user's input print as one clear message on stderr and exit 1; usage problems
(a missing file, a bad flag) exit 2 through click. Never a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rulelang import csv_rows_safe, refuse_input_as_output
from rulelang.engine import compiled_on_disk
from rulelang.errors import LoyaltyError, visible
from simulator import outputs
from simulator.provenance import notes_by_figure, source_text
from simulator.report import HEADLINE, fmt_number
from simulator.scenario import Scenario, load_scenario

SHOWN = (
    "members", "points_issued", "points_redeemed", "points_expired", "points_outstanding", "points_pending", "redemption_rate",
    "breakage_rate", "reward_cost", "benefit_cost", "voucher_cost", "points_payment_cost", "liability", "program_cost", "revenue_lift", "revenue_lift_pct", "net_benefit", "roi",
)  # fmt: skip
# A bare program's quick look: the bundled sample at 100 paths (the scenario default), short enough
# to wait for (its time: docs/performance.md, "The quick look").
QUICK_RUNS = 100
LABELS = {k: (label, kind) for k, label, kind in HEADLINE}


def _scenario_for(target: str, overrides: dict) -> Scenario:
    p = Path(target)
    if p.suffix in (".yaml", ".yml"):
        sc = load_scenario(p)
        if sc.program is None:
            raise LoyaltyError(f"{p}: error: program: the scenario names no program; add `program: your_program.loyalty`")
    elif p.suffix == ".loyalty":
        # A bare program is a quick look: the scenario defaults, but fewer runs (--runs for more).
        sc = Scenario(program=p, runs=QUICK_RUNS)
    else:
        raise click.BadParameter(f"{target}: expected a program (.loyalty) or a scenario (.yaml)", param_hint="PROGRAM_OR_SCENARIO")
    return sc.with_overrides(**overrides)


def _data(sc: Scenario, transactions: str | None, customers: str | None):
    if transactions is not None:
        return transactions, customers
    tx, cu = sc.data_paths()
    return str(tx), customers if customers is not None else (str(cu) if cu is not None else None)


# Shown until the first run ends when numba has not yet compiled the engine on this machine.
PREPARING = "preparing the engine (the first run after install compiles it; later runs start at once)"


@contextmanager
def _progress(total: int, quiet: bool, label: str, engine: str = "compiled", console: Console | None = None):
    if quiet:
        yield None
        return
    label = plain(label)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )
    with bar:
        first = engine == "compiled" and not compiled_on_disk()
        task = bar.add_task(escape(PREPARING if first else label), total=total)

        def advance(n: int) -> None:
            nonlocal first
            if first:
                first = False
                bar.update(task, description=escape(label))
            bar.advance(task, n)

        def recount(total: int, what: str) -> None:
            """Count something else than runs (the Dask executor's tasks)."""
            nonlocal label
            label = plain(what)
            bar.update(task, total=total, description=escape(PREPARING if first else label))

        advance.recount = recount
        # A line above the bar (written through the bar's console: it stays, the bar redrawn below it).
        advance.say = lambda text: bar.console.print(escape(plain(text)), highlight=False, soft_wrap=True)
        yield advance


def plain(text) -> str:
    """User text (a program name, a file name, a reward) for the terminal: control characters shown
    as escapes (an escape sequence could rewrite the screen), line breaks and tabs kept."""
    return visible(str(text))


def _markup(text) -> str:
    """User text inside rich markup: plain, and its [brackets] shown, never interpreted."""
    return escape(plain(text))


class Interrupted(Exception):
    """Ctrl-C: the message says what became of the output folder."""


@contextmanager
def _interruptible(out: Path | None, state: dict):
    """Ctrl-C stops the command with `interrupted; <out>/ unchanged` (`interrupted` when it writes
    no folder) and exit 130, no traceback.
    Forked worker processes leave it to this one, which ends them (they die without a word)."""
    main = os.getpid()

    def on_sigint(signum, frame):
        if os.getpid() != main:
            return  # a worker: the main process ends it
        import multiprocessing

        for child in multiprocessing.active_children():
            child.terminate()
        raise KeyboardInterrupt

    # Only the main thread may set a handler (a command called from another thread keeps Python's).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        yield
    except KeyboardInterrupt:
        what = "holds this run's complete outputs" if state.get("written") else "unchanged"
        click.echo(f"interrupted; {out}/ {what}" if out is not None else "interrupted", err=True)
        sys.exit(130)
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)


def _fail(exc: LoyaltyError) -> None:
    click.echo(plain(exc), err=True)
    sys.exit(1)


def _run(sc, tx, cu, label, quiet, workers, engine, tune_memory, rejects=None, cluster=None, ledger_to=None):
    from simulator.api import load_program, simulate
    from simulator.inspection import require_customers

    program = load_program(sc.program)  # once: the customers check and the simulation share it
    require_customers(program, cu)  # said in the command's words, not the API's
    with _progress(sc.runs, quiet, label, engine) as progress:

        def advance(n: int) -> None:
            outputs.checkpoint("simulating")  # the test hook: Ctrl-C while the runs go on
            if progress is not None:
                progress(n)

        def told(link: str, tasks: int) -> None:
            if progress is not None:
                progress.say(f"Dask: {tasks} task(s), one per file of customers; dashboard: {link}")
                progress.recount(tasks, f"{label}: {sc.runs} run(s), files done")

        return simulate(
            program, tx, cu, sc, workers=workers, engine=engine, progress=advance, rejects=rejects, tune_memory=tune_memory,
            cluster=cluster, ledger_to=ledger_to, told=told,
        )  # fmt: skip


def _inputs(target, transactions, customers, overrides):
    sc = _scenario_for(target, overrides)
    tx, cu = _data(sc, transactions, customers)
    return sc, tx, cu


def _input_paths(target, sc, tx, cu) -> dict:
    """Every file a run reads, by what it is (for refusing an output that is one)."""
    scenario = target if Path(target).suffix in (".yaml", ".yml") else None
    return {"transactions": tx, "customers": cu, "program": sc.program, "scenario": scenario}


def _refuse_outputs_over_inputs(out_dir, rejects, inputs: list[dict], names) -> None:
    """Before any work: no output may be an input, --rejects may not lie in the replaced --out,
    and --out must be new, empty or a folder of this command's outputs."""
    for given in inputs:
        refuse_input_as_output({"--rejects": rejects, "--out": out_dir}, given)
    if rejects is not None and (Path(out_dir).resolve() == Path(rejects).resolve() or Path(out_dir).resolve() in Path(rejects).resolve().parents):
        raise LoyaltyError(f"{rejects}: error: --rejects is inside --out {out_dir} (or is it), which is replaced as a whole; write it elsewhere")
    outputs.check_target(out_dir, names)


def _common(fn):
    options = [
        click.option(
            "--transactions",
            type=HISTORY,
            help="transactions CSV or Parquet, or a Parquet dataset: a folder, a glob or a URL (default: the scenario's, else the bundled sample)",
        ),
        click.option("--customers", type=click.Path(exists=True, dir_okay=False), help="customers CSV or Parquet"),
        click.option("--runs", type=click.IntRange(min=1), help="Monte Carlo runs (overrides the scenario)"),
        click.option("--seed", type=click.IntRange(min=0), help="random seed (overrides the scenario)"),
        click.option("--period", help="history to replay, like '2026-01-01 to 2026-12-31'"),
        click.option("--enrollment-share", type=float, help="share of customers who join"),
        click.option("--redemption-probability", type=float, help="chance to redeem on a visit when a reward is affordable"),
        click.option("--margin", type=float, help="gross margin on incremental revenue"),
        click.option("--horizon", help="forecast this long after the history's last day, like '24 months' (overrides the scenario)"),
        click.option("--acquisition", type=float, help="new customers per month in the horizon (default: the history's own rate; 0: none)"),
        click.option("--workers", type=click.IntRange(min=1), help="cores to use: worker processes, or threads for one run (default: all available)"),
        click.option(
            "--tune-memory/--no-tune-memory",
            default=True,
            envvar="LOYALTY_TUNE_MEMORY",
            show_default=True,
            help="Arrow's jemalloc pool, NumPy without huge pages and freed memory handed back while simulating (env LOYALTY_TUNE_MEMORY)",
        ),
        click.option("--engine", type=click.Choice(["compiled", "reference"]), default="compiled", show_default=True),
        click.option("--quiet", is_flag=True, help="no progress bar or load summary on stderr"),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def _overrides(runs, seed, period, enrollment_share, redemption_probability, margin, horizon=None, acquisition=None) -> dict:
    return {
        "horizon": horizon,
        "acquisition.per_month": acquisition,
        "runs": runs,
        "seed": seed,
        "period": period,
        "enrollment.share": enrollment_share,
        "redemption.probability": redemption_probability,
        "margin": margin,
    }


class _History(click.ParamType):
    """A transactions file, or a dataset of Parquet files (simulator.partition): a folder, a glob or a URL."""

    name = "path"

    def convert(self, value, param, ctx):
        from simulator.partition import is_dataset

        if is_dataset(value) or Path(value).exists():  # (a pipe or device: io.read_table refuses it, naming it)
            return value
        self.fail(f"{value}: no such file, folder or dataset", param, ctx)


HISTORY = _History()


def _cell(v, kind, dec) -> str:
    return fmt_number(v, kind, dec)


def _first_screen(console: Console, s: dict) -> None:
    """What the figures rest on, before them: the span replayed and forecast, and where each
    assumption came from (simulator.provenance); user text escaped, never read as markup."""
    if "span" not in s:
        return
    console.print(f"{_markup(s['program'])}: {_markup(s['span']['text'])}", highlight=False)
    table = Table(title="assumptions and where they came from", title_justify="left", show_edge=False, box=None, pad_edge=False)
    for col in ("assumption", "value", "source"):
        table.add_column(col, overflow="fold")
    for key, entry in s["assumption_sources"].items():
        table.add_row(_markup(key), _markup(entry["shown"]), _markup(source_text(entry)))
    console.print(table, highlight=False)


def _console() -> Console:
    return Console(file=sys.stdout, width=max(100, Console().width))


@click.command("simulate")
@click.argument("target", metavar="PROGRAM_OR_SCENARIO", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="simulation", show_default=True, help="folder for the outputs")
@click.option("--rejects", type=click.Path(dir_okay=False), help="write every rejected row with its reason to this CSV")
@click.option("--cluster", help="run on Dask: `local:N` (N worker processes here) or a scheduler like tcp://HOST:8786 (needs loyalty-toolkit[dask])")
@_common
def simulate_cmd(
    target,
    out_dir,
    rejects,
    cluster,
    transactions,
    customers,
    runs,
    seed,
    period,
    enrollment_share,
    redemption_probability,
    margin,
    horizon,
    acquisition,
    workers,
    tune_memory,
    engine,
    quiet,
):
    """Replay history through a program and forecast cost, liability and lift (with P5/P50/P95)."""
    overrides = _overrides(runs, seed, period, enrollment_share, redemption_probability, margin, horizon, acquisition)
    state: dict = {}
    ledger_to = None
    with _interruptible(Path(out_dir), state):
        try:
            sc, tx, cu = _inputs(target, transactions, customers, overrides)
            _refuse_outputs_over_inputs(out_dir, rejects, [_input_paths(target, sc, tx, cu)], outputs.SIMULATION_FILES + outputs.OPTIONAL_FILES)
            if cluster is not None or sc.cluster is not None:
                from simulator.cluster import address_problem, ledger_folder

                if cluster is not None and address_problem(cluster):
                    raise click.BadParameter(address_problem(cluster), param_hint="--cluster")
                ledger_to = ledger_folder(out_dir)  # the workers write run 0's ledger beside the outputs
            res = _run(sc, tx, cu, Path(target).name, quiet, workers, engine, tune_memory, rejects, cluster, ledger_to)
            if not quiet:
                for load in res.loads:
                    if load is not None:
                        click.echo(plain(load.report()), err=True)
            out = res.write(out_dir)
            state["written"] = True
        except LoyaltyError as exc:
            _fail(exc)
        finally:
            if ledger_to is not None:
                import shutil

                shutil.rmtree(ledger_to, ignore_errors=True)  # linked into the outputs, or of a failed run
        dec = res.program.model.decimals
        s = res.summary
        console = _console()
        _first_screen(console, s)
        table = Table(title=f"{_markup(s['program'])}: {len(res.per_run)} run(s), money in {_markup(s['currency'])}")
        rows = ("rows_read", "rows_used", "rows_rejected") + SHOWN
        if "discount_cost" in s:  # a program with discounts: what they cost, next to the rewards'
            at = rows.index("reward_cost") + 1
            rows = rows[:at] + ("discount_cost",) + rows[at:]
        notes = notes_by_figure(s, rows)
        for col in ("figure", "P5", "P50", "P95", "mean") + (("note",) if notes else ()):
            table.add_column(col, justify="left" if col in ("figure", "note") else "right")
        for key in rows:
            if key not in s:  # a figure the program has none of (benefit_cost without benefits)
                continue
            label, kind = LABELS[key]
            note = (f"[yellow]{_markup('; '.join(notes[key]))}[/]",) if key in notes else ("",) if notes else ()
            table.add_row(key, *(_cell(s[key][q], kind, dec) for q in ("p5", "p50", "p95", "mean")), *note)
        console.print(table)
        click.echo(plain(f"wrote {out}/: {', '.join(res.output_files())}"))


@click.command("compare")
@click.argument("targets", metavar="PROGRAM_OR_SCENARIO...", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="comparison",
    show_default=True,
    help="folder for compare.html, compare.csv and compare.xlsx (by default `comparison` in the working directory; its full path is printed)",
)
@_common
def compare_cmd(
    targets, out_dir, transactions, customers, runs, seed, period, enrollment_share, redemption_probability, margin, horizon, acquisition, workers, tune_memory, engine, quiet
):
    """Run several programs or scenarios on the same data and seed; show the figures side by side.

    The programs must share one currency (money is compared, not converted)."""
    from simulator.report import compare_rows, fmt_delta, render_compare
    from simulator.workbook import write_comparison

    if len(targets) < 2:
        raise click.UsageError("compare needs at least two programs or scenarios")
    state: dict = {}
    with _interruptible(Path(out_dir), state):
        try:
            first = _scenario_for(targets[0], _overrides(runs, seed, period, enrollment_share, redemption_probability, margin, horizon, acquisition))
            tx, cu = _data(first, transactions, customers)
            # Everyone runs on the first's data, runs and seed, so differences come from the programs.
            shared = _overrides(first.runs, first.seed, period, enrollment_share, redemption_probability, margin, horizon, acquisition)
            scenarios = [_scenario_for(t, shared) for t in targets]
            given = [_input_paths(t, sc, tx, cu) for t, sc in zip(targets, scenarios, strict=True)]
            _refuse_outputs_over_inputs(out_dir, None, given, outputs.COMPARE_FILES)
            names = _names(targets)
            _one_currency(scenarios, names)
            results = [_run(sc, tx, cu, Path(t).name, quiet, workers, engine, tune_memory) for t, sc in zip(targets, scenarios, strict=True)]
            rows = compare_rows(results)
            out = outputs.write_set(
                out_dir,
                {
                    "compare.html": lambda p: p.write_text(render_compare(results, names), encoding="utf-8"),
                    "compare.csv": lambda p: _compare_csv(rows, names, [r.summary["sources"] for r in results], p),
                    "compare.xlsx": lambda p: write_comparison(results, names, p),
                },
            )
            state["written"] = True
        except LoyaltyError as exc:
            _fail(exc)
        dec = results[0].program.model.decimals
        table = Table(
            title=f"P50 of {first.runs} run(s), seed {first.seed}, money in {_markup(results[0].currency)}; "
            f"Δ is the difference from {_markup(names[0])} (rates in percentage points; green better, red worse)"
        )
        table.add_column("figure")
        for i, n in enumerate(names):
            table.add_column(_markup(n), justify="right")
            if i:
                table.add_column("Δ", justify="right")
        for r in rows:
            if r["key"] not in SHOWN:
                continue
            cells = []
            for i, v in enumerate(r["values"]):
                cells.append(_cell(v["p50"], r["kind"], dec))
                if i:
                    colour = TERMINAL_COLOURS.get(r["verdicts"][i])
                    delta = fmt_delta(r["diffs"][i], r["kind"], dec)
                    cells.append(f"[{colour}]{delta}[/]" if colour else delta)
            table.add_row(r["key"], *cells)
        _console().print(table)
        click.echo(plain(f"wrote {Path(out).resolve()}/: compare.html, compare.csv and compare.xlsx"))


# How the terminal shows a difference that is better or worse for the business (report.VERDICT).
TERMINAL_COLOURS = {"better": "green", "worse": "red"}


def _one_currency(scenarios, names) -> None:
    """Refuse programs in different currencies: their money figures cannot be subtracted."""
    from simulator.api import load_program

    currencies = [load_program(sc.program).model.currency for sc in scenarios]
    if len(set(currencies)) > 1:
        each = ", ".join(f"{n} in {c}" for n, c in zip(names, currencies, strict=True))
        raise LoyaltyError(
            f"error: cannot compare programs in different currencies ({each}): their money figures would be "
            "subtracted across currencies. Compare programs that use one currency."
        )


def _names(targets) -> list[str]:
    stems = [Path(t).stem for t in targets]
    return [s if stems.count(s) == 1 else f"{s} ({i + 1})" for i, s in enumerate(stems)]


SOURCE_KINDS = ("transactions", "customers", "program", "scenario")


def _compare_csv(rows, names, sources, path: Path) -> None:
    """The figures (one row each), then each program's sources: rows `source <what> path` and
    `source <what> sha256` with the value in the program's first column. Text cells formula-safe."""
    import csv

    quantiles = ("p5", "p50", "p95", "mean")
    table = [["figure"] + [f"{n} {q}" for n in names for q in quantiles] + [f"{n} diff_p50" for n in names[1:]]]
    for r in rows:
        table.append([r["key"]] + [v[q] for v in r["values"] for q in quantiles] + r["diffs"][1:])
    blank = [""] * (len(quantiles) - 1)
    for what in SOURCE_KINDS:
        for field in ("path", "sha256"):
            cells = [c for s in sources for c in [s[what][field] or s[what]["given"] if field == "path" else s[what][field] or ""] + blank]
            table.append([f"source {what} {field}"] + cells + [""] * (len(names) - 1))
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(csv_rows_safe(table))


commands = [simulate_cmd, compare_cmd]
