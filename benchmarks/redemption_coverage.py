"""The coverage study of `loyalty calibrate --ledger` (simulator.redemption_calibration).

Simulates the bundled sample through programs/coffee.loyalty under a known redemption policy
(`--probability`, `--choice`; `--share` of customers enrolled), once per seed from `--seed` on, takes
each run's ledger and the transactions, estimates the policy as the command does, and prints how
often the 95% interval covers the true probability (overall and per tier), the mean estimate, the
mean design effect, the estimates' spread against the standard error they report, and how often
the choice was recovered.

    python benchmarks/redemption_coverage.py --ledgers 30
    python benchmarks/redemption_coverage.py --ledgers 100 --choice random --json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import rulelang
from simulator import io, simulate
from simulator import redemption_calibration as rc
from simulator.sample_data import bundled_paths

PROGRAM = Path(__file__).resolve().parent.parent / "programs" / "coffee.loyalty"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ledgers", type=int, default=30, help="simulated ledgers, one per seed")
    ap.add_argument("--seed", type=int, default=100, help="the first seed")
    ap.add_argument("--probability", type=float, default=0.3)
    ap.add_argument("--choice", choices=rc.CHOICES, default="cheapest")
    ap.add_argument("--share", type=float, default=0.7, help="share of customers enrolled")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    tx_path, cu_path = bundled_paths()
    tx = io.load_transactions(str(tx_path)).frame
    catalog = rc.catalog_of(rulelang.load(PROGRAM))
    covered = tier_covered = tier_n = recovered = 0
    estimates, deffs, ses = [], [], []
    for seed in range(a.seed, a.seed + a.ledgers):
        scenario = {"runs": 1, "seed": seed, "enrollment": {"share": a.share}, "redemption": {"probability": a.probability, "choice": a.choice}}
        ledger = simulate(str(PROGRAM), str(tx_path), str(cu_path), scenario, workers=1).ledger
        e = rc.estimate(rc.load_ledger(ledger), tx, catalog)
        covered += e.overall.low <= a.probability <= e.overall.high
        recovered += e.choice == a.choice
        estimates.append(e.overall.estimate)
        deffs.append(e.overall.design_effect)
        ses.append((e.overall.high - e.overall.low) / (2 * rc.Z95))  # the interval's half-width in standard errors
        for p in e.by_tier.values():
            tier_n += 1
            tier_covered += p.low <= a.probability <= p.high
    out = {
        "ledgers": a.ledgers,
        "seed": a.seed,
        "truth": {"probability": a.probability, "choice": a.choice, "enrolled": a.share},
        "covered_95": covered / a.ledgers,
        "tiers_covered_95": tier_covered / tier_n if tier_n else None,
        "tier_intervals": tier_n,
        "mean_estimate": sum(estimates) / a.ledgers,
        "min_estimate": min(estimates),
        "max_estimate": max(estimates),
        "mean_design_effect": sum(deffs) / a.ledgers,
        # The estimates' spread over the ledgers against the standard error they report: about 1 when the intervals are right.
        "sd_over_mean_se": statistics.stdev(estimates) / (sum(ses) / a.ledgers) if a.ledgers > 1 else None,
        "choice_recovered": recovered / a.ledgers,
    }
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"{a.ledgers} simulated ledgers (seeds {a.seed} to {a.seed + a.ledgers - 1}), truth {a.probability} {a.choice}:\n"
            f"  the 95% interval covers the truth in {out['covered_95']:.1%} (per tier: {tier_covered} of {tier_n}, {out['tiers_covered_95']:.1%})\n"
            f"  mean estimate {out['mean_estimate']:.4f} (from {out['min_estimate']:.4f} to {out['max_estimate']:.4f}), mean design effect {out['mean_design_effect']:.2f}\n"
            f"  the estimates' standard deviation over the ledgers / their mean standard error: {out['sd_over_mean_se']:.3f}\n"
            f"  choice recovered in {out['choice_recovered']:.1%}"
        )
    return out


if __name__ == "__main__":
    main()
