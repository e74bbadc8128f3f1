"""Write the example scenario's data: transactions.csv and customers.csv in the user's own column names.

The files are a small slice of the synthetic sample (`simulator.sample_data.generate`), with the
columns renamed as scenario.yaml maps them back (member_no, paid_at, total). Run from anywhere:
`python examples/make_data.py`; a test checks the committed files equal what this writes.
"""

from __future__ import annotations

from pathlib import Path

from simulator.sample_data import generate

HERE = Path(__file__).resolve().parent
GENERATION = {"customers": 40, "months": 12, "seed": 2026, "start": "2026-01-01"}
# Only what Bean Club reads, so the files stay small; the user's names for the required columns.
TRANSACTION_COLUMNS = {"customer_id": "member_no", "timestamp": "paid_at", "transaction_id": "transaction_id",
                       "event": "event", "amount": "total", "category": "category"}
CUSTOMER_COLUMNS = {"customer_id": "member_no", "birthday": "birthday", "segment": "segment"}


def write(out_dir: Path = HERE) -> tuple[Path, Path]:
    """Write transactions.csv and customers.csv into `out_dir`; returns their paths."""
    transactions, customers = generate(**GENERATION)
    tx_path, cu_path = out_dir / "transactions.csv", out_dir / "customers.csv"
    transactions = transactions[list(TRANSACTION_COLUMNS)].rename(columns=TRANSACTION_COLUMNS)
    customers = customers[list(CUSTOMER_COLUMNS)].rename(columns=CUSTOMER_COLUMNS)
    transactions.to_csv(tx_path, index=False, float_format="%.2f", date_format="%Y-%m-%d %H:%M:%S", lineterminator="\n")
    customers.to_csv(cu_path, index=False, date_format="%Y-%m-%d", lineterminator="\n")
    return tx_path, cu_path


if __name__ == "__main__":
    for path in write():
        print(path, f"{path.stat().st_size:,} bytes")
