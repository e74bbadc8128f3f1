"""The CDNOW backtest study: how far off is the forecast of the customers' repeat purchases, split by split?

    python benchmarks/backtest.py [--runs 40] [--splits 7] [--data sample,master] [--json]

For the CDNOW sample (2,357 customers) and the full history (23,570; tests/data/cdnow), at `--splits`
month ends spread over the history (`simulator.backtest.choose_splits`: with 7, every second month
end from 1997-03-31 to 1998-03-31, 1997-09-30 among them), the holdout running to 1998-06-30:

- `loyalty backtest`'s forecast (simulate's horizon: BG/NBD with every run drawing its parameters)
  of the known customers' purchase days: the % error of its mean, and whether the actual fell
  inside its P5-P95;
- the plain BG/NBD: the point estimate's conditional expectations summed (FHL 2005 eq. 10);
- the same with T running to the midnight after the split (one day longer), the other convention;
- the same with the parameters' uncertainty: the mean over 200 parameter draws of that sum;
- two other models fitted to the same summaries by maximum likelihood (scipy), for the study only:
  the Pareto/NBD (Schmittlein, Morrison & Colombo 1987; likelihood and conditional expectation as
  in Fader, Hardie & Lee 2005, "RFM and CLV") and the MBG/NBD (Batislam, Denizel & Filiztekin
  2007: a customer may also leave right after the first purchase).

The figures are recorded in docs/simulator.md ("Backtesting a forecast").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np
from forecast import cdnow_history as history  # (benchmarks/, the script's own folder)
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from simulator import backtest, io
from simulator.forecast import bgnbd, summary
from simulator.scenario import Scenario

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "cdnow"
END = dt.date(1998, 6, 30)


# --- the Pareto/NBD and the MBG/NBD, for the study -----------------------------------------------


def _pareto_parts(p, x, t_x, T):
    """log of the "alive throughout" term and the ratio of the "left in (t_x, T]" term to it."""
    r, alpha, s, beta = p
    if alpha >= beta:
        big, z1, z2, second = alpha, (alpha - beta) / (alpha + t_x), (alpha - beta) / (alpha + T), s + 1.0
    else:
        big, z1, z2, second = beta, (beta - alpha) / (beta + t_x), (beta - alpha) / (beta + T), r + x
    l1 = np.log(hyp2f1(r + s + x, second, r + s + x + 1.0, z1)) - (r + s + x) * np.log(big + t_x)
    l2 = np.log(hyp2f1(r + s + x, second, r + s + x + 1.0, z2)) - (r + s + x) * np.log(big + T)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    return alive, s / (r + s + x) * (np.exp(l1 - alive) - np.exp(l2 - alive))


def pareto_nbd(x, t_x, T, weeks):
    """The Pareto/NBD's ML parameters (r, alpha, s, beta) and its forecast sum over `weeks`."""

    def nll(lp):
        r, alpha, s, beta = p = np.exp(lp)
        with np.errstate(all="ignore"):  # the simplex tries parameters whose terms overflow: refused below
            alive, ratio = _pareto_parts(p, x, t_x, T)
        v = -(gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + alive + np.log1p(ratio)).sum()
        return v if np.isfinite(v) else 1e20

    p = np.exp(minimize(nll, np.log([0.5, 10.0, 0.5, 10.0]), method="Nelder-Mead", options={"maxiter": 8000, "xatol": 1e-9, "fatol": 1e-9}).x)
    r, alpha, s, beta = p
    _, ratio = _pareto_parts(p, x, t_x, T)
    expected = (r + x) * (beta + T) / ((alpha + T) * (s - 1.0)) * (1.0 - ((beta + T) / (beta + T + weeks)) ** (s - 1.0)) / (1.0 + ratio)
    return p, float(expected.sum())


def mbg_nbd(x, t_x, T, weeks):
    """The MBG/NBD's ML parameters (r, alpha, a, b) and its forecast sum over `weeks`."""

    def nll(lp):
        r, alpha, a, b = np.exp(lp)
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        active = betaln(a, b + x + 1.0) - betaln(a, b) - (r + x) * np.log(alpha + T)
        left = betaln(a + 1.0, b + x) - betaln(a, b) - (r + x) * np.log(alpha + t_x)
        return -(common + np.logaddexp(active, left)).sum()

    p = np.exp(minimize(nll, np.zeros(4), method="Nelder-Mead", options={"maxiter": 8000, "xatol": 1e-9, "fatol": 1e-9}).x)
    r, alpha, a, b = p
    z = weeks / (alpha + T + weeks)
    hyp = ((alpha + T) / (alpha + T + weeks)) ** (r + x) * hyp2f1(r + x, b + x + 1.0, a + b + x, z)
    alive = 1.0 / (1.0 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x))
    return p, float(((a + b + x) / (a - 1.0) * (1.0 - hyp) * alive).sum())


