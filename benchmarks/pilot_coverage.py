"""The synthetic-pilot coverage study of `loyalty calibrate` (simulator.calibration).

Generates `--pilots` synthetic pilots with a known injected lift (simulator.pilot_synthetic:
customers with their own visit rates and baskets, seasonality shared by both groups, treated
customers visiting (1 + visit lift) times as often and spending (1 + spend lift) times as much a
visit in the pilot weeks), estimates each as the command does, and prints how often the 95%
intervals cover the truth, the mean estimate against the truth, the mean standard error, how often
the placebo test rejects (it should about 5% of the time: the trends are parallel) and the naive
comparison's mean. `--heavy` picks the treated customers among the heavier buyers.

    python benchmarks/pilot_coverage.py --pilots 200
    python benchmarks/pilot_coverage.py --pilots 1000 --seed 7 --json
"""

from __future__ import annotations

import argparse
import json

from simulator.pilot_synthetic import coverage_study


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pilots", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--customers", type=int, default=400)
    ap.add_argument("--weeks", type=int, default=16)
    ap.add_argument("--pilot-weeks", type=int, default=8)
    ap.add_argument("--spend-lift", type=float, default=0.04, help="per visit")
    ap.add_argument("--visit-lift", type=float, default=0.03)
    ap.add_argument("--heavy", action="store_true", help="treat the heavier buyers more often")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    study = coverage_study(
        a.seed,
        a.pilots,
        customers=a.customers,
        weeks=a.weeks,
        pilot_weeks=a.pilot_weeks,
        spend_lift=a.spend_lift,
        visit_lift=a.visit_lift,
        heavy_selected=a.heavy,
    )
    out = {
        "pilots": study.pilots,
        "seed": a.seed,
        "design": {"customers": a.customers, "weeks": a.weeks, "pilot_weeks": a.pilot_weeks, "heavy_selected": a.heavy},
        "covered_95": study.covered,
        "truth": study.truth,
        "mean_estimate": study.mean_estimate,
        "mean_se": study.mean_se,
        "placebo_rejections": study.placebo_rejections,
        "naive_mean": study.naive_mean,
    }
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{study.pilots} synthetic pilots (seed {a.seed}): {a.customers} customers x {a.weeks} weeks, the last {a.pilot_weeks} the pilot"
              + (", heavier buyers treated more often" if a.heavy else ""))
        print(f"{'uplift':18}{'truth':>8}{'mean estimate':>15}{'mean se':>9}{'95% covers':>12}{'naive mean':>12}")
        for k in ("spend", "visits", "spend_per_visit"):
            naive = f"{study.naive_mean[k] * 100:+.2f}%" if k in study.naive_mean else ""
            print(f"{k:18}{study.truth[k] * 100:>+7.2f}%{study.mean_estimate[k] * 100:>+14.2f}%{study.mean_se[k] * 100:>8.2f}%{study.covered[k] * 100:>11.1f}%{naive:>12}")
        print(f"placebo test rejected at 5% in {study.placebo_rejections} of {study.pilots} ({study.placebo_rejections / study.pilots:.1%})")
    return out


if __name__ == "__main__":
    main()
