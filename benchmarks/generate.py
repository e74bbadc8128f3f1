"""Synthetic benchmark histories: `python benchmarks/generate.py --transactions N --out DIR`.

Writes `transactions_<N>.parquet` (exactly N rows) and `customers_<N>.parquet` for N/10 customers
(the default ratio), one year of a coffee chain (2026), built like `simulator.sample_data` (same
catalogue, channels, segments, hours) but vectorised with NumPy's PCG64 generator and written in
chunks of customers, one Parquet row group per chunk, so 10M rows need well under 1 GB.

Shape: heavy-tailed visits (lognormal weights; the top 20% of customers bring most rows),
multi-line baskets sharing a `transaction_id`, about 2% refund rows (a whole earlier basket or its
first line, carrying that basket's id), a few `review` events, categories including `pastry`,
channels, 120 stores, and customers with birthdays (8% unknown) and segments. Same arguments ->
same files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from simulator.sample_data import CATALOGUE, CHANNELS, CITIES, HOUR_WEIGHTS, HOURS, SEGMENTS  # noqa: E402

DATA_DIR = Path(__file__).resolve().parent / "data"
ROWS_PER_CUSTOMER = 10
CHUNK_CUSTOMERS = 100_000
STORES = 120
YEAR_START = np.datetime64("2026-01-01T00:00:00", "s")
DAYS = 365
NEW_BASKET = 0.55  # chance that a row starts a new basket: about 1.8 lines a basket
REFUND_SHARE = 0.02
REVIEW_SHARE = 0.005
BIRTHDAY_UNKNOWN = 0.08

TX_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("timestamp", pa.timestamp("ns")),
        ("transaction_id", pa.string()),
        ("event", pa.string()),
        ("amount", pa.float64()),
        ("category", pa.string()),
        ("sku", pa.string()),
        ("quantity", pa.int64()),
        ("channel", pa.string()),
        ("store", pa.string()),
    ]
)
CUSTOMER_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("birthday", pa.timestamp("ns")), ("segment", pa.string()), ("city", pa.string())]
)


def paths(transactions: int, out: Path = DATA_DIR) -> tuple[Path, Path]:
    """(transactions, customers) file paths for a history of `transactions` rows."""
    return Path(out) / f"transactions_{transactions}.parquet", Path(out) / f"customers_{transactions}.parquet"


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    text = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), text, "")


def _pick(rng: np.random.Generator, weights, n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return np.minimum(np.searchsorted(np.cumsum(w) / w.sum(), rng.random(n), side="right"), len(w) - 1)


def _dictionary(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    # Decoded to plain strings: the file holds what an export would (Parquet dictionary-encodes it anyway).
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(values)).cast(pa.string())


def chunk(first_customer: int, row0: int, customers: int, rows: int, seed: int, chunk_no: int) -> tuple[pa.Table, pa.Table]:
    """One chunk: `customers` customers numbered from `first_customer`, exactly `rows` rows
    numbered from `row0` (a basket's transaction id is its first row's number)."""
    rng = np.random.default_rng([seed, chunk_no])
    c_ids = first_customer + np.arange(customers)

    # Rows per customer: at least one each, the rest spread by heavy-tailed (lognormal) weights.
    weight = np.exp(1.3 * rng.standard_normal(customers))
    per = 1 + rng.multinomial(rows - customers, weight / weight.sum())
    cust = np.repeat(np.arange(customers), per)
    first_row = np.r_[True, cust[1:] != cust[:-1]]

    # Event kinds: a refund or review row stands alone and is never a customer's first row.
    special = ~first_row & (rng.random(rows) < REFUND_SHARE + REVIEW_SHARE)
    special &= ~np.r_[False, special[:-1]]
    is_refund = special & (rng.random(rows) < REFUND_SHARE / (REFUND_SHARE + REVIEW_SHARE))
    is_review = special & ~is_refund
    starts = first_row | special | np.r_[False, special[:-1]] | (rng.random(rows) < NEW_BASKET)
    basket = np.cumsum(starts) - 1
    b_first = np.flatnonzero(starts)
    b_cust = cust[b_first]
    nb = len(b_first)

    # Basket times: uniform over each customer's active stretch of the year, sorted per customer.
    join = np.where(rng.random(customers) < 0.3, np.floor(rng.random(customers) * DAYS * 0.8), 0)
    span = DAYS - join
    day = join[b_cust] + np.floor(rng.random(nb) * span[b_cust])
    secs = (day * 86400 + HOURS[_pick(rng, HOUR_WEIGHTS, nb)] * 3600 + np.floor(rng.random(nb) * 3600)).astype(np.int64)
    secs = secs[np.lexsort((secs, b_cust))]
    timestamp = (YEAR_START + secs.astype("timedelta64[s]")).astype("datetime64[ns]")[basket]

    # Lines: category, sku, quantity and price scaled by the customer's taste.
    cats = list(CATALOGUE)
    cat = _pick(rng, [CATALOGUE[k][0] for k in cats], rows)
    skus = tuple(s for k in cats for s, _ in CATALOGUE[k][1])
    prices = np.array([p for k in cats for _, p in CATALOGUE[k][1]])
    first_sku = np.cumsum([0] + [len(CATALOGUE[k][1]) for k in cats])
    n_skus = np.diff(first_sku)
    sku = first_sku[cat] + np.minimum(np.floor(rng.random(rows) * n_skus[cat]).astype(np.int64), n_skus[cat] - 1)
    uq = rng.random(rows)
    qty = np.where(cat == cats.index("fuel"), 1, 1 + (uq > 0.85).astype(np.int64) + (uq > 0.96))
    scale = np.exp(0.6 * rng.standard_normal(customers))
    amount = np.round(prices[sku] * qty * scale[cust] * np.exp(0.15 * rng.standard_normal(rows)), 2)

    # A refund returns the previous basket, whole (60%) or its first line.
    prev_first = b_first[np.maximum(basket - 1, 0)]
    totals = np.add.reduceat(amount, b_first)
    whole = rng.random(rows) < 0.6
    refund_amount = -np.where(whole, totals[np.maximum(basket - 1, 0)], amount[prev_first])
    amount = np.where(is_refund, np.round(refund_amount, 2), np.where(is_review, 0.0, amount))
    qty = np.where(is_review | (is_refund & whole), 0, np.where(is_refund, qty[prev_first], qty))
    cat = np.where(is_refund, cat[prev_first], cat)
    sku_text = np.where(is_refund & whole, len(skus), np.where(is_refund, sku[prev_first], sku))
    sku_text = np.where(is_review, len(skus), sku_text)

    app_share = np.where(rng.random(customers) < 0.35, 0.7, 0.05)
    uc = rng.random(nb)
    b_channel = np.where(uc < app_share[b_cust], 1, np.where(uc < app_share[b_cust] + 0.08, 2, 0))
    home = np.floor(rng.random(customers) * STORES).astype(np.int64)
    us = rng.random(nb)
    b_store = np.where(us < 0.8, home[b_cust], np.floor((us - 0.8) / 0.2 * STORES).astype(np.int64))
    channel = np.where(is_review, 1, b_channel[basket])
    store = np.where(is_refund, b_store[np.maximum(basket - 1, 0)], b_store[basket])

    # Transaction ids are unique across the file; a refund carries the refunded basket's.
    tx_number = row0 + 1 + np.where(is_refund, prev_first, b_first[basket])
    tx = _ids("T", tx_number, 10)
    tx = pc.if_else(pa.array(is_review), pa.scalar(""), tx)
    event = np.where(is_refund, 1, np.where(is_review, 2, 0))
    category = np.where(is_review, len(cats), cat)

    transactions = pa.Table.from_arrays(
        [
            _ids("C", c_ids[cust] + 1, 7),
            pa.array(timestamp),
            tx,
            _dictionary(("purchase", "refund", "review"), event),
            pa.array(amount),
            _dictionary(tuple(cats) + ("",), category),
            _dictionary(skus + ("",), sku_text),
            pa.array(qty.astype(np.int64)),
            _dictionary(CHANNELS, channel),
            _ids("S", store + 1, 3),
        ],
        schema=TX_SCHEMA,
    )
    age_days = np.floor((18 + rng.random(customers) * 52) * 365.25).astype(np.int64)
    birthday = (YEAR_START.astype("datetime64[D]") - age_days.astype("timedelta64[D]")).astype("datetime64[ns]")
    known = rng.random(customers) >= BIRTHDAY_UNKNOWN
    customers_table = pa.Table.from_arrays(
        [
            _ids("C", c_ids + 1, 7),
            pa.array(birthday, mask=~known),
            _dictionary(tuple(s for s, _ in SEGMENTS), _pick(rng, [w for _, w in SEGMENTS], customers)),
            _dictionary(tuple(s for s, _ in CITIES), _pick(rng, [w for _, w in CITIES], customers)),
        ],
        schema=CUSTOMER_SCHEMA,
    )
    return transactions, customers_table


def generate(transactions: int, out: Path = DATA_DIR, customers: int | None = None, seed: int = 2026) -> tuple[Path, Path]:
    """Write the history of `transactions` rows (and its customers) into `out`; return the paths."""
    if transactions < 1:
        raise ValueError("--transactions must be at least 1")
    customers = customers or max(1, transactions // ROWS_PER_CUSTOMER)
    if customers > transactions:
        raise ValueError("there cannot be more customers than transactions (each customer has at least one row)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tx_path, cu_path = paths(transactions, out)
    tmp_tx, tmp_cu = tx_path.with_suffix(".tmp"), cu_path.with_suffix(".tmp")
    chunks = -(-customers // CHUNK_CUSTOMERS)
    with pq.ParquetWriter(tmp_tx, TX_SCHEMA, compression="zstd") as tw, pq.ParquetWriter(tmp_cu, CUSTOMER_SCHEMA, compression="zstd") as cw:
        done_c = done_r = 0
        for k in range(chunks):
            n_c = min(CHUNK_CUSTOMERS, customers - done_c)
            # Rows in proportion to customers, the remainder in the last chunk: exactly `transactions`.
            n_r = transactions - done_r if k == chunks - 1 else transactions * (done_c + n_c) // customers - done_r
            t, c = chunk(done_c, done_r, n_c, n_r, seed, k)
            tw.write_table(t)
            cw.write_table(c)
            done_c += n_c
            done_r += n_r
    # Written under a temporary name first, so an interrupted run never leaves a half file behind.
    tmp_tx.replace(tx_path)
    tmp_cu.replace(cu_path)
    return tx_path, cu_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transactions", type=int, required=True, help="rows to write (e.g. 1000000)")
    ap.add_argument("--customers", type=int, default=None, help=f"customers (default: transactions / {ROWS_PER_CUSTOMER})")
    ap.add_argument("--out", type=Path, default=DATA_DIR, help="output folder (default: benchmarks/data/)")
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        tx, cu = generate(a.transactions, a.out, a.customers, a.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{tx} ({tx.stat().st_size / 1e6:.1f} MB), {cu} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