# --- the study ----------------------------------------------------------------------------------


def study(name: str, runs: int, n_splits: int) -> list[dict]:
    frame = history(name)
    sc = Scenario(program=DATA / "cdnow.loyalty", runs=runs, seed=1)
    result = backtest.run(sc, n_splits, transactions=frame, workers=None)
    loaded = io.load_transactions(frame).frame
    rows = []
    for s in result.splits:
        c = s.known["purchases"]
        actual = c.actual_total
        summ = summary.summarize(loaded, s.split)
        x, t_x, T = summ.x.astype(np.float64), summ.t_x, summ.T
        fit = bgnbd.fit(x, t_x, T)
        drawn = bgnbd.draw_parameters(fit, 200, 1)
        with_uncertainty = np.mean([bgnbd.conditional_expected_purchases(p, s.weeks, x, t_x, T).sum() for p in drawn])
        # The other convention: each customer observed to the midnight after the split (T one day longer).
        late = bgnbd.fit(x, t_x, T + 1.0 / summary.DAYS_PER_UNIT)
        plain_t1 = bgnbd.conditional_expected_purchases(late.params, s.weeks, x, t_x, T + 1.0 / summary.DAYS_PER_UNIT).sum()
        _, pareto = pareto_nbd(x, t_x, T, s.weeks)
        _, mbg = mbg_nbd(x, t_x, T, s.weeks)
        p5, p50, p95 = backtest.quantiles(c.forecast_totals)

        def err(v, actual=actual):
            return round(100.0 * (v / actual - 1.0), 1)

        rows.append(
            {
                "data": name,
                "split": s.split.isoformat(),
                "weeks": round(s.weeks, 1),
                "actual": int(actual),
                "forecast_mean": round(float(c.forecast_totals.mean()), 1),
                "forecast_p5_p95": [p5, p95],
                "forecast_error_pct": err(c.forecast_totals.mean()),
                "inside_p5_p95": c.inside,
                "plain_bgnbd_error_pct": err(s.plain_bgnbd),
                "bgnbd_parameter_mean_error_pct": err(with_uncertainty),
                "plain_bgnbd_T_plus_a_day_error_pct": err(plain_t1),
                "pareto_nbd_error_pct": err(pareto),
                "mbg_nbd_error_pct": err(mbg),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--splits", type=int, default=7)
    ap.add_argument("--data", default="sample,master", help="sample, master or both (comma-separated)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [row for name in args.data.split(",") for row in study(name, args.runs, args.splits)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| data | split | weeks | actual | forecast (P5-P95) | error | inside | plain BG/NBD | same, T + 1 day | BG/NBD, mean over parameters | Pareto/NBD | MBG/NBD |")
    print("|---|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        lo, hi = r["forecast_p5_p95"]
        print(
            f"| {r['data']} | {r['split']} | {r['weeks']} | {r['actual']:,} | {r['forecast_mean']:,.0f} ({lo:,.0f}-{hi:,.0f}) | {r['forecast_error_pct']:+.1f}% | "
            f"{'yes' if r['inside_p5_p95'] else 'no'} | {r['plain_bgnbd_error_pct']:+.1f}% | {r['plain_bgnbd_T_plus_a_day_error_pct']:+.1f}% | "
            f"{r['bgnbd_parameter_mean_error_pct']:+.1f}% | "
            f"{r['pareto_nbd_error_pct']:+.1f}% | {r['mbg_nbd_error_pct']:+.1f}% |"
        )
    for name in args.data.split(","):
        mine = [r for r in rows if r["data"] == name]
        print(f"\n{name}: actual inside the forecast's P5-P95 in {sum(r['inside_p5_p95'] for r in mine)} of {len(mine)} splits; "
              f"mean |error| forecast {np.mean([abs(r['forecast_error_pct']) for r in mine]):.1f}%, plain {np.mean([abs(r['plain_bgnbd_error_pct']) for r in mine]):.1f}%")


if __name__ == "__main__":
    main()
