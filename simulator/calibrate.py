"""`loyalty calibrate PILOT.yaml`: lift measured from a pilot, and the `response:` block it implies;
`loyalty calibrate --ledger LEDGER --transactions TX`: redemption behaviour measured from a running
program's ledger (simulator.redemption_calibration), and the `redemption:` block it implies.

Reads the pilot file (simulator.pilot), its transactions through the one loader (simulator.io:
column mapping, timestamp format, bad rows rejected with their reasons), builds the customer x week
panel and estimates (simulator.calibration). Prints the estimates (text or JSON) and, with --out,
writes a YAML `response:` block whose uplifts are normal distributions (mean: the estimate, sd: its
standard error), which a scenario takes as it is: each Monte Carlo run draws its own uplift.
Exit codes: 0 estimated (a failed placebo test is a printed warning), 1 an error in the pilot file
or its data (with --ledger: the ledger, its transactions, the scenario or the program), 2 usage
(neither or both of a pilot and --ledger; --ledger without --transactions) or an output that
cannot be written.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from rulelang import atomic_write_bytes, refuse_input_as_output
from rulelang.errors import LoyaltyError, visible
from simulator import calibration, io, redemption_calibration
from simulator.pilot import Pilot, group_ids, load_pilot
from simulator.scenario import Period, Scenario, load_scenario

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
            f"  source: {{pilot: {_yaml_text(pilot.source)}}}  # the report says the uplifts were calibrated from this pilot",
            f"  spend_uplift: {normal(c.spend_per_visit)}",
            f"  visit_uplift: {normal(c.visits)}",
            "",
        ]
    )


def _yaml_text(text: str) -> str:
    """Text as a YAML double-quoted scalar (JSON's escapes are YAML's; every character outside ASCII escaped)."""
    return json.dumps(str(text), ensure_ascii=True)


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
@click.argument("pilot_file", metavar="[PILOT.yaml]", type=click.Path(dir_okay=False), required=False)
@click.option("--ledger", "ledger", type=click.Path(dir_okay=False), help="instead of a pilot: a running program's ledger (Parquet or CSV) to measure redemption from")
@click.option("--transactions", "transactions", type=click.Path(dir_okay=False), help="with --ledger: the transactions the ledger was made from (they give the visits)")
@click.option("--customers", "customers", type=click.Path(dir_okay=False), help="with --ledger: the customers file that goes with the transactions")
@click.option("--scenario", "scenario", type=click.Path(dir_okay=False), help="with --ledger: a scenario whose columns, timestamp_format, period and program to use")
@click.option("--program", "program", type=click.Path(dir_okay=False), help="with --ledger: the program (its rewards' prices; default: the scenario's)")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="write the response: block (a pilot) or the redemption: block (a ledger) here, as YAML, for a scenario")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def calibrate_cmd(pilot_file, ledger, transactions, customers, scenario, program, out, fmt):
    """Measure spend and visit uplift from a pilot (treated vs control, before vs during): difference in differences.
    With --ledger (and --transactions) instead: how often members who can afford a reward redeem on a visit, and which they choose."""
    ledger_options = {"--transactions": transactions, "--customers": customers, "--scenario": scenario, "--program": program}
    if (pilot_file is None) == (ledger is None):
        _usage("give a pilot file (PILOT.yaml) or --ledger LEDGER --transactions TX, one of the two")
    if ledger is not None:
        if transactions is None:
            _usage("--ledger needs --transactions TX: the ledger has no postings for the visits on which nothing was redeemed or earned")
        _calibrate_redemption(ledger, transactions, customers, scenario, program, out, fmt)
        return
    given = [name for name, v in ledger_options.items() if v is not None]
    if given:
        _usage(f"{', '.join(given)} {'goes' if len(given) == 1 else 'go'} with --ledger; a pilot file names its own transactions and customers")
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


def _usage(message: str):
    raise click.UsageError(message)


# --- --ledger: redemption behaviour from a running program's ledger ------------------------------


def run_ledger(ledger, transactions, customers=None, scenario: Scenario | None = None, program=None) -> tuple[redemption_calibration.Estimate, io.LoadResult, bool]:
    """The redemption estimate of a ledger, the transactions as loaded, and whether the prices are
    the program's (True) or the ledger's own redemptions' (False)."""
    sc = scenario or Scenario()
    program = program if program is not None else sc.program
    catalog = None
    if program is not None:
        from simulator.api import load_program

        catalog = redemption_calibration.catalog_of(load_program(program))
    book = redemption_calibration.load_ledger(ledger)
    tx = io.load_transactions(transactions, sc.columns, period=sc.period, timestamp_format=sc.timestamp_format, customers=customers)
    if tx.rows_used == 0:
        raise io.DataError(tx.report() + f"\n{transactions}: error: no usable transaction rows")
    est = redemption_calibration.estimate(book, tx.frame, catalog, source=str(ledger), tx_source=tx.source)
    return est, tx, catalog is not None


