"""A horizon's speed: `python benchmarks/horizon.py --transactions DIR [--months 24] [--acquisition K] [--json]`.

One path of `simulator.simulate` over the benchmark history (benchmarks/generate.py's Parquet
files in DIR) with `horizon: N months`, under benchmarks/run.py's scenario, as benchmarks/run.py
measures a path: after a warm-up on a tiny history (numba's JIT not timed), on two cores, from
the files to the summary figures. The figure is simulated transactions per second of the path:
the history's rows and the forecast's rows together (run 0's forecast, counted apart, untimed),
over the whole one-run simulation and over its path alone (`montecarlo.run_all`, timed within the
simulation, as is the models' fit, made once per simulation whatever the number of runs).
New customers join at the history's own rate unless `--acquisition K` gives one (0: none); their
rows count among the forecast's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from simulator import memory  # noqa: E402

memory.before_numpy()  # as `loyalty simulate` runs (simulator.memory)

import run as bench  # noqa: E402


def _scenario(months: int, per_month: float | None = None):
    from simulator.scenario import Scenario

    acquired = {} if per_month is None else {"acquisition": {"per_month": per_month}}
    return Scenario.from_dict({**bench.SCENARIO, "runs": 1, "horizon": f"{months} months", **acquired})


def measure(directory: Path, months: int, per_month: float | None = None) -> dict:
    import pandas as pd

    from simulator import acquisition, horizon, io, metrics, montecarlo, simulate
    from simulator.history import prepare
    from simulator.sample_data import generate as sample
    from simulator.sample_data import write

    tx = next(directory.glob("transactions*.parquet"))
    cu = next(directory.glob("customers*.parquet"))
    bench._warm_up()  # the path's own JIT; then the forecast's, on a history with repeat buyers to fit
    with tempfile.TemporaryDirectory() as tmp:
        wtx, wcu = write(*sample(600, 12, 1), tmp, "parquet")
        simulate(bench.PROGRAM, wtx, wcu, _scenario(months, per_month), workers=2, tune_memory=True)
    sc = _scenario(months, per_month)
    # The fit (once per simulation) and the paths (run_all) timed within the simulation itself.
    spent = {}

    def timed(name, fn):
        def call(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = time.perf_counter() - t

        return call

    fit_models, fit, run_all = horizon.fit_models, horizon.fit, montecarlo.run_all
    horizon.fit_models, horizon.fit, montecarlo.run_all = timed("models", fit_models), timed("fit", fit), timed("paths", run_all)
    try:
        t0 = time.perf_counter()
        result = simulate(bench.PROGRAM, tx, cu, sc, workers=2, tune_memory=True)
        elapsed = time.perf_counter() - t0
    finally:
        horizon.fit_models, horizon.fit, montecarlo.run_all = fit_models, fit, run_all
    # The forecast's rows of run 0, drawn again as the path drew them (counter-based: the same rows).
    load = io.load_transactions(tx, currency_decimals=2, period=sc.period)
    h = prepare(load.frame, 2)
    hz = horizon.fit(h, months, 1, sc.seed)
    months_index = metrics.month_index(pd.Timestamp(sc.period.start), hz.end)
    future = horizon.draw(hz, h, months_index, sc.seed, 0).rows
    acq = acquisition.fit(h, hz, sc.acquisition, 1, sc.seed)
    e = sc.enrollment
    new = acquisition.draw(acq, h, months_index, e.share, e.pick, sc.seed, 0) if acq.capacity else None
    new_rows = 0 if new is None else int((~new.rows["_enroll"].to_numpy()).sum())
    history_rows = int(result.summary["rows_used"]["mean"])
    rows = history_rows + len(future) + new_rows
    return {
        "history_rows": history_rows,
        "forecast_rows": len(future),
        "new_customers": int(acq.totals[0]),
        "new_customer_rows": new_rows,
        "horizon_months": months,
        "simulate_s": elapsed,
        "txn_per_s": rows / elapsed,
        # The fit is made once per simulation, whatever the runs; the path's own time is run_all's.
        # The models' fit runs beside the engine's base and the history's second stage, then the
        # baskets and seasonality are read.
        "fit_models_s": spent["models"],
        "fit_rest_s": spent["fit"],
        "path_s": spent["paths"],
        "path_txn_per_s": rows / spent["paths"],
        "points_expired": result.summary["points_expired"]["mean"],
        "peak_rss_mb": bench._peak_rss_mb(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--transactions", type=Path, help="a folder of Parquet transactions and customers (benchmarks/generate.py's, say)")
    where.add_argument("--sample", type=int, metavar="CUSTOMERS", help="a year of simulator.sample_data's history for this many customers (18,500: about 1.06M rows)")
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--acquisition", type=float, metavar="K", help="new customers per month (default: the history's own rate; 0: none)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.sample is not None:
        # benchmarks/generate.py's customers never leave, so BG/NBD has no dropout to fit (its
        # likelihood has no maximum); the bundled sample's generator has customers who churn.
        from simulator.sample_data import generate, write

        with tempfile.TemporaryDirectory() as tmp:
            write(*generate(a.sample, 12, 7), tmp, "parquet")
            out = measure(Path(tmp), a.months, a.acquisition)
    else:
        out = measure(a.transactions, a.months, a.acquisition)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:16} {v:,.1f}" if isinstance(v, float) else f"{k:16} {v:,}")
        print(f"{out['txn_per_s']:,.0f} simulated transactions/s for a one-run simulation, the fit included")
        print(("PASS" if out["path_txn_per_s"] >= 1e6 else "FAIL") + f": {out['path_txn_per_s']:,.0f} simulated transactions/s per path, the once-per-simulation fit apart (target 1,000,000)")


if __name__ == "__main__":
    main()
