"""Read transactions and customers (CSV, Parquet or a DataFrame), map columns, validate rows.

Every data row ends up in exactly one place: used, rejected (with its reason), or outside the
scenario's period, so `rows_read == rows_used + rows_rejected + rows_outside_period`. Rejected rows
are never dropped silently: `LoadResult.report()` names them and `write_rejects` saves them.
Row numbers count data rows from 1; the header line is not counted (row 1 is the file's line 2).
Everything is column-at-a-time.
"""

from __future__ import annotations

import datetime as dt
import difflib
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from numba import njit

from rulelang import atomic_write_bytes, formula_safe
from rulelang.engine import DATETIME_RANGE, FIRST_DATETIME, ISO_EXAMPLE, LAST_DATETIME, NAT, arrowtext, event_names, read_datetimes
from rulelang.errors import DataError, LoyaltyError
from simulator import segments
from simulator.history import grouped_in_time

REQUIRED = ("customer_id", "timestamp", "amount")
ROW_NOTE = "row numbers count data rows from 1; the header is not counted"

# Names a file often uses for a canonical column, for the "did you mean" of a missing one.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "customer_id": ("member_no", "member_id", "member", "customer", "customer_no", "cust_id", "client_id", "user_id", "card_no", "card_number", "account_id", "id"),
    "timestamp": ("paid_at", "datetime", "date_time", "date", "time", "created_at", "purchased_at", "order_time", "transaction_time", "ts"),
    "amount": ("total", "net_amount", "value", "sales", "spend", "revenue", "price", "sum"),
    "transaction_id": ("basket_id", "receipt_no", "receipt_id", "order_id", "ticket_id", "invoice_no", "tx_id"),
}


@dataclass(frozen=True)
class LoadResult:
    """Validated rows (`frame`), the counts, and the rejected rows with their reasons."""

    frame: pd.DataFrame
    rows_read: int
    rows_used: int
    rows_rejected: int
    rows_outside_period: int
    rejects: pd.DataFrame
    source: str = "<data>"
    period: tuple[dt.date, dt.date] | None = None
    notes: tuple[str, ...] = ()
    rejected_rows: pd.DataFrame = field(default=None, repr=False)
    amount_total: float = 0.0  # Σ |amount| of the used rows, in minor units (checked: MAX_TOTAL_MINOR)
    # The customers' purchases before the period (simulator.segments.Prior), from the valid rows
    # before its start; None without a period.
    prior: object = field(default=None, repr=False)

    def report(self) -> str:
        """A short summary: counts, then each reject reason with its first ten rows and count."""
        head = f"{self.source}: {self.rows_read:,} rows read: {self.rows_used:,} used, {self.rows_rejected:,} rejected"
        if self.period is not None:
            head += f", {self.rows_outside_period:,} outside the period {self.period[0]} to {self.period[1]}"
        lines = [head]
        if self.rows_rejected:
            for (column, reason), rows in self.rejects.groupby(["column", "reason"], sort=False)["row"]:
                lines.append(f"  rejected, {reason} (column {column}): {_rows(rows.to_numpy())}")
            lines.append(f"  ({ROW_NOTE}; write them all with --rejects FILE)")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _rows(rows: np.ndarray) -> str:
    shown = ", ".join(str(r) for r in rows[:10])
    if len(rows) == 1:
        return f"row {shown}"
    more = f", ... ({len(rows)} rows in all)" if len(rows) > 10 else f" ({len(rows)} rows)"
    return f"rows {shown}{more}"


# --- reading ------------------------------------------------------------------------------------


def read_table(data, what: str, wanted: set[str] | None = None, plain: frozenset = frozenset()) -> tuple[str, pd.DataFrame]:
    """The raw table with its own column names; CSV cells are all read as text (ids stay text).

    Text columns come back dictionary-encoded (pandas Categoricals), so cleaning and checking
    them touches each distinct value once. For Parquet, `wanted` (None = all) limits the
    columns read, and the text columns named in `plain` stay Arrow text: a column of ids with
    nearly one value per row (transaction ids) outgrows the file's own dictionary, and a
    dictionary of it would be built by hashing every id on one thread while reading.
    """
    if isinstance(data, pd.DataFrame):
        return f"<{what} DataFrame>", data.reset_index(drop=True)
    from simulator import partition

    if partition.is_dataset(data):  # a folder, a glob or a URL of Parquet files, read as one file
        return str(data), _to_pandas(partition.read(data, wanted, plain))
    path = Path(data)
    source = str(path)
    if not path.exists():
        raise DataError(f"{source}: error: no such {what} file")
    if not path.is_file():  # a pipe or /dev/zero would block or never end
        raise DataError(f"{source}: error: the {what} file is not a regular file (a folder, pipe or device); save the data to a file and give its path")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            schema = pq.read_schema(path)
            _refuse_repeated(schema.names, source)
            cols = [c for c in schema.names if wanted is None or c in wanted]
            # Memory-mapped: the column chunks are decoded straight from the page cache, with no
            # copy of the file into buffers first. A file is read row group by row group, one
            # Arrow chunk each (read_table cuts every column into 128Ki-row chunks, which pandas
            # then joins, a copy of each column). Both measured in docs/performance.md.
            table = pq.ParquetFile(path, read_dictionary=dictionary_columns(schema, cols, plain), memory_map=True).read(columns=cols)
            return source, _to_pandas(table)
        if name.endswith((".csv", ".csv.gz", ".csv.bz2", ".txt", ".tsv")):
            return source, _read_csv(path, "\t" if ".tsv" in name else ",")
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{source}: error: cannot read the {what} file: {exc}") from None
    raise DataError(f"{source}: error: unknown file type; expected .csv (optionally .gz) or .parquet")


