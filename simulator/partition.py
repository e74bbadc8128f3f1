"""Customer-partitioned Parquet datasets: `loyalty partition` writes one; the simulator reads one
(a folder, a glob or an fsspec URL of Parquet files) as it reads a single file.

A dataset is its Parquet files in name order, read one after another as if they were one file:
row numbers (in rejects) count on from file to file. `loyalty partition` writes each customer's
rows to exactly one file, `part-NNNNN.parquet`, chosen by a hash of the customer id
(`rng.customer_keys`, the same on every machine), each file sorted by customer then time with
same-time rows in input order. So every file is a set of whole customers: the Dask executor
(simulator.cluster) replays one per task.

The shuffle is pyarrow's dataset writer: the input is read in record batches, each row tagged with
its partition, and written hive-partitioned into a folder beside the output; then each partition,
one at a time, is sorted and written as one file. Memory is bounded by a record batch and by the
largest partition (choose `--partitions` so a partition fits in memory).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from rulelang.errors import DataError, LoyaltyError
from simulator import rng

PARQUET = (".parquet", ".pq")
GLOB_CHARS = ("*", "?", "[")
READ_ROWS = 250_000  # rows per record batch read from the input
PART = "_loyalty_partition"  # the column that routes rows while shuffling (not in the output)
SEQ = "_loyalty_row"  # each row's input position: same-time rows keep their input order
TIME = "_loyalty_time"  # a text time column read as date-times, to sort by


@dataclass(frozen=True)
class Dataset:
    """A transactions input that is a dataset (for summary.json's sources)."""

    spec: str


def local_folders(given: dict) -> dict[str, Path]:
    """The inputs that are datasets in a local folder, as Paths (an output may not be one)."""
    return {what: Path(v.spec) for what, v in given.items() if isinstance(v, Dataset) and Path(v.spec).is_dir()}


def is_url(spec) -> bool:
    return isinstance(spec, str) and "://" in spec


def is_dataset(spec) -> bool:
    """Whether `spec` names a dataset (a folder, a glob or a URL) rather than one local file."""
    if not isinstance(spec, str | Path):
        return False
    s = str(spec)
    if is_url(s):
        return True
    p = Path(s)
    if p.is_dir():
        return True
    return not p.exists() and any(ch in s for ch in GLOB_CHARS)


def files_of(spec) -> tuple[object, list[str]]:
    """(fsspec filesystem, the dataset's Parquet files in name order). Hidden files and those
    starting with `_` (`_SUCCESS`, `_metadata`) are not data."""
    import fsspec

    s = str(spec)
    try:
        fs, root = fsspec.core.url_to_fs(s)
        if any(ch in root for ch in GLOB_CHARS) and not fs.exists(root):
            paths = fs.glob(root)
        elif fs.isdir(root):
            paths = [p for p in fs.find(root) if p.lower().endswith(PARQUET)]
        elif fs.isfile(root):
            paths = [root]
        else:
            raise DataError(f"{s}: error: no such transactions file, folder or dataset")
    except (ValueError, ImportError, OSError) as exc:  # an unknown protocol, its package missing, a refused connection
        raise DataError(f"{s}: error: cannot read the dataset: {exc}") from None
    paths = sorted(p for p in paths if not Path(p).name.startswith((".", "_")))
    if not paths:
        raise DataError(f"{s}: error: no Parquet files (.parquet) in the dataset; write one with `loyalty partition HISTORY --out DATASET`")
    return fs, paths


def parquet_file(fs, path: str, **options) -> pq.ParquetFile:
    """A Parquet file of the dataset: memory-mapped when local, else opened through fsspec."""
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        return pq.ParquetFile(path, memory_map=True, **options)
    return pq.ParquetFile(fs.open(path, "rb"), **options)


def rows_of(spec) -> int:
    """Rows of every file of the dataset (from the files' footers)."""
    fs, paths = files_of(spec)
    try:
        return sum(parquet_file(fs, p).metadata.num_rows for p in paths)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{spec}: error: cannot read the dataset: {exc}") from None


def schema_of(spec) -> pa.Schema:
    fs, paths = files_of(spec)
    return parquet_file(fs, paths[0]).schema_arrow


def tables(spec, wanted: set[str] | None, size: int, plain: frozenset = frozenset(), into: list | None = None) -> Iterator[pa.Table]:
    """The dataset's record batches, file after file (columns `wanted`, None = all), text
    dictionary-encoded as `io.read_table` reads it but for the columns in `plain`. `into`, when
    given, gets each batch's file number as the batch is read."""
    from simulator import io

    fs, paths = files_of(spec)
    names = None
    for i, path in enumerate(paths):
        try:
            f = parquet_file(fs, path)
            schema = f.schema_arrow
            if names is None:
                io._refuse_repeated(schema.names, str(spec))
                names = schema.names
            elif sorted(schema.names) != sorted(names):
                raise DataError(f"{path}: error: the dataset's files have different columns ({', '.join(names)} in the first); write them alike")
            cols = [c for c in names if wanted is None or c in wanted]
            f = parquet_file(fs, path, read_dictionary=io.dictionary_columns(schema, cols, plain))
            for batch in f.iter_batches(batch_size=size, columns=cols):
                if into is not None:
                    into.append(i)
                yield pa.Table.from_batches([batch])
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{path}: error: cannot read the transactions file: {exc}") from None


def read(spec, wanted: set[str] | None, plain: frozenset = frozenset()) -> pa.Table:
    """The whole dataset as one table (its files one after another)."""
    pieces = list(tables(spec, wanted, 1 << 62, plain))
    try:
        return pa.concat_tables(pieces, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{spec}: error: the dataset's files have columns of different types: {exc}") from None


def _input_batches(source: str, size: int) -> Iterator[pa.RecordBatch]:
    """The input's record batches: a Parquet file or dataset as written, CSV cells as text (as
    `io.read_table` reads them: ids keep their leading zeros)."""
    name = source.lower()
    if is_dataset(source) or name.endswith(PARQUET):
        for table in tables(source, None, size) if is_dataset(source) else _file_tables(source, size):
            yield from table.to_batches()
        return
    if name.endswith((".csv", ".csv.gz", ".csv.bz2", ".txt", ".tsv")):
        parse = pa_csv.ParseOptions(delimiter="\t" if ".tsv" in name else ",")
        with pa_csv.open_csv(source, parse_options=parse, read_options=pa_csv.ReadOptions(block_size=1 << 24)) as reader:
            text = {n: pa.string() for n in reader.schema.names}
        convert = pa_csv.ConvertOptions(column_types=text, strings_can_be_null=False)
        with pa_csv.open_csv(source, parse_options=parse, convert_options=convert) as reader:
            yield from reader
        return
    raise DataError(f"{source}: error: unknown file type; expected .csv (optionally .gz), .parquet or a dataset of .parquet files")


def _file_tables(path: str, size: int) -> Iterator[pa.Table]:
    f = pq.ParquetFile(path, memory_map=True)
    for batch in f.iter_batches(batch_size=size):
        yield pa.Table.from_batches([batch])


def partition_of(ids: pa.Array | pa.ChunkedArray, partitions: int) -> np.ndarray:
    """Each row's partition: the customer id's stable key (`rng.customer_keys`) modulo `partitions`."""
    import pandas as pd

    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    if pa.types.is_dictionary(ids.type):
        ids = ids.cast(ids.type.value_type)
    from simulator import io

    values = pd.Index(ids.to_pandas(types_mapper=None)) if len(ids) else pd.Index([], dtype=object)
    # (Keys of the distinct ids only: a customer's rows share one.) An id is keyed as the
    # simulator reads it, text without edge spaces, so ` C1` and `C1` share a file as they share a customer.
    codes, distinct = pd.factorize(values)
    text = io._strip(io._text(pd.Series(distinct))) if len(distinct) else pd.Series([], dtype=object)
    keys = rng.customer_keys(text.to_numpy(dtype=object)) if len(distinct) else np.zeros(0, dtype=np.uint64)
    part = (keys % np.uint64(partitions)).astype(np.int32)
    return np.where(codes >= 0, part[np.maximum(codes, 0)], 0).astype(np.int32)


def _sorted(table: pa.Table, customer: str, time: str) -> pa.Table:
    """The rows by customer, then time (a date-time column, or text in ISO 8601; other text
    leaves the customer's rows in input order), then input order; without the helper columns."""
    keys = [(customer, "ascending")]
    t = table.schema.field(time).type if time in table.schema.names else None
    when = None
    if t is not None and (pa.types.is_timestamp(t) or pa.types.is_date(t)):
        when = table.column(time)
    elif t is not None and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        try:
            when = pc.cast(table.column(time), pa.timestamp("ns"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            when = None  # not ISO 8601 (a `timestamp_format` of the scenario's): input order
    if when is not None:
        table = table.append_column(TIME, when)
        keys.append((TIME, "ascending"))
    keys.append((SEQ, "ascending"))
    order = pc.sort_indices(table, sort_keys=keys)
    return table.take(order).drop_columns([c for c in (SEQ, TIME, PART) if c in table.column_names])


def write(source, out, partitions: int, customer: str = "customer_id", time: str = "timestamp") -> list[tuple[str, int]]:
    """Write `source` (CSV, Parquet or a dataset) as a dataset of `partitions` Parquet files in
    `out` (a folder or an fsspec URL), swapped in at once; returns each file's name and rows."""
    import fsspec
    import pyarrow.dataset as ds  # (only here: the simulator's imports stay as they were)

    if partitions < 1:
        raise LoyaltyError(f"--partitions: {partitions} is fewer than 1")
    out_s = str(out)
    _refuse_out(str(source), out_s)  # before any work
    fs, root = fsspec.core.url_to_fs(out_s)
    root = root.rstrip("/")
    parent, name = root.rsplit("/", 1) if "/" in root else (".", root)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.shuffle-", dir=parent if not is_url(out_s) or out_s.startswith("file://") else None))
    try:
        seq = 0

        def tagged() -> Iterator[pa.RecordBatch]:
            nonlocal seq
            for batch in _input_batches(str(source), READ_ROWS):
                if customer not in batch.schema.names:
                    raise DataError(f"{source}: error: no column `{customer}`; name the customer column with --customer-column")
                n = batch.num_rows
                parts = partition_of(batch.column(customer), partitions)
                batch = batch.append_column(SEQ, pa.array(np.arange(seq, seq + n, dtype=np.int64)))
                seq += n
                yield batch.append_column(PART, pa.array(parts))

        first = next(iter_ := tagged(), None)
        if first is None:
            raise DataError(f"{source}: error: no rows to partition")

        def all_batches():
            yield first
            yield from iter_

        shuffled = work / "shuffled"
        # Rows reach each partition in input order (one writer thread, order kept).
        ds.write_dataset(
            all_batches(), shuffled, schema=first.schema, format="parquet",
            partitioning=ds.partitioning(pa.schema([(PART, pa.int32())]), flavor="hive"),
            use_threads=False, preserve_order=True, existing_data_behavior="error",
            max_rows_per_group=1 << 20,
        )  # fmt: skip
        staged = work / "out"
        staged.mkdir()
        written = []
        for k in range(partitions):
            folder = shuffled / f"{PART}={k}"
            table = ds.dataset(folder, format="parquet").to_table() if folder.exists() else first.schema.empty_table()
            table = _sorted(table, customer, time)
            file = f"part-{k:05d}.parquet"
            pq.write_table(table, staged / file, compression="zstd", row_group_size=1 << 20)
            written.append((file, table.num_rows))
            del table
            shutil.rmtree(folder, ignore_errors=True)
        _swap_in(fs, staged, root)
        return written
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _swap_in(fs, staged: Path, root: str) -> None:
    """The staged files as the dataset `root`: renamed into place on a local disk (an old dataset
    is renamed aside first, removed after), uploaded to a folder beside it and moved otherwise."""
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        target = Path(root)
        old = target.parent / f".{target.name}.old-{staged.parent.name}"
        if target.exists():
            target.rename(old)
        staged.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        return
    aside = f"{root}.partial"
    if fs.exists(aside):
        fs.rm(aside, recursive=True)
    fs.put(str(staged) + "/", aside, recursive=True)
    if fs.exists(root):
        fs.rm(root, recursive=True)
    fs.mv(aside, root, recursive=True)


def _refuse_out(source: str, out: str) -> None:
    """The output may not be, hold or lie in the input; an existing output must be a dataset this
    command wrote (its part files only), which is replaced; anything else in it would be lost."""
    import fsspec

    from rulelang import refuse_input_as_output

    local = not is_url(out) or out.startswith("file://")
    if local and (not is_url(source) or source.startswith("file://")):
        out_p, src = Path(out.removeprefix("file://")), Path(source.removeprefix("file://"))
        refuse_input_as_output({"--out": out_p}, {"history": src})
        if out_p.resolve() != src.resolve() and src.resolve() in out_p.resolve().parents:
            raise LoyaltyError(f"{out}: error: --out lies inside the history {source}; writing there would change an input. Choose another --out path.")
    elif out.rstrip("/") == source.rstrip("/") or out.startswith(source.rstrip("/") + "/") or source.startswith(out.rstrip("/") + "/"):
        raise LoyaltyError(f"{out}: error: --out is, holds or lies in the history {source}; writing there would change an input. Choose another --out path.")
    fs, root = fsspec.core.url_to_fs(out)
    if fs.exists(root):
        if not fs.isdir(root):
            raise LoyaltyError(f"{out}: error: --out is a file; give a folder (new, or a dataset written by `loyalty partition`)")
        names = [Path(p).name for p in fs.ls(root, detail=False)]
        other = [n for n in names if not (n.startswith("part-") and n.endswith(".parquet"))]
        if other:
            raise LoyaltyError(
                f"{out}: error: --out holds files that `loyalty partition` did not write ({', '.join(sorted(other)[:5])}); "
                "they would be lost. Choose a new or empty folder."
            )


def _partition_command():
    import click

    @click.command("partition")
    @click.argument("history", metavar="HISTORY")
    @click.option("--out", "out", required=True, help="the dataset to write: a folder or an fsspec URL (file://, s3://, memory://)")
    @click.option("--partitions", type=click.IntRange(min=1, max=100_000), required=True, help="how many files (each customer's rows in one)")
    @click.option("--customer-column", default="customer_id", show_default=True, help="the input's column of customer ids")
    @click.option("--time-column", default="timestamp", show_default=True, help="the input's column of date-times (rows sorted by it within a customer)")
    def partition_cmd(history, out, partitions, customer_column, time_column):
        """Write HISTORY (CSV, Parquet or a dataset) as Parquet files hash-partitioned by customer,
        for `loyalty simulate --cluster` (each customer's rows in one file, sorted by time)."""
        from simulator.commands import _fail, plain

        if not is_dataset(history) and not Path(history).is_file():
            raise click.BadParameter(f"{history}: no such file, folder or dataset", param_hint="HISTORY")
        try:
            written = write(history, out, partitions, customer_column, time_column)
        except LoyaltyError as exc:
            _fail(exc)
        except OSError as exc:
            click.echo(plain(f"{out}: error: cannot write: {exc}"), err=True)
            raise SystemExit(2) from None
        rows = sum(n for _, n in written)
        sizes = [n for _, n in written]
        click.echo(plain(f"wrote {out}: {len(written)} files, {rows:,} rows (per file: {min(sizes):,} to {max(sizes):,})"))

    return partition_cmd


commands = [_partition_command()]


def describe(spec) -> dict:
    """summary.json's record of a dataset: its path (absolute when local), one sha256 over its
    files (each file's name and sha256, in order) and how many files it has."""
    import hashlib

    fs, paths = files_of(spec)
    whole = hashlib.sha256()
    try:
        for p in paths:
            h = hashlib.sha256()
            with fs.open(p, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            whole.update(f"{Path(p).name}\0{h.hexdigest()}\n".encode())
        digest = whole.hexdigest()
    except OSError:
        digest = None
    local = not is_url(str(spec)) and not any(ch in str(spec) for ch in GLOB_CHARS)
    path = str(Path(spec).resolve()) if local else str(spec)
    return {"path": path, "sha256": digest, "given": f"a dataset of {len(paths)} Parquet file{'s' if len(paths) != 1 else ''}"}
