"""Small programs, data and helpers shared by the simulator's model/metrics/Monte Carlo/report tests."""

from __future__ import annotations

import importlib.util

import pandas as pd

import rulelang
from simulator.sample_data import generate

# The compiled engine when it is installed, else the reference interpreter (same ledger by contract).
ENGINE = "compiled" if importlib.util.find_spec("rulelang.engine.compile") else "reference"

PROGRAM_TEXT = """\
program "Test Club"
currency CNY
point_cost 0.01 CNY

tiers by spend over 365 days {
  Basic from 0
  Plus  from 300
}

earn base:       1 point per 1 CNY
earn plus_boost: 2x base when tier >= Plus
earn welcome:    50 points on enroll

expire after 3 months
round down

reward small: 100 points cost 2 CNY
reward big:   400 points cost 9 CNY funded 50% by acme
"""


def program(name: str = "Test Club"):
    return rulelang.loads(PROGRAM_TEXT.replace('"Test Club"', '"' + name.replace('"', "'") + '"'), "test.loyalty")


def sample(customers: int = 25, months: int = 6, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate(customers, months, seed)


def scenario(**over) -> dict:
    base = {
        "runs": 3,
        "seed": 7,
        "enrollment": {"share": 0.6, "pick": "random"},
        "redemption": {"probability": 0.5, "choice": "cheapest"},
        "response": {"spend_uplift": {"Basic": 0.02, "Plus": 0.05}, "visit_uplift": 0.1, "goal_gradient": {"within": 0.2, "uplift": 0.03}},
        "margin": 0.5,
    }
    base.update(over)
    return base


# A ledger written by hand with the transactions it came from, for `loyalty calibrate --ledger`.
# Counted by hand (the balance a visit can spend is the member's postings up to and including the
# visit, its own redemption added back; the cheapest reward is 300 points):
#   A (Green): 3-01 balance 200 (no), 3-02 350 (yes), 3-03 450 (yes, redeems coffee), 3-04 150
#     (no; the basket earned nothing, no posting), a refund claws 50 back, 3-05 350 (yes), and a
#     `redeem` row on its own on 3-06 (not on a visit: it prices coffee, it is not counted).
#   B (Gold): 3-01 2500 (yes), 3-02 2500 (yes, redeems the mug: both rewards affordable, the
#     dearest taken), 3-03 510 (yes; a capped posting moves nothing), 3-04 510 (yes), 3-10 0 (no:
#     the points expired at midnight).
#   C: visits, never a member (no postings): never affordable.
# So 7 affordable visits (A 3, B 4), 2 redemptions on them (A 1, B 1), one choice between two
# rewards (the dearest), one redemption off any visit.
REDEMPTION_CASE_AFFORDABLE = {"A": 3, "B": 4}
REDEMPTION_CASE_REDEEMED = {"A": 1, "B": 1}
REDEMPTION_CASE_PRICES = {"coffee": 300, "mug": 2000}


def redemption_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ledger, transactions) of the hand-counted case above, as a program's files would hold them."""
    tx = pd.DataFrame(
        [
            ("A", "2026-03-01 10:00", 20.0, "purchase", "a1", ""),
            ("A", "2026-03-01 10:00", 5.0, "purchase", "a1", ""),
            ("A", "2026-03-02 10:00", 15.0, "purchase", "a2", ""),
            ("A", "2026-03-03 10:00", 10.0, "purchase", "a3", ""),
            ("A", "2026-03-04 10:00", 0.5, "purchase", "a4", ""),
            ("A", "2026-03-04 11:00", -5.0, "refund", "a3", ""),
            ("A", "2026-03-05 10:00", 25.0, "purchase", "a5", ""),
            ("A", "2026-03-06 09:00", 0.0, "redeem", "", "coffee"),
            ("B", "2026-03-01 12:00", 250.0, "purchase", "b1", ""),
            ("B", "2026-03-02 12:00", 0.5, "purchase", "b2", ""),
            ("B", "2026-03-03 12:00", 1.0, "purchase", "b3", ""),
            ("B", "2026-03-04 12:00", 0.5, "purchase", "b4", ""),
            ("B", "2026-03-10 12:00", 0.5, "purchase", "b5", ""),
            ("C", "2026-03-02 08:00", 4.0, "purchase", "c1", ""),
            ("C", "2026-03-03 08:00", 4.0, "purchase", "c2", ""),
            ("C", "2026-03-04 08:00", 4.0, "purchase", "c3", ""),
        ],
        columns=["customer_id", "timestamp", "amount", "event", "transaction_id", "reward"],
    )
    ledger = pd.DataFrame(
        [
            ("A", "2026-03-01 10:00", "earn", 200, "", 0, "Green"),
            ("A", "2026-03-02 10:00", "earn", 150, "", 2, "Green"),
            ("A", "2026-03-03 10:00", "earn", 100, "", 3, "Green"),
            ("A", "2026-03-03 10:00", "redeem", 200, "coffee", 3, "Green"),
            ("A", "2026-03-03 10:00", "redeem", 100, "coffee", 3, "Green"),
            ("A", "2026-03-04 11:00", "clawback", 50, "", 5, "Green"),
            ("A", "2026-03-05 10:00", "earn", 250, "", 6, "Green"),
            ("A", "2026-03-06 09:00", "redeem", 100, "coffee", 7, "Green"),
            ("A", "2026-03-06 09:00", "redeem", 200, "coffee", 7, "Green"),
            ("B", "2026-03-01 12:00", "earn", 2500, "", 8, "Gold"),
            ("B", "2026-03-02 12:00", "redeem", 2000, "mug", 9, "Gold"),
            ("B", "2026-03-03 12:00", "earn", 10, "", 10, "Gold"),
            ("B", "2026-03-03 12:00", "capped", 40, "", 10, "Gold"),
            ("B", "2026-03-10 00:00", "expire", 500, "", -1, "Gold"),
            ("B", "2026-03-10 00:00", "expire", 10, "", -1, "Gold"),
        ],
        columns=["customer_id", "timestamp", "kind", "points", "reward", "row", "tier"],
    )
    ledger["timestamp"] = pd.to_datetime(ledger["timestamp"])
    return ledger, tx
