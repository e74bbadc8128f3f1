"""`loyalty fit`: fit the purchase models to a history, print them, and write the model file.

The history is read by the one loader (`simulator.io`), with a scenario's column mapping and
timestamp format when one is given, and summarised per customer (`summary`); BG/NBD is fitted to
every customer's (x, t_x, T) and Gamma-Gamma to the repeat buyers' mean spend. The model file
(`--out`, JSON, written aside and swapped in) holds what a forecast needs to draw from the fits:
the parameters, their standard errors and the covariance of the log parameters, the
log-likelihoods, the counts, the calibration period and units, and the data file's sha256.
Exit codes: 0 fitted, 1 the data cannot be fitted (or has an error), 2 usage or I/O.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from rulelang import atomic_write_bytes, refuse_input_as_output, sha256_file
from rulelang.errors import LoyaltyError, visible
from simulator import io
from simulator.forecast import bgnbd, gamma_gamma, summary
from simulator.forecast.bgnbd import BGNBDFit
from simulator.forecast.gamma_gamma import GammaGammaFit

FORMAT = "loyalty-fit/1"  # the model file's format, checked when it is read back
NEXT_YEAR = 365.25 / summary.DAYS_PER_UNIT  # a year in the models' time unit


@dataclass(frozen=True)
class FittedModels:
    """Both fits and what they were fitted to."""

    bgnbd: BGNBDFit
    gamma_gamma: GammaGammaFit
    calibration: dict  # first_day, until, time_unit, days_per_unit, money_unit
    data: dict  # file, sha256
    summary: dict  # customers, repeat buyers and the plain figures `fit` prints

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "data": self.data,
            "calibration": self.calibration,
            "summary": self.summary,
            "bgnbd": self.bgnbd.to_dict(),
            "gamma_gamma": self.gamma_gamma.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def read_model(path: str | Path) -> FittedModels:
    """A model file written by `loyalty fit --out`; a LoyaltyError naming the file when it is not one."""
    p = Path(path)
    try:
        if not p.is_file():
            raise LoyaltyError(f"{p}: error: no such model file; write one with `loyalty fit HISTORY --out {p.name}`")
        if p.stat().st_size > 1_000_000:  # a model file is a few kilobytes
            raise LoyaltyError(f"{p}: error: too large for a model file (over 1 MB); give the file `loyalty fit --out` wrote")
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoyaltyError(f"{p}: error: cannot read the model file: {exc}") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise LoyaltyError(f"{p}: error: not a model file of `loyalty fit` (expected \"format\": \"{FORMAT}\"); fit the history again")
    try:
        return FittedModels(BGNBDFit.from_dict(d["bgnbd"]), GammaGammaFit.from_dict(d["gamma_gamma"]), d["calibration"], d["data"], d["summary"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LoyaltyError(f"{p}: error: the model file is incomplete or damaged ({type(exc).__name__}: {exc}); fit the history again") from None


def fit_history(frame, until: dt.date | None, decimals: int, source: str) -> tuple[FittedModels, summary.CustomerSummary, list[str]]:
    """Both models fitted to a loaded transactions frame, with notes on what was left out."""
    try:
        s = summary.summarize(frame, until, decimals, until_name="--until")
    except LoyaltyError as exc:
        raise LoyaltyError(f"{source}: error: {exc}") from None
    notes = []
    if s.other_rows:
        notes.append(f"{s.other_rows:,} row(s) are refunds or other events, not purchases: left out of both models")
    if s.rows_after_until:
        notes.append(f"{s.rows_after_until:,} purchase row(s) after {s.until} are outside the calibration period: left out")
    repeat = s.x > 0
    spend = s.mean_spend
    priced = repeat & (spend > 0)
    if (repeat & ~priced).any():
        notes.append(f"{int((repeat & ~priced).sum()):,} repeat buyer(s) spent nothing on their repeat purchases: left out of the spend model")
    try:
        purchases = bgnbd.fit(s.x, s.t_x, s.T)
        spending = gamma_gamma.fit(s.x[priced], spend[priced])
    except LoyaltyError as exc:
        raise LoyaltyError(f"{source}: error: {exc}") from None
    p = purchases.params
    models = FittedModels(
        bgnbd=purchases,
        gamma_gamma=spending,
        calibration={
            "first_day": s.first_day_of_data.isoformat(),
            "until": s.until.isoformat(),
            "time_unit": summary.TIME_UNIT,
            "days_per_unit": summary.DAYS_PER_UNIT,
            "money_unit": f"currency units ({decimals} decimals)",
        },
        data={"file": source},
        summary={
            "customers": s.customers,
            "repeat_buyers": int(repeat.sum()),
            "expected_purchases_per_customer_next_year": float(np.mean(bgnbd.conditional_expected_purchases(p, NEXT_YEAR, s.x, s.t_x, s.T))),
            "share_active": float(np.mean(bgnbd.probability_alive(p, s.x, s.t_x, s.T))),
            "expected_spend_per_purchase": float(np.mean(gamma_gamma.conditional_expected_spend(spending.params, s.x, spend))),
        },
    )
    return models, s, notes


def _table(title: str, fitted, names) -> list[str]:
    lines = [f"{title:<44}{'estimate':>12}{'std. error':>12}"]
    for name, value, se in zip(names, fitted.params, fitted.se, strict=True):
        lines.append(f"  {name:<42}{value:>12.4f}{se:>12.4f}")
    lines.append(f"  {'log-likelihood':<42}{fitted.log_likelihood:>12,.2f}")
    return lines


def render_text(models: FittedModels) -> str:
    c, s = models.calibration, models.summary
    first, until = dt.date.fromisoformat(c["first_day"]), dt.date.fromisoformat(c["until"])
    weeks = ((until - first).days + 1) / summary.DAYS_PER_UNIT
    lines = [
        f"{models.data['file']}: {s['customers']:,} customers, {s['repeat_buyers']:,} repeat buyers; "
        f"calibration {first} to {until} ({weeks:.1f} weeks); time in {c['time_unit']}, money in {c['money_unit']}",
        "",
        *_table("BG/NBD (purchases and dropout)", models.bgnbd, bgnbd.NAMES),
        "",
        *_table(f"Gamma-Gamma (spend, {models.gamma_gamma.customers:,} repeat buyers)", models.gamma_gamma, gamma_gamma.NAMES),
        "",
        "Summary",
        f"  {'expected purchases per customer, next 52 weeks':<54}{s['expected_purchases_per_customer_next_year']:>10.2f}",
        f"  {'share of customers still active':<54}{s['share_active']:>10.1%}",
        f"  {'expected spend per purchase (mean over customers)':<54}{s['expected_spend_per_purchase']:>10.2f}",
    ]
    return "\n".join(lines)


def _decimals_and_currency(sc) -> tuple[int, str | None]:
    """The money's decimals and currency: the scenario's program's, else 2 and any currency."""
    if sc is None or sc.program is None:
        return 2, None
    from simulator.api import load_program

    model = load_program(sc.program).model
    return model.decimals, getattr(model, "currency", None)


