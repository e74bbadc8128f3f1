"""report.xlsx: the simulation's figures as a workbook finance can work in (and compare.xlsx).

One sheet per row of `SHEETS` (its name, the function that makes its frame from a
`SimulationResult`, and its columns' formats); a sheet whose frame the result does not have
(`accounting`, `triangles` before their wiring) is left out, so a new sheet is one new row.
`loyalty compare`'s workbook is the rows of `COMPARE_SHEETS`.

What a reader can rely on:

- **Numbers are numbers**, never text, with a number format by kind (`kind_formats`): money in
  the currency with its decimals, points and counts as whole numbers (a mean over runs that is not
  whole shows two decimals), rates as percentages. Money reaches a cell from integer minor units
  or exact Decimals as the nearest double; Excel keeps 15 significant digits, so every amount
  below 10^13 currency units shows exactly as summary.json and monthly.csv have it.
- **No formulas at all**: every cell is written with `write_number` or `write_string`, and the
  workbook is opened with `strings_to_formulas` and `strings_to_urls` off. A text cell that starts
  with = + - @, a tab or a carriage return also gets a leading `'`, as in every CSV the toolkit
  writes (`rulelang.files.formula_safe`). A text cell is never evaluated (a spreadsheet evaluates
  only cells stored as formulas; LibreOffice 7.4 opens "=1+1" as the text it is); the apostrophe
  keeps it text when a reader edits the cell, or saves the sheet as CSV and opens that.
- **Frozen header rows**, an autofilter on each table, column widths from the widest value.
- **Same inputs and seed, same bytes**: the workbook is built in memory (XlsxWriter dates the zip
  members 1980-01-01) and its creation date is fixed to `CREATED` instead of the clock.
"""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from rulelang import formula_safe
from simulator import metrics
from simulator.finance.accounting import PROVISION_COLUMNS, REVENUE_COLUMNS

# The workbook's creation date, fixed so the same simulation gives the same bytes (the clock's
# time would differ on every run); the same day XlsxWriter gives the files inside the zip.
CREATED = datetime(1980, 1, 1, tzinfo=UTC)
# A summary or frame column that names each row's kind (written nowhere): its value columns are
# formatted row by row (the summary's P5..mean columns hold money in one row, points in the next).
ROW_KIND = "_kind"
BY_ROW = "by_row"
WIDEST = 60  # characters: a column is never wider (a long path wraps nothing, it is cut off on screen)
NOT_SET = "(not set)"


@dataclass(frozen=True)
class Sheet:
    """One sheet: its tab `name`, the function making its frame from a result (None: the result has
    no such frame, and the sheet is left out), and its columns' kinds as (glob of column names,
    kind) rules, first match first; a column no rule names is formatted by its values."""

    name: str
    frame: Callable[[object], pd.DataFrame | None]
    kinds: tuple[tuple[str, str], ...]
    frozen_columns: int = 0


