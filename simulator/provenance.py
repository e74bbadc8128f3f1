"""What a simulation's first screen must say about itself, as data for summary.json, the report and
the terminal: the span replayed and forecast, where each assumption came from, and plain warnings
where a figure is not an estimate.

- **Span**: the history's first and last day and its calendar months, and the horizon's (or none).
- **Sources**: each assumption's value and where it came from: `scenario` (typed in the scenario
  file or mapping), `command line`, `default`, `pilot` or `ledger` (a block `loyalty calibrate`
  wrote records the file it measured in its `source:` key), `fitted` (a horizon's purchase and
  spend models, fitted to the history).
- **Warnings**: the revenue lift is 0 by assumption (no uplift given), so ROI shows the cost only;
  no point can expire between the first day and the last (the program's expiry is longer than the
  span, or points never expire), so breakage 0 is not an estimate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

import pandas as pd

from simulator.scenario import Normal, Response, Scenario

# How the report and the terminal name each source.
SOURCES = {
    "scenario": "typed in the scenario",
    "command line": "given on the command line",
    "default": "the default",
    "pilot": "calibrated from a pilot",
    "ledger": "calibrated from a ledger",
    "fitted": "fitted to the history",
}
# The keys a calibrated block sets (`loyalty calibrate` writes these and only these).
CALIBRATED_KEYS = {"response": ("spend_uplift", "visit_uplift"), "redemption": ("probability", "choice")}
# Scenario keys that say what was read, not what was assumed (summary.json's `sources` has the files).
NOT_ASSUMED = ("program", "transactions", "customers", "columns", "timestamp_format", "period")
# Values shown as signed percentages (shares of spend or visits).
UPLIFT_KEYS = ("response.spend_uplift", "response.visit_uplift")
Z95 = 1.959963984540054  # the normal's 97.5% point: a distribution's central 95%

LIFT_ZERO = "lift_assumed_zero"
NO_EXPIRY = "no_expiry_within_span"
# The figures each warning stands next to.
WARNED_FIGURES = {
    LIFT_ZERO: ("revenue_lift", "revenue_lift_pct", "incremental_margin", "net_benefit", "roi"),
    NO_EXPIRY: ("points_expired", "breakage_rate"),
}


def describe(sc: Scenario, expiry, first: pd.Timestamp, last: pd.Timestamp, horizon: Mapping | None, expired_any: bool) -> dict:
    """summary.json's `span`, `assumption_sources` and `warnings`.

    `expiry` is the program's (`model.expiry`: kind, n, unit); `first` and `last` the history's
    first and last moments (the period's days, or the data's); `horizon` the forecast's description
    (`Horizon.describe()`), None without one; `expired_any` whether any run expired any point."""
    s = span(first, last, horizon)
    end = dt.date.fromisoformat(s["forecast"]["last_day"] if s["forecast"] else s["history"]["last_day"])
    return {
        "span": s,
        "assumption_sources": assumption_sources(sc, horizon),
        "warnings": warnings(sc.response, expiry, first.date(), end, s["months"], expired_any),
    }


# --- the span -------------------------------------------------------------------------------------


def _months(first: dt.date, last: dt.date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month + 1


def span(first: pd.Timestamp, last: pd.Timestamp, horizon: Mapping | None) -> dict:
    """The history's days and calendar months, the forecast's (None: the history only), the months
    of both together, and a line for people."""
    h0, h1 = first.date(), last.date()
    history = {"first_day": h0.isoformat(), "last_day": h1.isoformat(), "months": _months(h0, h1)}
    text = f"history {h0} to {h1} ({_n(history['months'], 'month')})"
    forecast = None
    if horizon is not None:
        f0, f1 = dt.date.fromisoformat(horizon["first_day"]), dt.date.fromisoformat(horizon["last_day"])
        forecast = {"first_day": f0.isoformat(), "last_day": f1.isoformat(), "months": int(horizon["months"])}
        text += f" + forecast {_n(forecast['months'], 'month')} to {f1}"
    else:
        text += ", history only"
    months = _months(h0, dt.date.fromisoformat(forecast["last_day"]) if forecast else h1)
    return {"history": history, "forecast": forecast, "months": months, "text": text}


def _n(k: int, noun: str) -> str:
    return f"{k:,} {noun}{'' if k == 1 else 's'}"


# --- where each assumption came from --------------------------------------------------------------


def assumption_sources(sc: Scenario, horizon: Mapping | None = None) -> dict[str, dict]:
    """Per assumption (dotted key, in the scenario's order): `value` (as summary.json's
    `assumptions` holds it), `source` (a key of SOURCES), `detail` (the file it came from, or how it
    was fitted; None) and `shown` (the value for people)."""
    out: dict[str, dict] = {}
    calibrated = {"response": sc.response.source, "redemption": sc.redemption.source}
    for key, value in _assumed(sc.to_dict()):
        section, _, name = key.partition(".")
        block = calibrated.get(section)
        if sc.typed.get(key) == "command line":
            source, detail = "command line", None
        elif block is not None and name in CALIBRATED_KEYS[section]:
            source, detail = block.kind, block.file
        elif key in sc.typed:
            source, detail = "scenario", None if sc.source.startswith("<") else sc.source
        else:
            source, detail = "default", None
        out[key] = {"value": value, "source": source, "detail": detail, "shown": shown(key, value)}
    if horizon is not None:
        out.update(_fitted(horizon))
    return out


def _assumed(d: Mapping):
    """(dotted key, value) of every assumption: sections one level down, the files read left out."""
    for key, value in d.items():
        if key in NOT_ASSUMED:
            continue
        if isinstance(value, Mapping):
            for sub, v in value.items():
                if sub != "source":
                    yield f"{key}.{sub}", v
        else:
            yield key, value


def _fitted(horizon: Mapping) -> dict[str, dict]:
    """The horizon's models as assumptions: fitted, each run drawing its parameters."""
    how = "each Monte Carlo run draws its parameters from the fit's sampling distribution"
    out = {}
    for key, model, what in (("forecast.purchases", "bgnbd", "BG/NBD"), ("forecast.spend", "gamma_gamma", "Gamma-Gamma")):
        fit = horizon.get(model)
        if not fit:
            continue
        params = fit["parameters"]
        out[key] = {
            "value": {"model": what, **params},
            "source": "fitted",
            "detail": f"{what} fitted to {fit['customers']:,} customers' history; {how}",
            "shown": f"{what} " + ", ".join(f"{name} {v:.4g}" for name, v in params.items()),
        }
    joining = horizon.get("acquisition")
    if joining is not None and joining.get("source") == "the history":  # (a typed rate is the scenario's)
        out["acquisition.per_month"] = {
            "value": joining["per_month"],
            "source": "fitted",
            "detail": f"the history's rate of new customers: {joining['measured']}; each month's number is a Poisson draw",
            "shown": f"{joining['per_month']:.1f} new customers a month",
        }
    seasonal = horizon.get("seasonality")
    if seasonal is not None:
        out["forecast.seasonality"] = {
            "value": seasonal["index"],
            "source": "fitted" if seasonal["estimated"] else "default",
            "detail": "the history's month-of-year index" if seasonal["estimated"] else "flat: the history is too short to estimate it",
            "shown": "month-of-year index from the history" if seasonal["estimated"] else "flat",
        }
    return out


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def shown(key: str, value) -> str:
    """An assumption's value for people: uplifts as signed percentages, a distribution with its 95%."""
    if value is None:
        return "none"
    if isinstance(value, Mapping) and set(value) == {"normal"}:
        n = Normal(value["normal"]["mean"], value["normal"]["sd"])
        return f"{_pct(n.mean)} (95% {_pct(n.mean - Z95 * n.sd)} to {_pct(n.mean + Z95 * n.sd)}, drawn per run)"
    if key in UPLIFT_KEYS and isinstance(value, Mapping):
        return ", ".join(f"{tier} {_pct(v)}" for tier, v in value.items()) or "none"
    if key in UPLIFT_KEYS and isinstance(value, int | float):
        return _pct(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


# --- warnings -------------------------------------------------------------------------------------


def lift_assumed_zero(response: Response) -> bool:
    """No uplift of any kind: every member spends and visits as in the history."""
    spend = response.spend_uplift
    if isinstance(spend, Normal):
        spend_zero = spend.mean == 0 and spend.sd == 0
    elif isinstance(spend, Mapping):
        spend_zero = not any(spend.values())
    else:
        spend_zero = spend == 0
    visits = response.visit_uplift
    visits_zero = visits.mean == 0 and visits.sd == 0 if isinstance(visits, Normal) else visits == 0
    gradient_zero = response.goal_gradient is None or response.goal_gradient.uplift == 0
    return spend_zero and visits_zero and gradient_zero


def _after(expiry, day: dt.date) -> dt.date:
    n = int(expiry.n)
    stamp = pd.Timestamp(day) + {"days": pd.DateOffset(days=n), "months": pd.DateOffset(months=n), "years": pd.DateOffset(years=n)}[expiry.unit]
    return stamp.date()


# The first day on which a point earned on `day` can expire, by the program's kind of expiry (None: never).
EARLIEST_EXPIRY: dict[str, Callable[[object, dt.date], dt.date | None]] = {
    "never": lambda expiry, day: None,
    "after": _after,  # n units after it was earned
    "inactive": _after,  # n units after the last purchase: at the soonest, n units after the first
    "end_of_year": lambda expiry, day: dt.date(day.year, 12, 31),
    "end_of_next_year": lambda expiry, day: dt.date(day.year + 1, 12, 31),
}


def earliest_expiry(expiry, first: dt.date) -> dt.date | None:
    """The first day any point earned from `first` on can expire (None: points never expire)."""
    return EARLIEST_EXPIRY[expiry.kind](expiry, first)


def warnings(response: Response, expiry, first: dt.date, last: dt.date, months: int, expired_any: bool) -> list[dict]:
    """The figures that are not estimates, each with a plain message: `code`, `figures` (the
    summary's keys it stands next to), `message` and `detail` (why)."""
    out = []
    if lift_assumed_zero(response):
        out.append(
            {
                "code": LIFT_ZERO,
                "figures": list(WARNED_FIGURES[LIFT_ZERO]),
                "message": "lift assumed 0: ROI shows cost only",
                "detail": "no spend or visit uplift was given; measure one from a pilot with `loyalty calibrate`",
            }
        )
    # A kind this table does not know is not warned about: a warning must be true when shown.
    if not expired_any and expiry.kind in EARLIEST_EXPIRY:
        soonest = earliest_expiry(expiry, first)
        if soonest is None or soonest > last:
            why = "the program's points never expire" if soonest is None else f"the first can expire on {soonest}, after the last day, {last}"
            out.append(
                {
                    "code": NO_EXPIRY,
                    "figures": list(WARNED_FIGURES[NO_EXPIRY]),
                    "message": f"no points can expire within {months:,} months: breakage 0 is not an estimate",
                    "detail": why,
                }
            )
    return out


def notes_by_figure(summary: Mapping, shown: tuple[str, ...] | None = None, repeat: bool = False) -> dict[str, list[str]]:
    """summary.json's warnings by the figure they stand next to: the message at the first of its
    figures in `shown` (every figure when None) and `as above` at the others (the message again
    with `repeat`, where the figures do not stand in one column)."""
    out: dict[str, list[str]] = {}
    for w in summary.get("warnings", ()):
        figures = [f for f in (shown if shown is not None else w["figures"]) if f in w["figures"]]
        for i, figure in enumerate(figures):
            out.setdefault(figure, []).append(w["message"] if i == 0 or repeat else "as above")
    return out


def source_text(entry: Mapping) -> str:
    """An assumption's source for people: `calibrated from a pilot: coffee_pilot.yaml`."""
    text = SOURCES.get(entry["source"], entry["source"])
    return f"{text}: {entry['detail']}" if entry.get("detail") and entry["source"] in ("pilot", "ledger") else text