def _share(p: redemption_calibration.Proportion) -> str:
    return f"{p.estimate:.{DECIMALS}f}"


def redemption_block(e: redemption_calibration.Estimate, ledger_name: str, ledger_path: str | None = None) -> str:
    """The YAML `redemption:` block: the overall probability and the best-fitting choice; the per-tier
    probabilities and the choice shares as comments (a scenario holds one probability)."""
    o = e.overall
    told = sum(e.choice_counts.values())
    lines = [
        f"# Written by `loyalty calibrate --ledger {ledger_name}`: {o.redemptions:,} redemptions on {o.visits:,} visits whose balance afforded a reward",
        f"# ({o.members:,} members); 95% interval {o.low:.4f} to {o.high:.4f} (Wilson, visits clustered by member).",
    ]
    if e.by_tier:
        lines.append("# By tier (a scenario holds one probability; this is the overall one): " + ", ".join(f"{t} {p.estimate:.4f} ({p.low:.4f} to {p.high:.4f})" for t, p in e.by_tier.items()))
    if told:
        c = e.choice_counts
        lines.append(
            f"# choice: {e.choice} fits best (likelihood, AIC); of {told:,} redemptions with two or more rewards affordable, "
            f"{c['cheapest'] / told:.1%} cheapest, {c['dearest'] / told:.1%} dearest, {c['other'] / told:.1%} other."
        )
    else:
        lines.append("# choice: no redemption had two or more known rewards affordable, so the choice cannot be told; cheapest (the default) is written.")
    lines += [
        "redemption:",
        f"  source: {{ledger: {_yaml_text(ledger_path or ledger_name)}}}  # the report says the block was calibrated from this ledger",
        f"  probability: {_share(o)}",
        f"  choice: {e.choice}",
        "",
    ]
    return "\n".join(lines)


def _pc(x: float) -> str:
    return f"{x * 100:.1f}%" if math.isfinite(x) else "n/a"


def redemption_text(e: redemption_calibration.Estimate, ledger: str, tx: io.LoadResult, from_program: bool) -> str:
    o = e.overall
    prices = ", ".join(f"{name} {pts:,}" for name, pts in e.prices.items())
    lines = [
        f"{ledger}: {e.members:,} members, {e.redemptions:,} redemptions ({e.redemptions_off_visit:,} at no visit's time: not counted)",
        f"rewards by points ({'the program' if from_program else 'their redemptions in the ledger; give --program for every reward'}): {prices}",
        f"{tx.source}: {tx.rows_used:,} rows used; {e.visits:,} visits (purchase baskets) in the ledger's span, {e.visits_affordable:,} of them "
        f"affordable (a balance of {min(e.prices.values()):,} points or more after the visit's own postings), {e.visits_outside:,} outside the span (not used)",
        "",
        "redemption on an affordable visit (95% interval: Wilson on the effective number of visits, visits clustered by member):",
        f"  {'':14}{'share':>7}  {'95% interval':<18}{'redemptions':>12}{'visits':>10}{'members':>9}{'design effect':>15}",
    ]
    rows = [("all", o)] + [(f"tier {t}", p) for t, p in e.by_tier.items()]
    for name, p in rows:
        lines.append(
            f"  {name:14}{_pc(p.estimate):>7}  {_pc(p.low) + ' to ' + _pc(p.high):<18}{p.redemptions:>12,}{p.visits:>10,}{p.members:>9,}{p.design_effect:>15.2f}"
        )
    if e.by_tier:
        lines.append("  (a scenario holds one probability: the block written is the overall one)")
    lines.append("")
    told = sum(e.choice_counts.values())
    c = e.choice_counts
    if told:
        lines.append(
            f"choice among affordable rewards ({told:,} redemptions with two or more affordable, {e.single_choice:,} with one only): "
            f"cheapest {c['cheapest'] / told:.1%}, dearest {c['dearest'] / told:.1%}, other {c['other'] / told:.1%}"
        )
        lines.append(f"  {'policy':10}{'log-likelihood':>16}{'AIC':>12}{'unexplained':>13}")
        for name in redemption_calibration.CHOICES:
            lines.append(f"  {name:10}{e.log_likelihood[name]:>16,.1f}{e.aic[name]:>12,.1f}{_pc(e.tremble[name]) if name in e.tremble else '':>13}")
        lines.append(f"  best fit: {e.choice}")
    else:
        lines.append(f"choice: none of the {e.single_choice:,} redemptions had two or more known rewards affordable, so the choice cannot be told (cheapest, the default, is written)")
    if e.redemptions_unaffordable:
        lines.append(
            f"note: {e.redemptions_unaffordable:,} redemptions were on visits whose balance, summed from the ledger, was below the cheapest reward "
            "(a ledger that starts after the program did misses earlier points); they count as affordable visits"
        )
    for reward, n in e.price_changes.items():
        lines.append(f"note: {n:,} redemptions of {reward} took another number of points than {e.prices[reward]:,}")
    return "\n".join(lines)


