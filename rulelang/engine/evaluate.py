"""Evaluate a program over transactions: validate at the boundary, then run one engine.

Engines are a table: each is a module with `run(model, batch, redemption) -> ledger DataFrame`.
"""

from __future__ import annotations

import importlib

import pandas as pd

from rulelang.engine.data import prepare
from rulelang.errors import LoyaltyError

ENGINES = {"reference": "rulelang.interpret", "compiled": "rulelang.engine.compile"}


def evaluate(program, transactions: pd.DataFrame, customers=None, until=None, engine: str = "compiled", redemption=None) -> pd.DataFrame:
    """The ledger of postings for `transactions` under `program` (see docs/semantics.md)."""
    if engine not in ENGINES:
        raise LoyaltyError(f"unknown engine `{engine}`; choose one of: {', '.join(ENGINES)}")
    model = program.model
    batch = prepare(transactions, model, customers, until)
    if redemption is not None:
        for col in (redemption.draw, redemption.choice_draw):
            if col not in batch.frame.columns:
                raise LoyaltyError(f"the redemption policy reads the draw column `{col}`, which the transactions do not have")
    return importlib.import_module(ENGINES[engine]).run(model, batch, redemption)
