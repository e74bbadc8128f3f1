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
