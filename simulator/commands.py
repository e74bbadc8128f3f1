"""`loyalty simulate` and `loyalty compare`: thin shells over `simulator.api`.

Errors in the user's input print as one clear message on stderr and exit 1; usage problems
(a missing file, a bad flag) exit 2 through click. Never a traceback.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rulelang.errors import LoyaltyError
from simulator.report import HEADLINE, fmt_number
from simulator.scenario import Scenario, load_scenario

SHOWN = (
    "members", "points_issued", "points_redeemed", "points_expired", "points_outstanding", "redemption_rate",
    "breakage_rate", "reward_cost", "liability", "program_cost", "revenue_lift", "revenue_lift_pct", "net_benefit", "roi",
)  # fmt: skip
# A bare program's quick look: the bundled sample at 100 paths (the scenario default) takes about
# 15 s with the report, on two cores shared with other jobs.
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


@contextmanager
def _progress(total: int, quiet: bool, label: str):
    if quiet:
        yield None
        return
    bar = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True
    )
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _fail(exc: LoyaltyError) -> None:
    click.echo(str(exc), err=True)
    sys.exit(1)


def _run(target, transactions, customers, overrides, quiet, workers, engine, rejects=None):
    from simulator.api import simulate

    sc = _scenario_for(target, overrides)
    tx, cu = _data(sc, transactions, customers)
    with _progress(sc.runs, quiet, Path(target).name) as progress:
        return simulate(sc.program, tx, cu, sc, workers=workers, engine=engine, progress=progress, rejects=rejects)


def _common(fn):
    options = [
        click.option(
            "--transactions",
            type=click.Path(exists=True, dir_okay=False),
            help="transactions CSV or Parquet (default: the scenario's, else the bundled sample)",
        ),
        click.option("--customers", type=click.Path(exists=True, dir_okay=False), help="customers CSV or Parquet"),
        click.option("--runs", type=click.IntRange(min=1), help="Monte Carlo runs (overrides the scenario)"),
        click.option("--seed", type=click.IntRange(min=0), help="random seed (overrides the scenario)"),
        click.option("--period", help="history to replay, like '2026-01-01 to 2026-12-31'"),
        click.option("--enrollment-share", type=float, help="share of customers who join"),
        click.option("--redemption-probability", type=float, help="chance to redeem on a visit when a reward is affordable"),
        click.option("--margin", type=float, help="gross margin on incremental revenue"),
        click.option("--workers", type=click.IntRange(min=1), help="processes (default 2)"),
        click.option("--engine", type=click.Choice(["compiled", "reference"]), default="compiled", show_default=True),
        click.option("--quiet", is_flag=True, help="no progress bar or load summary on stderr"),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def _overrides(runs, seed, period, enrollment_share, redemption_probability, margin) -> dict:
    return {
        "runs": runs,
        "seed": seed,
        "period": period,
        "enrollment.share": enrollment_share,
        "redemption.probability": redemption_probability,
        "margin": margin,
    }


def _cell(v, kind, dec) -> str:
    return fmt_number(v, kind, dec)


@click.command("simulate")
@click.argument("target", metavar="PROGRAM_OR_SCENARIO", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="simulation", show_default=True, help="folder for the outputs")
@click.option("--rejects", type=click.Path(dir_okay=False), help="write every rejected row with its reason to this CSV")
@_common
def simulate_cmd(
    target,
    out_dir,
    rejects,
    transactions,
    customers,
    runs,
    seed,
    period,
    enrollment_share,
    redemption_probability,
    margin,
    workers,
    engine,
    quiet,
):
    """Replay history through a program and forecast cost, liability and lift (with P5/P50/P95)."""
    try:
        res = _run(
            target,
            transactions,
            customers,
            _overrides(runs, seed, period, enrollment_share, redemption_probability, margin),
            quiet,
            workers,
            engine,
            rejects,
        )
        if not quiet:
            for load in res.loads:
                if load is not None:
                    click.echo(load.report(), err=True)
        out = res.write(out_dir)
    except LoyaltyError as exc:
        _fail(exc)
    dec = res.program.model.decimals
    s = res.summary
    table = Table(title=f"{s['program']}: {len(res.per_run)} run(s), money in {s['currency']}")
    for col in ("figure", "P5", "P50", "P95", "mean"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    for key in ("rows_read", "rows_used", "rows_rejected") + SHOWN:
        label, kind = LABELS[key]
        table.add_row(key, *(_cell(s[key][q], kind, dec) for q in ("p5", "p50", "p95", "mean")))
    Console(file=sys.stdout, width=max(100, Console().width)).print(table)
    click.echo(f"wrote {out}/: summary.json, monthly.csv, ledger.parquet, rewards.csv, report.html")


@click.command("compare")
@click.argument("targets", metavar="PROGRAM_OR_SCENARIO...", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="comparison",
    show_default=True,
    help="folder for compare.html and compare.csv",
)
@_common
def compare_cmd(
    targets, out_dir, transactions, customers, runs, seed, period, enrollment_share, redemption_probability, margin, workers, engine, quiet
):
    """Run several programs or scenarios on the same data and seed; show the figures side by side."""
    from simulator.report import compare_rows, fmt_delta, render_compare

    if len(targets) < 2:
        raise click.UsageError("compare needs at least two programs or scenarios")
    try:
        first = _scenario_for(targets[0], _overrides(runs, seed, period, enrollment_share, redemption_probability, margin))
        tx, cu = _data(first, transactions, customers)
        # Everyone runs on the first's data, runs and seed, so differences come from the programs.
        shared = _overrides(first.runs, first.seed, period, enrollment_share, redemption_probability, margin)
        results = [_run(t, tx, cu, shared, quiet, workers, engine) for t in targets]
        names = _names(targets)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.html").write_text(render_compare(results, names), encoding="utf-8")
        rows = compare_rows(results)
        _compare_csv(rows, names, out / "compare.csv")
    except OSError as exc:
        _fail(LoyaltyError(f"{out_dir}: error: cannot write: {exc}"))
    except LoyaltyError as exc:
        _fail(exc)
    dec = results[0].program.model.decimals
    table = Table(title=f"P50 of {first.runs} run(s), seed {first.seed}; Δ is the difference from {names[0]} (rates in percentage points)")
    table.add_column("figure")
    for i, n in enumerate(names):
        table.add_column(n, justify="right")
        if i:
            table.add_column("Δ", justify="right")
    for r in rows:
        if r["key"] not in SHOWN:
            continue
        cells = []
        for i, v in enumerate(r["values"]):
            cells.append(_cell(v["p50"], r["kind"], dec))
            if i:
                cells.append(fmt_delta(r["diffs"][i], r["kind"], dec))
        table.add_row(r["key"], *cells)
    Console(file=sys.stdout, width=max(100, Console().width)).print(table)
    click.echo(f"wrote {out}/compare.html and compare.csv")


def _names(targets) -> list[str]:
    stems = [Path(t).stem for t in targets]
    return [s if stems.count(s) == 1 else f"{s} ({i + 1})" for i, s in enumerate(stems)]


def _compare_csv(rows, names, path: Path) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["figure"] + [f"{n} {q}" for n in names for q in ("p5", "p50", "p95", "mean")] + [f"{n} diff_p50" for n in names[1:]])
        for r in rows:
            w.writerow([r["key"]] + [v[q] for v in r["values"] for q in ("p5", "p50", "p95", "mean")] + r["diffs"][1:])


commands = [simulate_cmd, compare_cmd]