def id_text_columns(columns: Mapping[str, str] | None) -> frozenset:
    """The file's column of transaction ids (as `columns` maps it), read as Arrow text (`read_table`)."""
    return frozenset({dict(columns or {}).get("transaction_id", "transaction_id")})


def dictionary_columns(schema: pa.Schema, cols: list[str], plain=frozenset()) -> list[str]:
    """The text columns among `cols` to read dictionary-encoded: all but those named in `plain`."""
    return [c for c in cols if (pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)) and c not in plain]


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """`table.to_pandas()`, with dictionary columns turned into Categoricals directly: Arrow's
    indices are the codes as they are (in range already: not checked again), and a row group's
    batches that share a dictionary are not unified."""
    at = [i for i, f in enumerate(table.schema) if pa.types.is_dictionary(f.type)]
    if not at or not table.num_rows or table.schema.pandas_metadata is not None or len(set(table.column_names)) < table.num_columns:
        return _pandas_of(table)
    names = table.column_names
    cols = {}
    for i in at:
        col = table.column(i)
        first = col.chunk(0).dictionary
        # The batches of one row group share its dictionary: unifying (hashing every text) is
        # needed only when they differ.
        if not all(c.dictionary.equals(first) for c in col.chunks[1:]):
            col = pa.table({"c": col}).unify_dictionaries().column(0)
        if len(col.chunk(0).dictionary) == 0:
            return table.to_pandas()  # no text at all: pandas gives such categories its own dtype
        cols[i] = col
    # split_blocks: each column keeps its own array rather than being copied into a 2-D block.
    plain = table.drop_columns([names[i] for i in at]).to_pandas(split_blocks=True)
    out = {}
    for i, name in enumerate(names):
        if i not in cols:
            out[name] = plain[name]
            continue
        col = cols[i]
        # The codes as Arrow holds them (int32), missing as -1; from_codes narrows them as it likes.
        parts = [c.indices if c.null_count == 0 else c.indices.fill_null(-1) for c in col.chunks]
        codes = np.concatenate([c.to_numpy(zero_copy_only=False) for c in parts]) if len(parts) > 1 else parts[0].to_numpy(zero_copy_only=False)
        # pandas checks the dictionary is distinct (one hash of each distinct text, not of each
        # row); the Index remembers it, so the history's ids built from it are not checked again.
        dtype = pd.CategoricalDtype(pd.Index(col.chunk(0).dictionary.to_pandas()), False)
        out[name] = pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
    return pd.DataFrame(out, index=plain.index, copy=False)


def _pandas_of(table: pa.Table) -> pd.DataFrame:
    """`table.to_pandas()`; when the file's pandas metadata contradicts its Arrow types (a column
    rewritten as records after pandas wrote the file), without the metadata: the loader checks the
    cells itself and names the column."""
    try:
        return table.to_pandas()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, TypeError, ValueError):
        if table.schema.pandas_metadata is None:
            raise
        return table.replace_schema_metadata(None).to_pandas()