def _kinds(*groups: tuple[tuple[str, ...] | str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((pattern, kind) for names, kind in groups for pattern in ((names,) if isinstance(names, str) else names))


# --- the frames ----------------------------------------------------------------------------------

# summary.json's figures in a finance reader's order (metrics.FIGURE_LABELS). Labels of those not
# named there (figures another stage adds) are their keys; their kind is `FIGURE_KINDS`' or "number".
SUMMARY_ORDER = metrics.FIGURE_LABELS
FIGURE_KINDS = {
    **{f: "points" for f in metrics.POINT_FIGURES + metrics.PENDING_FIGURES},
    **{f: "money" for f in metrics.MONEY_FIGURES + metrics.COST_KIND_FIGURES},
    **{f: "ratio" for f in metrics.RATIO_FIGURES},
    "revenue_lift_pct": "percent",
    # The accounting roll-forward's amounts and the ultimate redemption rate, under any key that
    # holds them (`accounting.closing`, ...): a figure's kind is looked up by its last name.
    **{f: "money" for f in REVENUE_COLUMNS + PROVISION_COLUMNS},
    "urr": "ratio",
    # urr_estimate's: the liability with Mack's error drawn in, and Mack's error of the URR.
    "liability_interval": "money",
    "std_error": "ratio",
}
QUANTILES = (("p5", "P5"), ("p50", "P50"), ("p95", "P95"), ("mean", "mean"))


def is_figure(value) -> bool:
    """A summary.json figure: {"mean", "p5", "p50", "p95"} over the runs."""
    return isinstance(value, Mapping) and {"mean", "p5", "p50", "p95"} <= set(value)


def summary_figures(summary: Mapping) -> list[tuple[str, Mapping]]:
    """Every figure of `summary` as (dotted key, figure): `tiers.Gold`, `accounting.closing`, ...,
    at any depth (the keys of the mappings that hold them joined by dots)."""
    found: list[tuple[str, Mapping]] = []

    def walk(node: Mapping, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if is_figure(value):
                found.append((name, value))
            elif isinstance(value, Mapping) and key not in ("assumptions", "sources"):
                walk(value, f"{name}.")

    walk(summary, "")
    return found


def summary_frame(result) -> pd.DataFrame:
    """One row per summary.json figure: figure, label, unit, P5, P50, P95, mean."""
    named = {f: (label, kind) for f, label, kind in SUMMARY_ORDER}
    order = {f: i for i, (f, _, _) in enumerate(SUMMARY_ORDER)}
    figures = summary_figures(result.summary)
    # The named figures in their order, then tiers, then any other in summary.json's order.
    rank = {name: (0, order[name]) if name in order else (1 if name.startswith("tiers.") else 2, i) for i, (name, _) in enumerate(figures)}
    rows = []
    for name, fig in sorted(figures, key=lambda f: rank[f[0]]):
        if name.startswith("tiers."):
            label, kind = f"Members in tier {name[len('tiers.') :]} at the end", "count"
        else:
            label, kind = named.get(name, (name, FIGURE_KINDS.get(name.rpartition(".")[2], "number")))
        rows.append({"figure": name, "label": label, "unit": unit_of(kind, result.currency), **{q: fig[q] for q, _ in QUANTILES}, ROW_KIND: kind})
    # Objects, not a float column: a points figure stays the int summary.json holds.
    frame = pd.DataFrame(rows, columns=["figure", "label", "unit", *(q for q, _ in QUANTILES), ROW_KIND], dtype=object)
    return frame.rename(columns=dict(QUANTILES))


UNITS = {"count": "count", "points": "points", "ratio": "%", "percent": "%", "number": ""}


def unit_of(kind: str, currency: str) -> str:
    return currency if kind == "money" else UNITS[kind]


def assumptions_frame(result) -> pd.DataFrame:
    """The scenario as used (every key, nested keys dotted), the program, and each input's path,
    sha256 and what it was: section, key, value."""
    rows = [("program", "name", result.summary.get("program")), ("program", "currency", result.currency)]
    rows.append(("program", "currency decimals", result.program.model.decimals))

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping) and value:
                walk(value, f"{prefix}{key}.")
            else:
                rows.append(("scenario", f"{prefix}{key}", value))

    walk(result.summary.get("assumptions", {}), "")
    for what, source in result.summary.get("sources", {}).items():
        for field in ("path", "sha256", "given"):
            rows.append(("inputs", f"{what} {field}", source.get(field)))
    rows.append(("method", "percentile method", result.summary.get("percentile_method")))
    return pd.DataFrame(
        [{"section": s, "key": k, "value": _plain(v)} for s, k, v in rows], columns=["section", "key", "value"]
    )


def _plain(value):
    """A value for one cell: numbers as they are, nothing as NOT_SET, lists and empty mappings as JSON."""
    if value is None:
        return NOT_SET
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal | str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


ROLL_FORWARD = _kinds(
    (("run",), "count"),
    (("month",), "text"),
    (metrics.MONTHLY_POINTS + metrics.PENDING_FIGURES, "points"),
    (("members", "tier_*"), "count"),
    (metrics.MONTHLY_MONEY + metrics.COST_KIND_FIGURES, "money"),
)

# urr.csv's and urr_by_tier.csv's columns (the latter's first is `tier`).
URR_COLUMNS = _kinds(
    (("tier", "cohort"), "text"),
    (("earned", "clawed_back", "redeemed", "expired", "ultimate_redeemed"), "points"),
    (("urr", "std_error"), "ratio"),
)

# The sheets, in the workbook's order. `accounting` and `triangles` are the results' frames of
# those names when the simulation made them (issue 20's roll-forward and cohort triangles).
SHEETS = (
    Sheet("summary", summary_frame, _kinds((("figure", "label", "unit"), "text"), (("P5", "P50", "P95", "mean"), BY_ROW)), frozen_columns=2),
    Sheet("monthly", lambda r: r.monthly, ROLL_FORWARD, frozen_columns=2),
    Sheet(
        "accounting",
        lambda r: getattr(r, "accounting", None),
        _kinds(
            (("run",), "count"),
            (("month", "method", "line"), "text"),
            # simulate's accounting.csv: month x line, run 0's amount and the spread over runs
            (REVENUE_COLUMNS + PROVISION_COLUMNS + ("sales", "recognised_to_date", "run_0", "mean", "p5", "p50", "p95"), "money"),
            (("points_*",), "points"),
        ),
        frozen_columns=2,
    ),
    Sheet(
        "triangles",
        lambda r: getattr(r, "triangles", None),
        _kinds(
            (("tier", "cohort"), "text"),
            (("run", "development"), "count"),
            (("earned", "clawed_back", "redeemed", "expired", "ultimate_redeemed"), "points"),
            (("*_share", "urr", "std_error"), "ratio"),
        ),
        frozen_columns=2,
    ),
    Sheet("urr", lambda r: getattr(r, "urr", None), URR_COLUMNS, frozen_columns=1),
    Sheet("urr_by_tier", lambda r: getattr(r, "urr_by_tier", None), URR_COLUMNS, frozen_columns=2),
    Sheet(
        "rewards",
        lambda r: r.rewards,
        _kinds((("reward",), "text"), (("count", "count_p5", "count_p95"), "count"), (("points",), "points"), (("cost", "partner_share"), "money")),
        frozen_columns=1,
    ),
    Sheet(
        "segments",  # segments.csv (simulator.segments)
        lambda r: getattr(r, "segments", None),
        _kinds(
            (("dimension", "group"), "text"),
            (("customers", "members"), "count"),
            (("points_*",), "points"),
            (("reward_cost", "partner_funded", "liability", "program_cost*", "revenue_*", "cost_per_member"), "money"),
            (("cost_share_of_revenue",), "ratio"),
        ),
        frozen_columns=2,
    ),
    Sheet("assumptions", assumptions_frame, _kinds((("section", "key"), "text"), (("value",), "value")), frozen_columns=2),
)


# --- the cells -----------------------------------------------------------------------------------


def kind_formats(decimals: int, currency: str) -> dict[str, str]:
    """Each kind's Excel number format ("" for none). Money: thousands, the currency's decimals and
    its code; a rate (a ratio such as 0.450124, shown to 6 decimals in summary.json) as a
    percentage with 4 decimals, which shows every digit it has."""
    money = "#,##0" + ("." + "0" * decimals if decimals else "")
    return {
        "count": "#,##0",
        "points": "#,##0",
        "fraction": "#,##0.00",  # a count's or points' mean over runs that is not whole
        "money": f'{money} "{currency}"',
        "ratio": "0.0000%",
        "percent": '0.0000"%"',
        "number": "",
        "text": "",
    }


def cell_values(values: pd.Series, kind: str, decimals: int) -> list:
    """A column's cells as Python values: numbers as int or float (money from integer minor units
    exactly, by way of Decimal), text as str, missing as None."""
    if kind == "money" and pd.api.types.is_integer_dtype(values.dtype):
        # Integer money is in minor units (the toolkit's exact form): scaled exactly, then the nearest double.
        return [float(Decimal(int(v)).scaleb(-decimals)) for v in values.tolist()]
    if values.dtype.kind in "iu":
        return values.tolist()
    if values.dtype.kind == "f":
        return [None if v != v else v for v in values.tolist()]  # (NaN is the one value unequal to itself)
    out = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
            out.append(None)
        elif isinstance(v, Decimal):
            out.append(float(v))
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v)
    return out


def rule_kind(column, sheet: Sheet) -> str | None:
    """The kind the sheet's first rule naming `column` gives it (None: no rule names it)."""
    for pattern, kind in sheet.kinds:
        if fnmatchcase(str(column), pattern):
            return kind
    return None


def kind_by_values(values: pd.Series) -> str:
    """A column no rule names: Decimals are money in currency units (as the toolkit keeps money for
    people: monthly.csv's), integers counts, other numbers plain numbers, anything else text."""
    if values.dtype.kind in "iu":
        return "count"
    if values.dtype.kind == "f":
        return "number"
    present = values.dropna()
    if len(present) and all(isinstance(v, Decimal) for v in present):
        return "money"
    if len(present) and all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in present):
        return "number"
    return "text"


