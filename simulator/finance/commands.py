"""`loyalty triangles LEDGER`: cohort triangles of a ledger and the ultimate redemption rate.

Reads a ledger (ledger.parquet as `loyalty simulate` writes it, or a CSV in the same columns),
prints the URR with its standard error (overall, and per tier with `--by tier`), and writes
`triangles.csv` (the cohorts' development) and `urr.csv` (each cohort's projection) into the
output folder as one set swapped in at once (simulator.outputs), text cells formula-safe.
Exit codes: 0 done, 2 unreadable or invalid ledger, or the output cannot be written.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from rulelang.errors import LoyaltyError, visible

TRIANGLE_FILES = ("triangles.csv", "urr.csv")


@click.command("triangles")
@click.argument("ledger", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="triangles",
    show_default=True,
    help="folder for triangles.csv and urr.csv",
)
@click.option(
    "--by", "by", type=click.Choice(["tier"]), default=None, help="also each tier's URR (a lot counts for the tier it was earned at)"
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="how to print the URRs")
def triangles_cmd(ledger, out_dir, by, fmt):
    """The ultimate redemption rate of a ledger's points, by chain ladder on cohort triangles."""
    from rulelang import formula_safe, refuse_input_as_output
    from simulator import outputs
    from simulator.finance.triangles import analyse, read_ledger

    try:
        refuse_input_as_output({"--out": out_dir}, {"ledger": ledger})
        outputs.check_target(out_dir, TRIANGLE_FILES)  # before the work, not after it
        report = analyse(read_ledger(ledger), by_tier=by == "tier")
        cohorts = cohort_table(report)

        def csv(frame):
            return lambda path: path.write_text(formula_safe(frame).to_csv(index=False, lineterminator="\n"), encoding="utf-8")

        outputs.write_set(out_dir, {"triangles.csv": csv(report.table), "urr.csv": csv(cohorts)})
    except LoyaltyError as exc:
        click.echo(visible(str(exc)), err=True)
        sys.exit(2)
    written = [str(Path(out_dir) / name) for name in TRIANGLE_FILES]
    estimates = [report.overall, *report.by_tier.values()]
    if fmt == "json":
        doc = {
            "ledger": str(ledger),
            "first_month": report.first_month,
            "last_month": report.last_month,
            "urr": [e.as_dict() for e in estimates],
            "files": written,
        }
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False))
        return
    click.echo(visible(_text(ledger, report, estimates)))
    click.echo(f"wrote {', '.join(written)}")


def cohort_table(report):
    """urr.csv: each group's (the whole ledger's, then each tier's) cohorts and overall URR."""
    import pandas as pd

    from simulator.finance.triangles import cohort_rows

    frames = [cohort_rows(e).assign(tier=e.group) for e in (report.overall, *report.by_tier.values())]
    table = pd.concat(frames, ignore_index=True)
    return table[["tier", *[c for c in table.columns if c != "tier"]]]


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.1f}%"


def _text(ledger, report, estimates) -> str:
    lines = [
        f"{ledger}: cohorts by month earned, {report.first_month} to {report.last_month}",
        "ultimate redemption rate (URR): chain ladder on the cumulative redeemed points, Mack's standard error",
        "",
    ]
    rows = [("tier", "points kept", "redeemed", "so far", "URR", "std error")]
    for e in estimates:
        so_far = e.redeemed / e.exposure if e.exposure else float("nan")
        rows.append((e.group, f"{e.exposure:,}", f"{e.redeemed:,}", _pct(so_far), _pct(e.urr), _pct(e.std_error)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append(
            "  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
        )
    if any(not math.isfinite(e.std_error) for e in estimates):
        lines += ["", "n/a: not estimable from this ledger (too few months, or a month no cohort has redeemed in yet)"]
    lines += ["", "points kept: earned net of clawbacks; URR: the share of them expected ever to be redeemed"]
    return "\n".join(lines)


commands = [triangles_cmd]
