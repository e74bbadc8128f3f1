"""`loyalty calibrate PILOT.yaml`: lift measured from a pilot, and the `response:` block it implies.

Reads the pilot file (simulator.pilot), its transactions through the one loader (simulator.io:
column mapping, timestamp format, bad rows rejected with their reasons), builds the customer x week
panel and estimates (simulator.calibration). Prints the estimates (text or JSON) and, with --out,
writes a YAML `response:` block whose uplifts are normal distributions (mean: the estimate, sd: its
standard error), which a scenario takes as it is: each Monte Carlo run draws its own uplift.
Exit codes: 0 estimated (a failed placebo test is a printed warning), 1 an error in the pilot file
or its data, 2 usage or an output that cannot be written.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from rulelang import atomic_write_bytes, refuse_input_as_output
from rulelang.errors import LoyaltyError, visible
from simulator import calibration, io
from simulator.pilot import Pilot, group_ids, load_pilot
from simulator.scenario import Period

DECIMALS = 6  # of the uplifts written in the response block: a millionth of a share is far below any standard error


def run(pilot: Pilot) -> tuple[calibration.Calibration, io.LoadResult, int]:
    """The estimates of a pilot, the transactions as loaded, and the rows of customers in neither group."""
    tx = io.load_transactions(
        pilot.transactions,
        pilot.columns,
        period=Period(pilot.pre_start, pilot.end),
        timestamp_format=pilot.timestamp_format,
        customers=pilot.customers,
    )
    if tx.rows_used == 0:
        raise io.DataError(tx.report() + f"\n{pilot.transactions}: error: no usable transaction rows from {pilot.pre_start} to {pilot.end}")
    cu = None
    if pilot.customers is not None:
        cu = io.load_customers(pilot.customers, pilot.columns, timestamp_format=pilot.timestamp_format).frame
    treated = group_ids(pilot.treated, pilot, tx.frame, cu)
    control = group_ids(pilot.control, pilot, tx.frame, cu)
    both = set(treated.tolist()) & set(control.tolist())
    if both:
        shown = ", ".join(sorted(map(str, both))[:5])
        raise pilot.error(("control",), f"{len(both):,} {'customer is' if len(both) == 1 else 'customers are'} also treated (e.g. {shown}); a customer is in one group")
    panel, outside = calibration.build_panel(tx.frame, treated, control, pilot.pre_start, pilot.start, pilot.end)
    return calibration.estimate(panel), tx, outside


def response_block(c: calibration.Calibration, pilot: Pilot) -> str:
    """The YAML `response:` block: spend per visit and visits, each a normal distribution."""

    def normal(e: calibration.Effect) -> str:
        return f"{{normal: {{mean: {round(e.uplift, DECIMALS)}, sd: {round(e.uplift_se, DECIMALS)}}}}}"

    return "\n".join(
        [
            f"# Written by `loyalty calibrate {Path(pilot.source).name}`: {c.treated_customers:,} treated and {c.control_customers:,} control customers,",
            f"# {c.pre_weeks} weeks before the pilot ({pilot.pre_start} on) and {c.pilot_weeks} in it ({pilot.start} to {pilot.end}).",
            "# Each uplift is the estimate's sampling distribution: every run of a simulation draws its own.",
            "# spend_uplift is the spend of a visit (the simulator scales each basket by it; visit_uplift adds baskets).",
            *(["# WARNING: the placebo test rejected parallel trends; read the estimates with care."] if c.placebo is not None and c.placebo.rejects else []),
            "response:",
            f"  spend_uplift: {normal(c.spend_per_visit)}",
            f"  visit_uplift: {normal(c.visits)}",
            "",
        ]
    )


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def _span(lo_hi: tuple[float, float]) -> str:
    return f"{_pct(lo_hi[0])} to {_pct(lo_hi[1])}"


def as_text(c: calibration.Calibration, pilot: Pilot, tx: io.LoadResult, outside: int) -> str:
    lines = [
        f"{pilot.source}: pilot {pilot.start} to {pilot.end} ({c.pilot_weeks} weeks), pre-period from {pilot.pre_start} ({c.pre_weeks} weeks)",
        f"customers: {c.treated_customers:,} treated ({pilot.treated.describe()}), {c.control_customers:,} control ({pilot.control.describe()})",
        f"rows: {tx.rows_read:,} read, {tx.rows_used:,} used, {tx.rows_rejected:,} rejected, {tx.rows_outside_period:,} outside the pre-period and pilot, "
        f"{outside:,} of customers in neither group (not used)",
        "",
        "difference in differences (customer x week, Poisson pseudo-likelihood, errors clustered by customer):",
        f"  {'':16}{'uplift':>8}  {'95% interval':<20}{'per customer-week: treated':>28}{'counterfactual':>16}{'effect':>10}",
    ]
    for name, e in (("spend", c.spend), ("visits", c.visits), ("spend per visit", c.spend_per_visit)):
        lines.append(f"  {name:16}{_pct(e.uplift):>8}  {_span(e.uplift_interval()):<20}{e.treated_mean:>28,.3f}{e.counterfactual:>16,.3f}{e.effect:>+10,.3f}")
    lines.append("")
    p = c.placebo
    if p is None:
        lines.append("placebo test: not run (the pre-period needs at least two weeks with spend and visits in each group and half)")
    else:
        verdict = "WARNING: parallel trends rejected at 5%: the groups were already diverging before the pilot; the uplifts above are not trustworthy" if p.rejects else "no sign of diverging trends"
        lines.append(
            f"placebo test (the pre-period's last {p.weeks_after} weeks as a pretend pilot, against its first {p.weeks_before}): "
            f"spend {_pct(p.spend_uplift)}, visits {_pct(p.visit_uplift)}, p = {p.p_value:.3f}: {verdict}"
        )
    lines.append(
        f"naive comparison (treated vs control in the pilot period, not used): spend {_pct(c.naive_spend)}, visits {_pct(c.naive_visits)}; "
        "it mixes the lift with how the groups differed before the pilot"
    )
    if c.negative_spend_cells:
        lines.append(f"note: {c.negative_spend_cells:,} customer-weeks had more refunds than purchases; they count as 0 spend")
    return "\n".join(lines)


def as_json(c: calibration.Calibration, pilot: Pilot, tx: io.LoadResult, outside: int) -> str:
    def effect(e: calibration.Effect) -> dict:
        lo, hi = e.uplift_interval()
        elo, ehi = e.effect_interval()
        return {
            "uplift": e.uplift,
            "uplift_se": e.uplift_se,
            "uplift_95": [lo, hi],
            "log_ratio": e.log_ratio,
            "log_ratio_se": e.log_ratio_se,
            "treated_mean": e.treated_mean,
            "counterfactual": e.counterfactual,
            "effect": e.effect,
            "effect_95": [elo, ehi],
        }

    p = c.placebo
    doc = {
        "pilot": pilot.source,
        "pre_start": str(pilot.pre_start),
        "start": str(pilot.start),
        "end": str(pilot.end),
        "weeks": {"pre": c.pre_weeks, "pilot": c.pilot_weeks},
        "customers": {"treated": c.treated_customers, "control": c.control_customers},
        "rows": {"read": tx.rows_read, "used": tx.rows_used, "rejected": tx.rows_rejected, "outside_period": tx.rows_outside_period, "neither_group": outside},
        "spend": effect(c.spend),
        "visits": effect(c.visits),
        "spend_per_visit": effect(c.spend_per_visit),
        "placebo": None
        if p is None
        else {"spend_uplift": p.spend_uplift, "visit_uplift": p.visit_uplift, "chi2": p.chi2, "p_value": p.p_value, "rejects": p.rejects, "weeks_before": p.weeks_before, "weeks_after": p.weeks_after},
        "naive": {"spend": c.naive_spend, "visits": c.naive_visits},
        "negative_spend_weeks": c.negative_spend_cells,
        "response": {
            "spend_uplift": {"normal": {"mean": round(c.spend_per_visit.uplift, DECIMALS), "sd": round(c.spend_per_visit.uplift_se, DECIMALS)}},
            "visit_uplift": {"normal": {"mean": round(c.visits.uplift, DECIMALS), "sd": round(c.visits.uplift_se, DECIMALS)}},
        },
    }
    return json.dumps(_finite(doc), indent=2)


def _finite(value):
    """The document with NaN and infinities as null (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fail(exc: LoyaltyError, code: int):
    click.echo(visible(str(exc)), err=True)
    sys.exit(code)


@click.command("calibrate")
@click.argument("pilot_file", metavar="PILOT.yaml", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(dir_okay=False), help="write the response: block (YAML) here, for a scenario")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def calibrate_cmd(pilot_file, out, fmt):
    """Measure spend and visit uplift from a pilot (treated vs control, before vs during): difference in differences."""
    try:
        pilot = load_pilot(pilot_file)
    except LoyaltyError as exc:
        _fail(exc, 1)
    inputs = {"pilot": pilot_file, "transactions": pilot.transactions, "customers": pilot.customers}
    inputs.update({f"{g.key} list": g.ids_file for g in (pilot.treated, pilot.control)})
    try:
        refuse_input_as_output({"--out": out}, inputs)
    except LoyaltyError as exc:
        _fail(exc, 2)  # a usage mistake: nothing was read or written
    try:
        c, tx, outside = run(pilot)
    except LoyaltyError as exc:
        _fail(exc, 1)
    if tx.rows_rejected:
        click.echo(visible(tx.report()), err=True)
    click.echo(visible(as_json(c, pilot, tx, outside) if fmt == "json" else as_text(c, pilot, tx, outside)))
    if c.placebo is not None and c.placebo.rejects and fmt == "json":
        click.echo(f"{pilot.source}: warning: the placebo test rejected parallel trends (p = {c.placebo.p_value:.3f}); read the estimates with care", err=True)
    if out is not None:
        try:
            atomic_write_bytes(out, response_block(c, pilot).encode("utf-8"))
        except OSError as exc:
            click.echo(f"{out}: error: cannot write: {exc}", err=True)
            sys.exit(2)
        if fmt == "text":
            click.echo(f"response block written to {out}")


commands = [calibrate_cmd]