def _fail(message: str, code: int) -> None:
    click.echo(visible(message), err=True)
    sys.exit(code)


@click.command("fit")
@click.argument("history", type=click.Path(exists=True, dir_okay=False))
@click.option("--until", "until", metavar="DATE", help="the last day of the calibration period, YYYY-MM-DD (default: the data's last purchase day)")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="write the fitted models to this JSON file (model.json)")
@click.option("--scenario", "scenario", type=click.Path(exists=True, dir_okay=False), help="a scenario YAML: its column mapping, timestamp format and program's currency")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="text for people, json for scripts")
@click.option("--quiet", is_flag=True, help="no load summary on stderr")
def fit_cmd(history, until, out, scenario, fmt, quiet):
    """Fit the purchase models (BG/NBD, Gamma-Gamma) to a transactions history."""
    from simulator.scenario import load_scenario

    until_day = None
    if until is not None:
        try:
            until_day = dt.date.fromisoformat(until)
        except ValueError:
            raise click.BadParameter(f"{until!r} is not a date; write it like 1997-09-30", param_hint="--until") from None
    try:
        refuse_input_as_output({"--out": out}, {"transactions": history, "scenario": scenario})
    except LoyaltyError as exc:
        _fail(str(exc), 2)  # a usage problem: the command would overwrite what it reads
    try:
        sc = load_scenario(scenario) if scenario is not None else None
        decimals, currency = _decimals_and_currency(sc)
        loaded = io.load_transactions(
            history,
            columns=sc.columns if sc is not None else None,
            currency_decimals=decimals,
            timestamp_format=sc.timestamp_format if sc is not None else None,
            currency=currency,
        )
        if not quiet:
            click.echo(visible(loaded.report().replace("write them all with --rejects FILE", "`loyalty simulate ... --rejects FILE` writes them all")), err=True)
        models, _, notes = fit_history(loaded.frame, until_day, decimals, loaded.source)
    except LoyaltyError as exc:
        _fail(str(exc), 1)
    if not quiet:
        for note in notes:
            click.echo(visible(f"{history}: note: {note}"), err=True)
    models = FittedModels(models.bgnbd, models.gamma_gamma, models.calibration, {"file": str(history), "sha256": sha256_file(history)}, models.summary)
    if out is not None:
        try:
            atomic_write_bytes(out, models.to_json().encode("utf-8"))
        except OSError as exc:
            _fail(f"{out}: error: cannot write the model file: {exc}", 2)
    click.echo(visible(models.to_json().rstrip("\n") if fmt == "json" else render_text(models)))


commands = [fit_cmd]
