"""Large Parquet histories in slices of customers, with results identical to one whole pass.

Everything a path does is per customer except the enrolment choice, and every draw is keyed by
(seed, run, customer, row), where the row is the row's rank among the used rows sorted by
(customer id, time). So the simulator can replay contiguous ranges of customers (in sorted id
order) one at a time and add up each path's exact integer sums (`measure.Partial`):

1. `plan` reads the file once in record batches, validates each batch (rejects and counts are
   row-local, so they add up; row numbers are shifted by the batch's start) and keeps only
   per-customer facts: used rows, whether the customer bought (may join), purchase spend, and
   the first and last used time stamps. Customers are then cut into slices of about `rows` used
   rows; a slice's rows rank after every row of the slices before it.
2. `slices` reads the file a second time in the same batches and routes each used row to its
   customer's slice (the first pass notes each row's slice: the ids are not read again); a slice
   is handed out once the last batch holding any of its rows is read.
   A file written customer by customer (benchmarks/generate.py) thus holds about one slice in
   memory; any other order still gives the same results, only with more rows held at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simulator import io, partition, segments
from simulator.enrollment import spend_per_customer
from simulator.history import History, prepare

AUTO_ROWS = 2_000_000  # Parquet histories with more rows are simulated in slices
SLICE_ROWS = 500_000  # used rows per slice (whole customers), by default
BATCH_ROWS = 250_000  # rows per record batch read (both passes read the same batches)
# What decides whether a row is used (the checks of io.load_transactions) and who may join.
PLAN_COLUMNS = {"customer_id", "timestamp", "amount", "event", "reward", "quantity", "currency"}


@dataclass(frozen=True)
class Plan:
    """The whole history's counts and per-customer facts, and its cut into slices."""

    load: io.LoadResult  # counts and rejects of the whole file (an empty frame)
    ids: np.ndarray  # every customer with a used row, sorted
    rows: np.ndarray  # used rows per customer
    can_join: np.ndarray  # has a purchase
    spend: np.ndarray  # purchase spend, minor units
    first: pd.Timestamp | None  # earliest and latest used time stamps
    last: pd.Timestamp | None
    bounds: np.ndarray  # slice s covers customers bounds[s] .. bounds[s + 1]
    last_batch: np.ndarray  # per slice: the last record batch with one of its rows
    row_slices: tuple = ()  # per record batch: each row's slice (-1: a row no slice uses)
    files: np.ndarray | None = None  # per customer: the dataset file holding its rows (-1: several)

    @property
    def slices(self) -> int:
        return len(self.bounds) - 1


def parquet_rows(transactions) -> int | None:
    """Rows of a Parquet transactions file or dataset (simulator.partition), or None for anything
    else (CSV, a DataFrame)."""
    if partition.is_dataset(transactions):
        return partition.rows_of(transactions)
    if isinstance(transactions, str | Path) and str(transactions).lower().endswith((".parquet", ".pq")) and Path(transactions).exists():
        try:
            return pq.ParquetFile(transactions).metadata.num_rows
        except (pa.ArrowInvalid, OSError):
            return None
    return None


def _tables(path: Path, wanted: set[str] | None, size: int, plain: frozenset = frozenset(), into: list | None = None) -> Iterator[pa.Table]:
    """The file's record batches (columns `wanted`, None = all), text dictionary-encoded as
    `io.read_table` reads it, except the columns named in `plain` (left as Arrow text). A dataset
    (simulator.partition) is read file after file; `into` gets each batch's file number."""
    if partition.is_dataset(path):
        yield from partition.tables(path, wanted, size, plain, into)
        return
    schema = pq.read_schema(path)
    cols = [c for c in schema.names if wanted is None or c in wanted]
    f = pq.ParquetFile(path, read_dictionary=io.dictionary_columns(schema, cols, plain), memory_map=True)  # as io.read_table
    for batch in f.iter_batches(batch_size=size, columns=cols):
        if into is not None:
            into.append(0)
        yield pa.Table.from_batches([batch])


def _in_order(pool: ThreadPoolExecutor, fn, items, ahead: int = 2) -> Iterator:
    """`fn` of each item on `pool`, results in the items' order, at most `ahead` + 1 items read
    ahead (`Executor.map` would read every item first: a whole file of batches)."""
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()