def _read_csv(path: Path, delimiter: str) -> pd.DataFrame:
    parse = pa_csv.ParseOptions(delimiter=delimiter)
    with pa_csv.open_csv(path, parse_options=parse) as reader:
        names = reader.schema.names
    _refuse_repeated(names, str(path))
    convert = pa_csv.ConvertOptions(
        column_types={n: pa.dictionary(pa.int32(), pa.string()) for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    return pa_csv.read_csv(path, parse_options=parse, convert_options=convert).to_pandas()


def _refuse_repeated(names, source: str, only=None) -> None:
    """A DataError when the names repeat (among `only`, when given): which column is meant is unknown."""
    seen = pd.Index([str(n) for n in names])
    dup = sorted({n for n in seen[seen.duplicated()] if only is None or n in only})
    if dup:
        raise DataError(f"{source}: error: the header repeats the column name(s) {', '.join(dup)}; give each column its own name")


# Object columns whose values pandas finds to be of one plain kind; any other is looked into.
_PLAIN_KINDS = frozenset({"string", "bytes", "integer", "floating", "decimal", "boolean", "date", "datetime", "datetime64", "empty", "time"})
_NESTED = (list, tuple, dict, set, frozenset, np.ndarray)


def _refuse_nested(df: pd.DataFrame, names, source: str, what: str, columns: Mapping[str, str] | None = None) -> None:
    """A DataError naming the first of `names` whose cells hold lists or records (a Parquet struct or
    list column, a DataFrame of such objects): a cell is one text or number. Only object columns
    are looked at (text read from a file is dictionary-encoded, numbers are numbers). The column is
    named as the file names it (`columns` maps canonical names to the file's)."""
    for name in names:
        col = df[name]
        if col.dtype != object or pd.api.types.infer_dtype(col, skipna=True) in _PLAIN_KINDS:
            continue
        nested = col.map(lambda v: isinstance(v, _NESTED)).to_numpy(dtype=bool)
        if nested.any():
            row = int(np.flatnonzero(nested)[0])
            shown = reprlib.repr(col.iloc[row])
            raise DataError(
                f"{source}: error: column `{dict(columns or {}).get(name, name)}` of the {what} holds lists or records (row {row + 1}: {shown}); "
                "expected one text or number in each cell"
            )


def _text(values: pd.Series) -> pd.Series:
    """Text with missing values as ""; numbers written without a trailing `.0` where whole."""
    if isinstance(values.dtype, pd.CategoricalDtype) and arrowtext.is_arrow_text(values.cat.categories) and values.cat.categories.dtype.na_value is not pd.NA:
        # Text categories (a Parquet dictionary): each row's text gathered in Arrow, as `astype("str")` would give it.
        text = values.cat.categories.array.take(values.cat.codes.to_numpy(), allow_fill=True, fill_value="")
        return pd.Series(text, index=values.index, name=values.name, copy=False)
    # (Whole numbers only while exact as integers: 1e300 is whole, but no Int64.)
    if pd.api.types.is_float_dtype(values) and values.dropna().mod(1).eq(0).all() and values.dropna().abs().lt(2**53).all():
        values = values.astype("Int64")
    return values.astype("str").fillna("").astype("str")


def _is_text_dictionary(values: pd.Series) -> bool:
    """A column read dictionary-encoded whose categories are text (a Parquet or CSV text column)."""
    return isinstance(values.dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(values.cat.categories.dtype)


def _strip(text: pd.Series) -> pd.Series:
    return text.str.strip()


def _dict_text(values: pd.Series, clean=None) -> pd.Categorical:
    """`_text(values)` dictionary-encoded, with `clean` (a function on a text Series) applied to
    each distinct value once; categories are sorted and unique, missing is ""."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        if pd.api.types.is_string_dtype(values.cat.categories.dtype) and (not len(codes) or codes.min() >= 0):
            # Already clean text with nothing missing (the usual Parquet column): keep it as it is.
            # (Text categories are used as they are, without a round trip through Python objects.)
            if clean is _strip and arrowtext.is_arrow_text(values.cat.categories) and arrowtext.no_edge_space(values.cat.categories):
                return values.array
            text = pd.Series(values.cat.categories).astype("str")
            if (clean(text) if clean is not None else text).equals(text):
                return values.array
        codes = codes.astype(np.int64)
        uniques = pd.Series(values.cat.categories.to_numpy())
    else:
        codes, u = pd.factorize(values, use_na_sentinel=True)
        uniques = pd.Series(u)
    text = _text(uniques) if len(uniques) else pd.Series([], dtype="str")
    if clean is not None:
        text = clean(text)
    # Missing cells (code -1) become "", as `_text` writes them.
    cats = np.append(text.to_numpy(dtype=object), "")
    index = pd.Index(cats[:-1], dtype=object)
    if index.is_unique and "" not in index:
        # The usual case (clean text): keep the codes, no sort of the distinct values.
        return pd.Categorical.from_codes(np.where(codes < 0, len(index), codes), categories=pd.Index(cats, dtype=object))
    uniq, inv = np.unique(cats.astype(str), return_inverse=True)
    return pd.Categorical.from_codes(inv[codes], categories=uniq)


def _id_text(values: pd.Series):
    """Transaction ids cleaned as `_dict_text` cleans text (missing is "", edge spaces stripped);
    ids that are Arrow text stay Arrow text, with no dictionary (rulelang.engine.arrowtext compares them
    by their bytes), anything else is dictionary-encoded."""
    if not arrowtext.is_arrow_text(values):
        return _dict_text(values, _strip)
    text = arrowtext.one_chunk(values.reset_index(drop=True))
    text = text.fillna("") if text.hasnans else text
    return text if arrowtext.no_edge_space(text) else _strip(text)


def _sorted_codes(values: pd.Categorical) -> np.ndarray:
    """Each row's rank of its category in sorted order (so sorting by it sorts by the text)."""
    if arrowtext.ascending(pd.Series(values.categories.array, copy=False)):
        return values.codes  # categories in order already (a sorted file's dictionary)
    order = np.argsort(values.categories.to_numpy(dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[values.codes]


@njit(cache=True, nogil=True)
def _in_period(t, lo, hi):
    # (has a date-time, outside [lo, hi)) per row in one pass; lo = hi = NaT: no period.
    ok = np.empty(t.shape[0], dtype=np.bool_)
    outside = np.zeros(t.shape[0], dtype=np.bool_)
    for i in range(t.shape[0]):
        ok[i] = t[i] != NAT
        if ok[i] and lo != NAT:
            outside[i] = t[i] < lo or t[i] >= hi
    return ok, outside


# The engine holds money as int64 minor units (cents for 2 decimals). A row's amount may be at
# most MAX_AMOUNT_MINOR minor units (exact as a float64, too: below 2**53), and the used rows'
# amounts may add up to at most MAX_TOTAL_MINOR, so that every sum of them (revenue with the
# program's uplifts, up to four times the history's) stays below int64's 9.2e18.
MAX_AMOUNT_MINOR = 10**15
MAX_TOTAL_MINOR = 10**18


def _limit_text(minor: int, decimals: int) -> str:
    return f"{minor / 10**decimals:,.{decimals}f} ({minor:.0e} minor units at {decimals} decimals)".replace("e+", "e")


@njit(cache=True, nogil=True)
def _amounts(a, scale, limit):
    # Per row, in one pass: the amount rounded to the currency's decimals exactly as np.round
    # rounds (times 10**decimals, to the nearest even, divided back), whether it is missing (NaN),
    # whether it is not a finite number, and whether it is beyond `limit` minor units.
    n = a.shape[0]
    rounded = np.empty(n, dtype=np.float64)
    missing = np.empty(n, dtype=np.bool_)
    bad = np.empty(n, dtype=np.bool_)
    big = np.empty(n, dtype=np.bool_)
    for i in range(n):
        x = a[i]
        m = np.rint(x * scale)
        rounded[i] = m / scale
        missing[i] = np.isnan(x)
        bad[i] = not np.isfinite(x)
        big[i] = abs(m) > limit
    return rounded, missing, bad, big


@njit(cache=True, nogil=True)
def _used_total(rounded, used, scale, limit):
    # Σ |amount| in minor units over the used rows, in row order, and the first row (0-based) by
    # which it passes `limit` (-1: never).
    total = 0.0
    for i in range(rounded.shape[0]):
        if used[i]:
            total += abs(rounded[i]) * scale
            if total > limit:
                return total, i
    return total, -1


def amount_total_error(source: str, row: int, decimals: int) -> DataError:
    """The error for amounts that add up beyond what the engine can total (`MAX_TOTAL_MINOR`)."""
    return DataError(
        f"{source}: error: row {row}: the amounts of the used rows up to this row add up to more than "
        f"{_limit_text(MAX_TOTAL_MINOR, decimals)}, beyond what the engine can total exactly; "
        "check the amounts' unit, or simulate a shorter period"
    )


def _redeem_without_reward(event: pd.Categorical, reward: pd.Categorical) -> np.ndarray:
    redeem = _eq(event, "redeem")
    return redeem & _eq(reward, "") if redeem.any() else redeem


@njit(cache=True, nogil=True)
def _exact_floats(raw):
    # The integers as floats, and whether each is exact as one (below 2**53 in magnitude): one pass.
    out = np.empty(raw.shape[0], dtype=np.float64)
    exact = True
    for i in range(raw.shape[0]):
        v = raw[i]
        out[i] = v
        if v >= 2**53 or v <= -(2**53):
            exact = False
    return out, exact


def _whole_numbers(values: pd.Series) -> np.ndarray | None:
    """Numbers stored as whole numbers (integers, or floats that are whole or missing) as reading
    their text gives them (`pd.to_numeric` over `_dict_text`'s categories, which always hold "" and
    so read as floats), without writing any text; None for other columns, read through their text."""
    dtype = values.dtype
    if not (isinstance(dtype, np.dtype) and dtype.kind in "if"):
        return None
    if dtype.kind == "i":
        # Integers: never missing, never -0; only their size can make them inexact as floats.
        floats, exact = _exact_floats(np.ascontiguousarray(values.to_numpy()))
        return floats if exact else None
    v = values.to_numpy(dtype=np.float64)
    if not len(v):
        return v
    missing = np.isnan(v)
    known = v[~missing] if missing.any() else v
    if not len(known):
        return v
    # Whole and exact as a float (the text of a larger one would read back as another number).
    if not (max(-known.min(), known.max()) < 2**53 and (dtype.kind == "i" or np.array_equal(np.floor(known), known))):
        return None
    return v + 0.0  # "-0" reads back as 0


def _eq(values: pd.Categorical, s: str) -> np.ndarray:
    """values == s, row by row, comparing each category once."""
    hit = np.asarray(values.categories == s, dtype=bool)
    # No category is `s` (the usual case): no gather over every row.
    return hit[values.codes] if len(values) and hit.any() else np.zeros(len(values), dtype=bool)


def _on_categories(values: pd.Categorical, convert) -> pd.Series:
    """convert(categories) gathered to the rows (missing where the row's code is -1)."""
    out = convert(pd.Series(values.categories.to_numpy(dtype=object)))
    return pd.Series(out.to_numpy()[values.codes] if len(values.categories) else out.iloc[:0].reindex(range(len(values))).to_numpy())


def _dates(values: pd.Series, timestamp_format: str | None):
    """A date-time column read (`rulelang.engine.data.read_datetimes`): typed date-times as they are, text
    per distinct value. Returns (datetime64[ns] per row, empty per row, out of range per row, the
    distinct time zone offsets of the rows that gave a date-time ("" for none))."""
    if pd.api.types.is_datetime64_any_dtype(values):
        dates = read_datetimes(values)
        return dates.values, values.isna().to_numpy(), dates.out_of_range, set()
    text = _dict_text(values, _strip)
    dates = read_datetimes(pd.Series(text.categories, copy=False), timestamp_format, distinct=True)
    codes = text.codes
    ts = pd.Series(dates.values.to_numpy()[codes] if len(text.categories) else np.full(len(codes), np.datetime64("NaT", "ns")))
    far = dates.out_of_range[codes] if dates.out_of_range.any() else np.zeros(len(codes), dtype=bool)
    offsets = set()
    if len(codes) and dates.offset is not None and (dates.offset != "").any():
        used = (np.bincount(codes, minlength=len(text.categories)) > 0) & dates.values.notna().to_numpy()
        offsets = set(dates.offset[used].tolist())
    return ts, _eq(text, ""), far, offsets


def _date_reason(what: str, example: str, timestamp_format: str | None) -> str:
    """Why a date or date-time was not read, and how to write it."""
    if timestamp_format is not None:
        return f"not a {what} in the scenario's timestamp_format {timestamp_format!r}"
    return f"not a {what} (write it in {example}, or name the file's layout in the scenario: timestamp_format: \"%d/%m/%Y\")"


OUT_OF_RANGE = f"a date outside the supported range {DATETIME_RANGE}"


def _listed(names, at_most: int = 30) -> str:
    """Column names for a message, at most `at_most` of them (a file may have thousands)."""
    names = [str(n) for n in names]
    if not names:
        return "none"
    more = f", ... ({len(names)} in all)" if len(names) > at_most else ""
    return ", ".join(reprlib.repr(n)[1:-1] if len(n) > 60 else n for n in names[:at_most]) + more


def _suggest(name: str, available: list[str]) -> str | None:
    lower = {a.lower(): a for a in available}
    for alias in SYNONYMS.get(name, ()):
        if alias in lower:
            return lower[alias]
    close = difflib.get_close_matches(name, available, n=1, cutoff=0.6)
    return close[0] if close else None


def _map_columns(
    raw: pd.DataFrame, columns: Mapping[str, str] | None, required: tuple[str, ...], source: str, what: str, strict: bool, elsewhere=None
):
    """Rename the file's columns to canonical names. With `strict`, a mapped name the file lacks is
    a problem unless `elsewhere` (the customers file's (source, column names)) holds it; every
    problem, and every missing required column, is reported at once in one DataError."""
    raw = raw.rename(columns=str)
    available = list(raw.columns)
    renames: dict[str, str] = {}
    notes: list[str] = []
    problems: list[str] = []
    for canonical, src in (columns or {}).items():
        if src == canonical:
            continue
        if src not in raw.columns:
            if not strict or (elsewhere is not None and src in elsewhere[1]):
                continue  # (the customers file's column: mapped when the customers are loaded)
            close = difflib.get_close_matches(src, available + (list(elsewhere[1]) if elsewhere else []), n=1, cutoff=0.6)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            if elsewhere is None:
                problems.append(f"columns.{canonical} maps your column `{src}`, but the {what} have no such column; available: {_listed(available)}{hint}")
            else:
                problems.append(
                    f"columns.{canonical} maps your column `{src}`, but neither the {what} nor the customers ({elsewhere[0]}) have such a column; "
                    f"{what}: {_listed(available)}; customers: {_listed(elsewhere[1])}{hint}"
                )
            renames.setdefault(canonical, canonical)  # reported: not "missing" again below
            continue
        if canonical in raw.columns:
            # The file's own column of that name is kept aside rather than silently replaced.
            renames[canonical] = f"{canonical}_unmapped"
            notes.append(f"the file's column `{canonical}` is kept as `{canonical}_unmapped` because columns.{canonical} maps `{src}`")
        renames[src] = canonical
    df = raw.rename(columns=renames)
    missing = [c for c in required if c not in df.columns and c not in renames]
    if missing:
        hints = []
        for c in missing:
            s = _suggest(c, [a for a in available if a not in renames])
            if s:
                hints.append(f"{c}: {s}")
        fix = f"; did you mean `{', '.join(h.split(': ')[1] for h in hints)}`? map it in the scenario: `columns: {{{', '.join(hints)}}}`" if hints else ""
        problems.append(f"the {what} have no column {', '.join('`' + c + '`' for c in missing)}; available: {_listed(available)}{fix}")
    if problems:
        raise DataError("\n".join(f"{source}: error: {p}" for p in problems))
    return df, notes


# --- validation ---------------------------------------------------------------------------------


def _reject_table(checks: list[tuple[str, str, np.ndarray]], df_text: dict[str, pd.Series], eligible: np.ndarray):
    """Give each failing row its first problem, in table order: (rejected mask, rejects rows)."""
    n = len(eligible)
    failing = np.zeros(n, dtype=bool)
    for _, _, bad in checks:
        failing |= bad
    # Only the failing rows are given a reason (usually none are).
    idx = np.flatnonzero(failing & eligible)
    codes = np.full(len(idx), -1, dtype=np.int64)
    for i, (_, _, bad) in enumerate(checks):
        codes[(codes < 0) & bad[idx]] = i
    rejected = np.zeros(n, dtype=bool)
    rejected[idx] = True
    cols = np.array([c for c, _, _ in checks], dtype=object)[codes] if len(checks) else np.array([], dtype=object)
    reasons = np.array([r for _, r, _ in checks], dtype=object)[codes] if len(checks) else np.array([], dtype=object)
    values = np.empty(len(idx), dtype=object)
    for col in set(cols.tolist()):
        sel = cols == col
        src = df_text[col]
        values[sel] = src(idx[sel]) if callable(src) else pd.Series(src).take(idx[sel]).to_numpy(dtype=object)
    rejects = pd.DataFrame(
        {"row": (idx + 1).astype("int64"), "column": pd.array(cols, dtype="str"), "value": pd.array(values, dtype="str"), "reason": pd.array(reasons, dtype="str")}
    )
    return rejected, rejects


def _period_bounds(period) -> tuple[dt.date, dt.date] | None:
    if period is None:
        return None
    try:
        if hasattr(period, "start") and hasattr(period, "end"):
            bounds = period.start, period.end
        elif isinstance(period, str):
            a, _, b = period.partition(" to ")
            bounds = dt.date.fromisoformat(a.strip()), dt.date.fromisoformat(b.strip())
        else:
            a, b = period
            bounds = tuple(x if isinstance(x, dt.date) and not isinstance(x, dt.datetime) else pd.Timestamp(x).date() for x in (a, b))
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"period {period!r}: error: not a period of two dates ({exc}); write it like `2026-01-01 to 2026-12-31`") from None
    # Both days whole inside the range (the period's end is taken to the end of its day).
    first, last = FIRST_DATETIME.ceil("D").date(), (LAST_DATETIME.floor("D") - pd.Timedelta(days=1)).date()
    if not all(first <= d <= last for d in bounds):
        raise DataError(f"period {bounds[0]} to {bounds[1]}: error: outside the supported range {DATETIME_RANGE}")
    return bounds


def _wanted(columns: Mapping[str, str] | None, keep: set[str] | None) -> set[str] | None:
    """The file's columns to read: the canonical ones, those `keep` names, and their mapped names."""
    if keep is None:
        return None
    names = set(CANONICAL) | {"currency"} | set(keep)  # (a currency column is checked when present)
    mapped = dict(columns or {})
    return names | {mapped[c] for c in names if c in mapped} | set(mapped.values())


def load_options(scenario, model=None, customers=None) -> dict:
    """The keyword arguments of `load_transactions` that a scenario (its `timestamp_format`) and
    a program (its currency) set, with the customers file that comes with the transactions."""
    return {"timestamp_format": getattr(scenario, "timestamp_format", None), "currency": getattr(model, "currency", None), "customers": customers}


def column_names(data, what: str) -> tuple[str, tuple[str, ...]] | None:
    """(source, column names) of a CSV or Parquet file (its header only) or a DataFrame; None when
    it cannot be read (its own load then says why)."""
    if isinstance(data, pd.DataFrame):
        return f"<{what} DataFrame>", tuple(str(c) for c in data.columns)
    from simulator import partition

    if partition.is_dataset(data):
        try:
            return str(data), tuple(partition.schema_of(data).names)
        except (LoyaltyError, pa.ArrowInvalid, OSError):
            return None
    path = Path(data)
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return str(path), tuple(pq.read_schema(path).names)
        if name.endswith((".csv", ".csv.gz", ".csv.bz2", ".txt", ".tsv")):
            parse = pa_csv.ParseOptions(delimiter="\t" if ".tsv" in name else ",")
            with pa_csv.open_csv(path, parse_options=parse) as reader:
                return str(path), tuple(reader.schema.names)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, UnicodeDecodeError):
        return None
    return None


CANONICAL = ("customer_id", "timestamp", "amount", "event", "transaction_id", "reward", "quantity", "points_paid")


def load_transactions(
    path_or_df,
    columns: Mapping[str, str] | None = None,
    currency_decimals: int = 2,
    period=None,
    keep: set[str] | None = None,
    source: str | None = None,
    *,
    timestamp_format: str | None = None,
    currency: str | None = None,
    customers=None,
) -> LoadResult:
    """Read, map and validate transactions; bad rows are rejected with reasons, never dropped.

    `keep` (None = every column) names the non-canonical columns to keep; a Parquet file's other
    columns are not even read. Text columns of the frame are pandas Categoricals.
    Timestamps are ISO 8601, or exactly the strftime layout `timestamp_format` when given.
    `currency` (the program's): rows whose `currency` column names another are rejected.
    `customers` (the customers file or frame that comes with these transactions; only its column
    names are read): a mapped name found there, not here, is the customers', not a problem.
    """
    read_from, raw = read_table(path_or_df, "transactions", _wanted(columns, keep), plain=id_text_columns(columns))
    source = source or read_from  # a slice of a file is named by its file
    elsewhere = None if customers is None else column_names(customers, "customers")
    df, notes = _map_columns(raw, columns, REQUIRED, source, "transactions", strict=True, elsewhere=elsewhere)
    # The columns read here: the canonical ones, and `currency` when rows are checked against the program's.
    read_here = [c for c in (*CANONICAL, *(("currency",) if currency is not None else ())) if c in df.columns]
    _refuse_repeated(df.columns, source, only=read_here)
    _refuse_nested(df, read_here, source, "transactions", columns)
    n = len(df)
    strip = _strip
    empty = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[""])
    # A rejected row's value as read (text), computed for the rejected rows only.
    text = {c: (lambda idx, c=c: _text(df[c].take(idx).reset_index(drop=True)).to_numpy(dtype=object)) for c in df.columns}
    for c in ("event", "reward", "transaction_id", "quantity", "points_paid"):
        text.setdefault(c, lambda idx: np.full(len(idx), "", dtype=object))

    ids = _dict_text(df["customer_id"], strip)
    # (A missing typed date-time reads as empty text.)
    ts, ts_text_empty, ts_far, offsets = _dates(df["timestamp"], timestamp_format)
    if len(offsets) > 1:
        zones = ", ".join(sorted(o or "none" for o in offsets))
        notes.append(
            f"the timestamps give different time zone offsets ({zones}): each is read as its own local wall time, "
            "the offset dropped; convert them to one zone first if they are to be compared across zones"
        )
    # Numbers stored as numbers (Parquet, DataFrames) are used as they are; anything else is parsed as text.
    numeric = pd.api.types.is_numeric_dtype(df["amount"]) and not pd.api.types.is_bool_dtype(df["amount"])
    if numeric:
        a = df["amount"]
        amount = (a if a.dtype == np.float64 else pd.to_numeric(a, errors="coerce").astype("float64")).reset_index(drop=True)
        # A missing number reads as empty text.
        rounded, amount_empty, amount_bad, amount_big = _amounts(np.ascontiguousarray(amount.to_numpy()), float(10**currency_decimals), float(MAX_AMOUNT_MINOR))
    else:
        amount_text = _dict_text(df["amount"], strip)
        amount = _on_categories(amount_text, lambda t: pd.to_numeric(t.astype("str"), errors="coerce").astype("float64"))
        amount_empty = _eq(amount_text, "")
        amount_bad = ~np.isfinite(amount.to_numpy())
        with np.errstate(invalid="ignore", over="ignore"):  # (1e308 × 100 is inf: rejected below)
            rounded = amount.round(currency_decimals).to_numpy()
            amount_big = np.abs(rounded) * float(10**currency_decimals) > MAX_AMOUNT_MINOR
    other_currency = _other_currency(df, currency)
    event = _dict_text(df["event"], event_names) if "event" in df.columns else None
    if event is None:
        event = pd.Categorical.from_codes(np.zeros(n, dtype=np.int64), categories=["purchase"])
    reward = _dict_text(df["reward"], strip) if "reward" in df.columns else empty
    tx_id = _id_text(df["transaction_id"]) if "transaction_id" in df.columns else empty
    has_quantity = "quantity" in df.columns
    quantity = _whole_numbers(df["quantity"]) if has_quantity else None
    if quantity is not None:
        quantity_bad = np.zeros(n, dtype=bool)  # numbers stored as numbers: none is "not a number"
    elif has_quantity:
        quantity_text = _dict_text(df["quantity"], strip)
        quantity = _on_categories(quantity_text, lambda t: pd.to_numeric(t.astype("str"), errors="coerce"))
        quantity_bad = ~_eq(quantity_text, "") & quantity.isna().to_numpy()
    # Points a purchase paid with (`pay with points`), replayed as recorded: whole numbers, 0 or
    # more; blank is none (as a float NaN, which rulelang.engine's data contract reads as 0).
    has_points_paid = "points_paid" in df.columns
    points_paid = _whole_numbers(df["points_paid"]) if has_points_paid else None
    if has_points_paid and points_paid is None:
        paid_text = _dict_text(df["points_paid"], strip)
        points_paid = np.asarray(_on_categories(paid_text, lambda t: pd.to_numeric(t.astype("str"), errors="coerce")), dtype=np.float64)
        points_paid_bad = ~_eq(paid_text, "") & np.isnan(points_paid)
    else:
        points_paid_bad = np.zeros(n, dtype=bool)
    if has_points_paid:
        with np.errstate(invalid="ignore"):
            points_paid_bad |= ~np.isnan(points_paid) & ((points_paid < 0) | (points_paid != np.floor(points_paid)) | (points_paid >= 2**53))

    bounds = _period_bounds(period)
    tsv = ts.to_numpy()
    # Rows outside [lo, hi), and rows with a date-time (a missing one is rejected, not outside).
    lo = hi = NAT  # no period
    if bounds is not None:
        lo, hi = pd.Timestamp(bounds[0]).value, (pd.Timestamp(bounds[1]) + pd.Timedelta(days=1)).value
    ts_ok, outside = _in_period(np.ascontiguousarray(tsv).view(np.int64), lo, hi)

    checks = [
        ("customer_id", "empty customer id", _eq(ids, "")),
        ("timestamp", "empty timestamp", ts_text_empty & ~ts_ok),
        ("timestamp", OUT_OF_RANGE, ts_far),
        ("timestamp", _date_reason("date-time", ISO_EXAMPLE, timestamp_format), ~ts_ok),
        ("amount", "empty amount", amount_bad & amount_empty),
        ("amount", "not a number (use a plain decimal like 1234.50: no currency sign or thousands separator)", amount_bad),
        ("amount", f"too large: beyond ±{_limit_text(MAX_AMOUNT_MINOR, currency_decimals)}, the most the engine holds", amount_big),
        ("currency", f"not in the program's currency {currency} (convert the amounts, or leave the rows out)", other_currency),
        ("reward", "redeem row without a reward", _redeem_without_reward(event, reward)),
        ("quantity", "not a number", quantity_bad if has_quantity else np.zeros(n, bool)),
        ("points_paid", "not a whole number of points, 0 or more (the points a purchase paid with; blank for none)", points_paid_bad),
    ]
    rejected, rejects = _reject_table(checks, text, ~outside)
    used = ~rejected & ~outside
    total, past = _used_total(rounded, used, float(10**currency_decimals), float(MAX_TOTAL_MINOR))
    if past >= 0:
        raise amount_total_error(source, past + 1, currency_decimals)

    own = {
        "customer_id": ids,
        "timestamp": tsv,
        "amount": rounded,
        "event": event,
        "transaction_id": tx_id,
        "reward": reward,
    }
    first = list(own)
    if df.columns.is_unique:
        # One frame of the columns (what `df.assign` then a reorder gives, without copying each).
        rest = {c: df[c] for c in df.columns if c not in own}
        if has_quantity:
            rest["quantity"] = np.asarray(quantity)
        if has_points_paid:
            rest["points_paid"] = np.asarray(points_paid)
        frame = pd.DataFrame({**own, **rest, "source_row": np.arange(1, n + 1, dtype=np.int64)}, copy=False)
    else:
        frame = df.assign(**own, source_row=np.arange(1, n + 1, dtype=np.int64))
        if has_quantity:
            frame["quantity"] = np.asarray(quantity)
        if has_points_paid:
            frame["points_paid"] = np.asarray(points_paid)
        frame = frame[first + [c for c in frame.columns if c not in first]]
    # Stable sort by (customer id, time).
    every = bool(used.all())
    keep_rows = None if every else np.flatnonzero(used)  # None: every row (no index array needed)
    id_keys, ts_keys = _sorted_codes(ids), tsv
    if not every:
        id_keys, ts_keys = id_keys[keep_rows], ts_keys[keep_rows]
    in_order = grouped_in_time(id_keys, ts_keys)  # (rows kept have their date-times)
    if in_order and every:
        # Rows already in order, none dropped: no reordered copy of every column.
        frame = frame.reset_index(drop=True)
    else:
        by_keys = np.arange(len(id_keys)) if in_order else np.lexsort((ts_keys, id_keys))
        frame = frame.take(by_keys if every else keep_rows[by_keys]).reset_index(drop=True)
    prior = _prior(checks, outside & ts_ok, tsv, lo, ids, event, rounded, currency_decimals) if bounds is not None else None
    return LoadResult(
        frame=frame,
        rows_read=n,
        rows_used=int(used.sum()),
        rows_rejected=int(rejected.sum()),
        rows_outside_period=int(outside.sum()),
        rejects=rejects,
        source=source,
        period=bounds,
        notes=tuple(notes),
        rejected_rows=_rows_of(raw, rejected),
        amount_total=total,
        prior=prior,
    )


def _prior(checks, outside, tsv, lo: int, ids, event, rounded, decimals: int):
    """The purchases before the period (`lo`) of the rows that pass every check (simulator.segments)."""
    before = outside & (np.ascontiguousarray(tsv).view(np.int64) < lo)
    if not before.any():
        return segments.Prior.empty()
    for _, _, bad in checks:
        before &= ~bad
    idx = np.flatnonzero(before)
    minor = np.rint(np.asarray(rounded)[idx] * float(10**decimals)).astype(np.int64)
    purchase = _eq(event, "purchase")[idx] & (minor >= 0)  # as simulator.history reads a purchase
    t = np.ascontiguousarray(tsv).view(np.int64)[idx]
    return segments.Prior.of_codes(ids.categories, np.asarray(ids.codes)[idx], t, purchase, minor)


DATE_ATTRIBUTES = ("birthday", "enrolled")


def load_customers(path_or_df, columns: Mapping[str, str] | None = None, *, timestamp_format: str | None = None) -> LoadResult:
    """Read and validate customers: one row per customer_id; `birthday`/`enrolled` become dates
    (ISO 8601, or the strftime layout `timestamp_format`), the rest text (a column read
    dictionary-encoded, as a Parquet or CSV text column is, stays a Categorical)."""
    # The ids, one per row, are read as Arrow text: a dictionary of them would be built by hashing
    # each id on one thread while the transactions are read.
    source, raw = read_table(path_or_df, "customers", plain=frozenset({dict(columns or {}).get("customer_id", "customer_id")}))
    df, notes = _map_columns(raw, columns, ("customer_id",), source, "customers", strict=False)
    _refuse_repeated(df.columns, source)
    _refuse_nested(df, df.columns, source, "customers", columns)
    n = len(df)
    # A date-time column is not written out as text: its text is empty exactly where it is missing.
    typed = {c for c in df.columns if c in DATE_ATTRIBUTES and pd.api.types.is_datetime64_any_dtype(df[c])}
    # Text columns are kept as read (dictionary-encoded); the text of a failing row is made for its report.
    kept = {c for c in df.columns if c not in DATE_ATTRIBUTES and c != "customer_id" and _is_text_dictionary(df[c])}
    text = {c: _text(df[c]) if c not in typed | kept else (lambda idx, c=c: _text(df[c]).take(idx).to_numpy(dtype=object)) for c in df.columns}
    ids = arrowtext.one_chunk(df["customer_id"]) if arrowtext.no_edge_space(df["customer_id"]) else _text(df["customer_id"]).str.strip()
    out = {"customer_id": ids}
    blank = arrowtext.blank(ids) if arrowtext.is_arrow_text(ids) else (ids == "").to_numpy()
    checks = [("customer_id", "empty customer id", blank)]
    # Ids already in strictly ascending order (the usual file) repeat none and need no sort.
    ascending = arrowtext.ascending(ids)
    first = np.zeros(n, dtype=bool) if ascending else ids.duplicated(keep="first").to_numpy() & ~blank
    checks.append(("customer_id", "customer id already given on an earlier row", first))
    for col in df.columns:
        if col == "customer_id":
            continue
        if col in DATE_ATTRIBUTES:
            values = df[col] if col in typed else text[col].str.strip()
            dates = read_datetimes(values, None if col in typed else timestamp_format)
            parsed = dates.values.dt.normalize()
            given = df[col].notna().to_numpy() if col in typed else (text[col].str.strip() != "").to_numpy()
            checks.append((col, OUT_OF_RANGE, dates.out_of_range))
            checks.append((col, _date_reason("date", "ISO 8601, like 1990-05-17", timestamp_format), given & parsed.isna().to_numpy()))
            out[col] = parsed
        else:
            out[col] = _dict_text(df[col]) if col in kept else text[col]
    rejected, rejects = _reject_table(checks, text, np.ones(n, dtype=bool))
    frame = pd.DataFrame(out, copy=False)
    if not (ascending and not rejected.any()):
        frame = frame.loc[~rejected].sort_values("customer_id", kind="stable")
    frame = frame.reset_index(drop=True)
    return LoadResult(
        frame=frame,
        rows_read=n,
        rows_used=int((~rejected).sum()),
        rows_rejected=int(rejected.sum()),
        rows_outside_period=0,
        rejects=rejects,
        source=source,
        notes=tuple(notes),
        rejected_rows=_rows_of(raw, rejected),
    )


def _other_currency(df: pd.DataFrame, currency: str | None) -> np.ndarray:
    """Rows whose `currency` cell names a currency other than `currency` (the program's); a blank
    cell is taken to be the program's. Compared per distinct value, case and edge spaces aside.
    (Rejected rather than warned about: their amounts would be counted as the program's money.)"""
    if currency is None or "currency" not in df.columns:
        return np.zeros(len(df), dtype=bool)
    codes = _dict_text(df["currency"], _strip)
    upper = pd.Series(codes.categories.to_numpy(dtype=object), dtype="str").str.upper()
    other = ((upper != "") & (upper != currency.strip().upper())).to_numpy(dtype=bool)
    return other[codes.codes] if other.any() else np.zeros(len(df), dtype=bool)


def _rows_of(raw: pd.DataFrame, rejected: np.ndarray) -> pd.DataFrame:
    """The file's rows that were rejected, as read (a slice when there are none: taking no rows
    of a large read still walks every column)."""
    at = np.flatnonzero(rejected)
    return (raw.iloc[at] if len(at) else raw.iloc[:0]).reset_index(drop=True)


def write_rejects(result: LoadResult, path: str | Path, customers: LoadResult | None = None) -> Path:
    """Write every rejected row as CSV: row, column, value, reason, file (`transactions` or
    `customers`), then the row's own cells (a column of the other file's left empty). Text cells
    that a spreadsheet would run as formulas are neutralised; the file is replaced at once."""
    parts = []
    for what, load in (("transactions", result), ("customers", customers)):
        if load is None:
            continue
        cells = load.rejected_rows if load.rejected_rows is not None else pd.DataFrame(index=load.rejects.index)
        reasons = load.rejects.reset_index(drop=True).assign(file=what)
        cells = cells.rename(columns=lambda c, taken=reasons.columns: f"input_{c}" if str(c) in taken else c)
        parts.append(pd.concat([reasons, cells.reset_index(drop=True)], axis=1))
    out = formula_safe(pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0])
    path = Path(path)
    try:
        atomic_write_bytes(path, out.to_csv(index=False).encode("utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: error: cannot write the rejects file: {exc}") from None
    return path
