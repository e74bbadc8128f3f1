"""A horizon's speed: `python benchmarks/horizon.py --transactions DIR [--months 24] [--json]`.

One path of `simulator.simulate` over the benchmark history (benchmarks/generate.py's Parquet
files in DIR) with `horizon: N months`, under benchmarks/run.py's scenario, as benchmarks/run.py
measures a path: after a warm-up on a tiny history (numba's JIT not timed), on two cores, from
the files to the summary figures. The figure is simulated transactions per second of the path:
the history's rows and the forecast's rows together (run 0's forecast, counted apart, untimed).
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


def _scenario(months: int):
    from simulator.scenario import Scenario

    return Scenario.from_dict({**bench.SCENARIO, "runs": 1, "horizon": f"{months} months"})


def measure(directory: Path, months: int) -> dict:
    import generate
    import pandas as pd

    from simulator import horizon, io, metrics, simulate
    from simulator.history import prepare

    tx = next(directory.glob("transactions_*.parquet"))
    cu = next(directory.glob("customers_*.parquet"))
    with tempfile.TemporaryDirectory() as tmp:
        wtx, wcu = generate.generate(40_000, Path(tmp), customers=bench.WARM_CUSTOMERS, seed=1)
        simulate(bench.PROGRAM, wtx, wcu, _scenario(months), workers=2, tune_memory=True)
    sc = _scenario(months)
    t0 = time.perf_counter()
    result = simulate(bench.PROGRAM, tx, cu, sc, workers=2, tune_memory=True)
    elapsed = time.perf_counter() - t0
    # The forecast's rows of run 0, drawn again as the path drew them (counter-based: the same rows).
    load = io.load_transactions(tx, currency_decimals=2, period=sc.period)
    h = prepare(load.frame, 2)
    hz = horizon.fit(h, months, 1, sc.seed)
    future = horizon.draw(hz, h, metrics.month_index(pd.Timestamp(sc.period.start), hz.end), sc.seed, 0).rows
    history_rows = int(result.summary["rows_used"]["mean"])
    rows = history_rows + len(future)
    return {
        "history_rows": history_rows,
        "forecast_rows": len(future),
        "horizon_months": months,
        "simulate_s": elapsed,
        "txn_per_s": rows / elapsed,
        "points_expired": result.summary["points_expired"]["mean"],
        "peak_rss_mb": bench._peak_rss_mb(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transactions", type=Path, required=True, help="the folder of benchmarks/generate.py's Parquet files")
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    out = measure(a.transactions, a.months)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:16} {v:,.1f}" if isinstance(v, float) else f"{k:16} {v:,}")
        print(("PASS" if out["txn_per_s"] >= 1e6 else "FAIL") + f": {out['txn_per_s']:,.0f} simulated transactions/s per path (target 1,000,000)")


if __name__ == "__main__":
    main()