def _batches(path: Path, wanted: set[str] | None, size: int, into: list | None = None) -> Iterator[pd.DataFrame]:
    """The file's record batches as DataFrames read like `io.read_table` reads the whole file."""
    for table in _tables(path, wanted, size, into=into):
        yield io._to_pandas(table)


def plan(path, columns, decimals: int, period, keep: set[str] | None, rows: int, route: bool = True, **options) -> Plan:
    """Pass 1: validate the file batch by batch and cut its customers into slices of ~`rows` rows
    (`options`: the other keyword arguments of `io.load_transactions`). `route=False`: no second
    pass follows (simulator.cluster replays whole files), so each row's slice is not noted."""
    path = path if partition.is_dataset(path) else Path(path)  # (a URL is no Path)
    source = str(path)
    parts, rejects, rejected_rows, batch_ids, row_codes, notes = [], [], [], [], [], ()
    priors = []
    read = used = rejected = outside = 0
    amount_total = 0.0
    first = last = None
    bounds = None
    batch_files: list[int] = []  # each record batch's file of the dataset
    # The first pass reads only what the checks and the enrolment read (every column when the
    # rejected rows are written out); `set(mapped.values())` keeps the mapping's own checks.
    mapped = dict(columns or {})
    wanted = None if keep is None else PLAN_COLUMNS | {mapped[c] for c in PLAN_COLUMNS if c in mapped} | set(mapped.values())

    def facts_of(raw: pd.DataFrame):
        """One batch validated, with its customers' facts and each row's customer."""
        res = io.load_transactions(raw, columns, decimals, period, set() if keep is not None else None, source=source, **options)
        h = prepare(res.frame, decimals)
        m = h.rows["_m"].to_numpy()
        t = h.rows["timestamp"]
        span = (t.min(), t.max()) if len(m) else None
        part = pd.DataFrame(
            {
                "id": h.customer_ids,
                "rows": np.bincount(m, minlength=h.customers).astype(np.int64),
                "buys": np.bincount(m, weights=h.rows["_purchase"].to_numpy(), minlength=h.customers) > 0,
                "spend": spend_per_customer(h.rows, h.customers).astype(np.int64),
            }
        )
        # Each of the batch's rows: its customer among `h.customer_ids`, or -1 (rejected, outside).
        code = np.full(res.rows_read, -1, dtype=np.int32)
        code[res.frame["source_row"].to_numpy()[h.rows["_row"].to_numpy()] - 1] = m
        return replace(res, frame=res.frame.iloc[:0]), span, part, h.customer_ids, code

    # Batches are checked two at a time (Arrow, NumPy and numba release the GIL), in file order.
    with ThreadPoolExecutor(2) as pool:
        for res, span, part, ids_b, code in _in_order(pool, facts_of, _batches(path, wanted, BATCH_ROWS, batch_files)):
            rejects.append(res.rejects.assign(row=res.rejects["row"] + read))
            if res.rows_rejected and keep is None:
                rejected_rows.append(res.rejected_rows)
            read, used, rejected, outside = read + res.rows_read, used + res.rows_used, rejected + res.rows_rejected, outside + res.rows_outside_period
            amount_total += res.amount_total
            priors.append(res.prior)  # (the purchases before the period: simulator.segments)
            if amount_total > io.MAX_TOTAL_MINOR:  # each batch checks its own rows; the file's total is checked here
                raise io.amount_total_error(source, read, decimals)
            notes, bounds = res.notes, res.period
            if span is not None:
                first = span[0] if first is None else min(first, span[0])
                last = span[1] if last is None else max(last, span[1])
            parts.append(part)
            batch_ids.append(ids_b)
            row_codes.append(code)
    none = pd.DataFrame({"id": np.array([], dtype=object), "rows": np.zeros(0, np.int64), "buys": np.zeros(0, bool), "spend": np.zeros(0, np.int64)})
    facts = pd.concat([none, *parts], ignore_index=True).groupby("id", sort=False).agg({"rows": "sum", "buys": "any", "spend": "sum"})
    ids = facts.index.to_numpy(dtype=object)
    order = np.argsort(ids, kind="stable")  # the order of io's and history's sorts: Python's str order
    facts = facts.iloc[order]
    ids = ids[order]
    n_rows = facts["rows"].to_numpy(dtype=np.int64)
    start = np.cumsum(n_rows) - n_rows
    slice_of = start // max(int(rows), 1)
    cut = np.flatnonzero(np.r_[True, slice_of[1:] != slice_of[:-1]]) if len(ids) else np.zeros(0, dtype=np.int64)
    edges = np.r_[cut, len(ids)].astype(np.int64)
    slice_no = np.repeat(np.arange(len(cut)), np.diff(edges))
    index = pd.Index(ids)
    last_batch = np.full(len(cut), -1, dtype=np.int64)
    # Each row's slice, so that the second pass routes rows without reading their ids again.
    narrow = np.int16 if len(cut) < 2**15 else np.int32
    row_slices = []
    # Each customer's file (simulator.partition): the first and the last that hold its rows.
    file_lo = np.full(len(ids), np.iinfo(np.int64).max, dtype=np.int64)
    file_hi = np.full(len(ids), -1, dtype=np.int64)
    for b, bid in enumerate(batch_ids):
        code = row_codes[b]
        row_codes[b] = None  # freed as it goes
        at = index.get_indexer(bid) if len(bid) else np.zeros(0, dtype=np.int64)
        file_lo[at] = np.minimum(file_lo[at], batch_files[b])
        file_hi[at] = np.maximum(file_hi[at], batch_files[b])
        s = slice_no[at]
        last_batch[np.unique(s)] = b
        if route:
            row_slices.append(np.where(code >= 0, np.append(s, -1)[code], -1).astype(narrow))
    pa.default_memory_pool().release_unused()  # Arrow's pool would keep the batches' peak
    empty = pd.DataFrame({"row": pd.Series([], dtype="int64")})
    load = io.LoadResult(
        frame=pd.DataFrame(),
        rows_read=read,
        rows_used=used,
        rows_rejected=rejected,
        rows_outside_period=outside,
        rejects=pd.concat(rejects, ignore_index=True) if rejects else empty,
        source=source,
        period=bounds,
        notes=notes,
        rejected_rows=pd.concat(rejected_rows, ignore_index=True) if rejected_rows else None,
        prior=segments.Prior.joined([q for q in priors if q is not None]) if bounds is not None else None,
    )
    files = np.where(file_lo == file_hi, file_hi, -1)
    return Plan(load, ids, n_rows, facts["buys"].to_numpy(), facts["spend"].to_numpy(dtype=np.int64), first, last, edges, last_batch, tuple(row_slices), files)