def redemption_json(e: redemption_calibration.Estimate, ledger: str, tx: io.LoadResult, from_program: bool) -> str:
    def prop(p: redemption_calibration.Proportion) -> dict:
        return {"probability": p.estimate, "probability_95": [p.low, p.high], "redemptions": p.redemptions, "visits": p.visits, "members": p.members, "design_effect": p.design_effect}

    doc = {
        "ledger": ledger,
        "transactions": tx.source,
        "rows": {"read": tx.rows_read, "used": tx.rows_used, "rejected": tx.rows_rejected, "outside_period": tx.rows_outside_period},
        "members": e.members,
        "redemptions": {"total": e.redemptions, "off_visit": e.redemptions_off_visit, "unaffordable": e.redemptions_unaffordable},
        "prices": {"from": "program" if from_program else "ledger", "points": e.prices, "other_price_redemptions": e.price_changes},
        "visits": {"in_span": e.visits, "affordable": e.visits_affordable, "outside_span": e.visits_outside},
        "overall": prop(e.overall),
        "by_tier": {t: prop(p) for t, p in e.by_tier.items()},
        "choice": {
            "best": e.choice,
            "counts": e.choice_counts,
            "one_affordable": e.single_choice,
            "log_likelihood": e.log_likelihood,
            "aic": e.aic,
            "unexplained": e.tremble,
        },
        "redemption": {"probability": round(e.overall.estimate, DECIMALS), "choice": e.choice},
    }
    return json.dumps(_finite(doc), indent=2)


def _calibrate_redemption(ledger, transactions, customers, scenario, program, out, fmt):
    sc = None
    if scenario is not None:
        try:
            sc = load_scenario(scenario)
        except LoyaltyError as exc:
            _fail(exc, 1)
    inputs = {"ledger": ledger, "transactions": transactions, "customers": customers, "scenario": scenario, "program": program or (sc.program if sc else None)}
    try:
        refuse_input_as_output({"--out": out}, {k: v for k, v in inputs.items() if v is not None})
    except LoyaltyError as exc:
        _fail(exc, 2)  # a usage mistake: nothing was read or written
    try:
        est, tx, from_program = run_ledger(ledger, transactions, customers, sc, program)
    except LoyaltyError as exc:
        _fail(exc, 1)
    if tx.rows_rejected:
        click.echo(visible(tx.report()), err=True)
    click.echo(visible(redemption_json(est, ledger, tx, from_program) if fmt == "json" else redemption_text(est, ledger, tx, from_program)))
    if out is not None:
        try:
            atomic_write_bytes(out, redemption_block(est, Path(ledger).name, str(ledger)).encode("utf-8"))
        except OSError as exc:
            click.echo(f"{out}: error: cannot write: {exc}", err=True)
            sys.exit(2)
        if fmt == "text":
            click.echo(f"redemption block written to {out}")


commands = [calibrate_cmd]