def cell_kind(kind: str, value) -> str:
    """The kind one cell is written as: text for a text value (in any column), a whole number's
    format only for a whole value."""
    if isinstance(value, str):
        return "text"
    if kind == "value":  # (a scenario's value: a seed of 20260101 reads better without separators)
        return "number"
    if kind in ("count", "points") and isinstance(value, float) and not value.is_integer():
        return "fraction"
    return kind


def shown(value, fmt: str, decimals: int, currency: str) -> str:
    """About what a cell shows, for its column's width."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if fmt in ("ratio", "percent"):
        return f"{value:,.4f} %"
    if fmt == "money":
        return f"{value:,.{decimals}f} {currency}"
    if fmt == "fraction":
        return f"{value:,.2f}"
    if fmt in ("count", "points") or float(value).is_integer():
        return f"{value:,.0f}"
    return repr(value)


def column_width(header: str, values: list, kinds: list, decimals: int, currency: str) -> int:
    """About the widest thing the column shows: its header, its longest text, and its largest and
    smallest number as formatted (each number's own width is not needed: the extremes are widest)."""
    width = len(header)
    texts = [len(v) for v in values if isinstance(v, str)]
    numbers = [(v, k) for v, k in zip(values, kinds, strict=True) if v is not None and k != "text"]
    if texts:
        width = max(width, max(texts))
    if numbers:
        for v, k in (max(numbers, key=lambda n: n[0]), min(numbers, key=lambda n: n[0])):
            width = max(width, len(shown(v, k, decimals, currency)))
        # A fraction shows two decimals more than a whole number of its column.
        width += 3 if any(k == "fraction" for _, k in numbers) and not all(k == "fraction" for _, k in numbers) else 0
    return width


def write_frame(workbook, sheet: Sheet, frame: pd.DataFrame, formats: dict, decimals: int, currency: str) -> None:
    """One sheet: the frame's columns (those not starting with `_`) under a bold frozen header."""
    ws = workbook.add_worksheet(sheet.name)
    row_kinds = frame[ROW_KIND].tolist() if ROW_KIND in frame.columns else None
    shown_cols = [c for c in frame.columns if not str(c).startswith("_")]
    # Text cells (and headers) that a spreadsheet could run get their leading apostrophe, as in the CSVs.
    safe = formula_safe(frame[shown_cols])
    for j, (column, header) in enumerate(zip(shown_cols, safe.columns, strict=True)):
        kind = rule_kind(column, sheet) or kind_by_values(safe.iloc[:, j])
        values = cell_values(safe.iloc[:, j], kind, decimals)
        ws.write_string(0, j, str(header), formats["header"])
        kinds = [cell_kind(k, v) for k, v in zip(row_kinds if kind == BY_ROW else [kind] * len(values), values, strict=True)]
        for i, (v, k) in enumerate(zip(values, kinds, strict=True), start=1):
            if v is None:
                continue
            if k == "text":
                ws.write_string(i, j, v, formats["text"])
            else:
                ws.write_number(i, j, v, formats[k])
        ws.set_column(j, j, min(column_width(str(header), values, kinds, decimals, currency) + 2, WIDEST))
    ws.freeze_panes(1, sheet.frozen_columns)
    ws.autofilter(0, 0, max(len(frame), 1), max(len(shown_cols) - 1, 0))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while a workbook is built, then as it was.

    XlsxWriter keeps each cell as a small tuple until the file is closed: some 25,000 on the bundled
    sample. Kept alive that long, they count towards a full collection, which then walks every
    object the process holds (the simulation's, matplotlib's after the report): more than the
    workbook itself costs (0.15 s against 0.11 s). The cells form no cycles and are freed by
    reference counting when the workbook closes, so nothing is left for the collector to find."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def write_sheets(subject, sheets: tuple[Sheet, ...], path: str | Path, *, title: str, decimals: int, currency: str) -> Path:
    """Write a workbook at `path` with one sheet per row of `sheets` whose frame `subject` has."""
    with _collector_paused():
        return _write_sheets(subject, sheets, Path(path), title, decimals, currency)


def _write_sheets(subject, sheets: tuple[Sheet, ...], path: Path, title: str, decimals: int, currency: str) -> Path:
    options = {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    workbook = xlsxwriter.Workbook(str(path), options)
    workbook.set_properties({"title": formula_safe(pd.DataFrame({"t": [title]}))["t"].iloc[0], "created": CREATED})
    formats = {k: workbook.add_format({"num_format": f} if f else {}) for k, f in kind_formats(decimals, currency).items()}
    formats["header"] = workbook.add_format({"bold": True, "bottom": 1})
    for sheet in sheets:
        frame = sheet.frame(subject)
        if frame is not None:
            write_frame(workbook, sheet, frame, formats, decimals, currency)
    try:
        workbook.close()
    except xlsxwriter.exceptions.FileCreateError as exc:
        # XlsxWriter's wrapper of the OSError: unwrapped, so the callers report it as any failed write.
        raise OSError(str(exc.__context__ or exc)) from None
    return path


def write_workbook(result, path: str | Path) -> Path:
    """Write `result`'s report.xlsx at `path`: one sheet per `SHEETS` row whose frame the result has."""
    title = f"{result.summary.get('program', '')}: simulation"
    return write_sheets(result, SHEETS, path, title=title, decimals=result.program.model.decimals, currency=result.currency)


# --- compare.xlsx --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """`loyalty compare`'s simulations (same data, runs and seed) and the names they are shown by."""

    results: list
    names: list[str]


def comparison_frame(c: Comparison) -> pd.DataFrame:
    """Every summary.json figure of any of the simulations: figure, label, unit, then each one's
    P5, P50, P95 and mean, and each but the first one's P50 less the first's (the columns of
    compare.csv); a figure one simulation lacks (a tier of its own) is empty there."""
    frames = [summary_frame(r).set_index("figure") for r in c.results]
    figures = list(dict.fromkeys(f for frame in frames for f in frame.index))
    first = pd.concat(frames)[["label", "unit", ROW_KIND]]
    out = first[~first.index.duplicated()].reindex(figures)
    for name, frame in zip(c.names, frames, strict=True):
        for q, shown_as in QUANTILES:
            out[f"{name} {q}"] = frame[shown_as].reindex(figures)
    for name in c.names[1:]:
        out[f"{name} diff_p50"] = [metrics.difference(a, b) for a, b in zip(out[f"{name} p50"], out[f"{c.names[0]} p50"], strict=True)]
    return out.rename_axis("figure").reset_index()


def comparison_assumptions(c: Comparison) -> pd.DataFrame:
    """Each simulation's assumptions sheet, one after another, with its name in front."""
    return pd.concat([assumptions_frame(r).assign(program=n)[["program", "section", "key", "value"]] for r, n in zip(c.results, c.names, strict=True)], ignore_index=True)


COMPARE_SHEETS = (
    Sheet("comparison", comparison_frame, _kinds((("figure", "label", "unit"), "text"), ("* p5", BY_ROW), ("* p50", BY_ROW), ("* p95", BY_ROW), ("* mean", BY_ROW), ("* diff_p50", BY_ROW)), frozen_columns=2),
    Sheet("assumptions", comparison_assumptions, _kinds((("program", "section", "key"), "text"), (("value",), "value")), frozen_columns=3),
)


def write_comparison(results: list, names: list[str], path: str | Path) -> Path:
    """Write `loyalty compare`'s compare.xlsx at `path` (`COMPARE_SHEETS`)."""
    first = results[0]
    return write_sheets(Comparison(results, names), COMPARE_SHEETS, path, title="comparison", decimals=first.program.model.decimals, currency=first.currency)