def slices(path, p: Plan, columns, decimals: int, period, keep: set[str] | None, rows: int, until, **options) -> Iterator[tuple[int, History]]:
    """Pass 2: each slice's History (customers `p.bounds[s]` on), its `_row` ranks those of the whole file."""
    path = path if partition.is_dataset(path) else Path(path)  # (a URL is no Path)
    offsets = np.r_[0, np.cumsum(p.rows)][p.bounds]
    # A slice's rows are held as Arrow tables and joined in Arrow, then made a DataFrame once: pandas
    # would first unite the categories of every piece (a hash of each distinct text, per piece).
    # Transaction ids, nearly one per row, are read as Arrow text and stay so (`io.read_table`).
    held: dict[int, list[pa.Table]] = {}
    for b, table in enumerate(_tables(path, io._wanted(columns, keep), BATCH_ROWS, io.id_text_columns(columns))):
        s = p.row_slices[b]  # each row's slice, from the first pass (rows of no slice are not used)
        if len(s) != table.num_rows:
            raise AssertionError("the second pass read other batches than the first")
        for k in np.unique(s[s >= 0]):
            held.setdefault(int(k), []).append(table.take(np.flatnonzero(s == k)))
        for k in np.flatnonzero(p.last_batch == b):
            pieces = held.pop(int(k))
            frame = io._to_pandas(pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0])
            res = io.load_transactions(frame, columns, decimals, period, keep, source=str(path), **options)
            if res.rows_used != offsets[k + 1] - offsets[k]:
                raise AssertionError("a slice's used rows differ from the first pass")
            h = prepare(res.frame, decimals, until)
            h.rows["_row"] += offsets[k]
            yield int(k), h
