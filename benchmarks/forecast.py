"""The purchase models' speed: fitting BG/NBD and Gamma-Gamma to CDNOW, and sampling futures.

    python benchmarks/forecast.py [--customers 1000000] [--months 24] [--json]

Fits both models to the CDNOW sample (2,357 customers) and to the full CDNOW history (23,570
customers; tests/data/cdnow), 39-week calibration, timing the summary and each fit (the best of
three, after a first run that compiles and warms up); then samples each of `--customers`
customers' purchases (and their values) over `--months` after calibration, the customers being
the sample's summaries repeated with their own keys. Figures are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from simulator import io, rng
from simulator.forecast import bgnbd, gamma_gamma, summary

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "cdnow"
UNTIL = dt.date(1997, 9, 30)


def cdnow_history(name: str) -> pd.DataFrame:
    """A raw CDNOW file as the loader's columns (customer_id, timestamp, amount)."""
    if name == "sample":
        raw = pd.read_csv(DATA / "CDNOW_sample.txt.gz", sep=r"\s+", header=None, names=["m", "customer_id", "date", "cds", "dollars"], dtype=str)
    else:
        raw = pd.read_csv(DATA / "CDNOW_master.txt.gz", sep=r"\s+", header=0, names=["customer_id", "date", "cds", "dollars"], dtype=str)
    day = pd.to_datetime(raw["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d")
    return pd.DataFrame({"customer_id": raw["customer_id"], "timestamp": day, "amount": raw["dollars"]})


def _best(fn, repeats: int = 3):
    fn()  # compiles and warms up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def fit_figures(name: str) -> dict:
    frame = io.load_transactions(cdnow_history(name)).frame
    t_summary, s = _best(lambda: summary.summarize(frame, UNTIL))
    t_bgnbd, f = _best(lambda: bgnbd.fit(s.x, s.t_x, s.T))
    priced = (s.x > 0) & (s.mean_spend > 0)
    t_gg, g = _best(lambda: gamma_gamma.fit(s.x[priced], s.mean_spend[priced]))
    return {
        "customers": s.customers,
        "summary_s": round(t_summary, 4),
        "bgnbd_fit_s": round(t_bgnbd, 4),
        "gamma_gamma_fit_s": round(t_gg, 4),
        "bgnbd": [round(v, 4) for v in f.params],
        "bgnbd_log_likelihood": round(f.log_likelihood, 2),
        "gamma_gamma": [round(v, 4) for v in g.params],
    }


def sampler_figures(customers: int, months: int) -> dict:
    s = summary.summarize(io.load_transactions(cdnow_history("sample")).frame, UNTIL)
    f = bgnbd.fit(s.x, s.t_x, s.T)
    priced = (s.x > 0) & (s.mean_spend > 0)
    g = gamma_gamma.fit(s.x[priced], s.mean_spend[priced])
    pick = np.arange(customers) % s.customers
    x, t_x, T, zbar = s.x[pick].astype(float), s.t_x[pick], s.T[pick], s.mean_spend[pick]
    keys = rng.customer_keys(np.arange(customers).astype(str).astype(object))
    horizon = months * 365.25 / 12 / summary.DAYS_PER_UNIT
    t_purchases, drawn = _best(lambda: bgnbd.sample_purchases(f.params, x, t_x, T, keys, horizon, seed=1))
    t_values, values = _best(lambda: gamma_gamma.sample_spend(g.params, x, zbar, keys, drawn.starts, seed=1))
    return {
        "customers": customers,
        "months": months,
        "purchases_sampled": int(values.shape[0]),
        "purchase_sampler_s": round(t_purchases, 4),
        "customers_per_s": round(customers / t_purchases),
        "spend_sampler_s": round(t_values, 4),
        "purchase_values_per_s": round(values.shape[0] / t_values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers to sample futures for")
    parser.add_argument("--months", type=int, default=24, help="the horizon after calibration, in months")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = {"sample": fit_figures("sample"), "master": fit_figures("master"), "sampler": sampler_figures(args.customers, args.months)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for name in ("sample", "master"):
        d = figures[name]
        print(f"CDNOW {name} ({d['customers']:,} customers): summary {d['summary_s']} s, BG/NBD fit {d['bgnbd_fit_s']} s, Gamma-Gamma fit {d['gamma_gamma_fit_s']} s")
    d = figures["sampler"]
    print(
        f"sampler: {d['customers']:,} customers x {d['months']} months in {d['purchase_sampler_s']} s ({d['customers_per_s']:,} customers/s), "
        f"{d['purchases_sampled']:,} purchase values in {d['spend_sampler_s']} s ({d['purchase_values_per_s']:,}/s)"
    )


if __name__ == "__main__":
    main()
