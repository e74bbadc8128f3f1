"""The pilot file of `loyalty calibrate`: which transactions, who was treated, who was the control, when.

    transactions: pilot_transactions.csv   # required; relative paths are taken from the pilot file
    customers: customers.csv               # optional: only to mark the groups by a customers column
    columns: {customer_id: member_no}      # optional: canonical name -> your column, as a scenario's
    timestamp_format: "%d/%m/%Y"           # optional, as a scenario's
    treated: treated.txt                   # a file of customer ids, one a line ...
    control: {column: pilot_group, value: control}   # ... or the customers whose column holds the value
    start: 2026-03-02                      # the pilot's first day
    end: 2026-04-26                        # its last day
    pre_start: 2026-01-05                  # optional: the pre-period's first day (default: as long as the pilot, just before it)

The YAML is read with the scenario's bounded safe loader (simulator.scenario): anchors, aliases,
tags that build objects, over-large files and keys given twice are refused, and every mistake is
reported as `file:line:col: error: key: what was expected`, all of them at once.
A group's column is looked for in the transactions (a customer is in the group when any of their
rows holds the value), else in the customers file; values are compared as text, edge spaces
stripped. A list file holds one customer id a line; blank lines and lines starting with `#` are
skipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from simulator.scenario import (
    FIRST_DAY,
    LAST_DAY,
    SHOWN_CHARS,
    ScenarioError,
    _clip,
    _columns,
    _Ctx,
    _exists,
    _path,
    _shown,
    _timestamp_format,
    _unknown,
    parse_yaml,
    read_yaml_file,
)

MAX_DAYS = 3660  # the pre-period and the pilot together: ten years (a pilot runs weeks or months)
MAX_LIST_BYTES = 256 * 1024 * 1024  # a list of customer ids: millions of lines fit in far less


@dataclass(frozen=True)
class Group:
    """Who is in a group: the ids in `ids_file`, or the customers whose `column` holds `value`."""

    key: str  # `treated` or `control`
    ids_file: Path | None = None
    column: str | None = None
    value: str | None = None

    def describe(self) -> str:
        return f"listed in {self.ids_file}" if self.ids_file is not None else f"{self.column} = {self.value}"


@dataclass(frozen=True)
class Pilot:
    """A validated pilot file."""

    transactions: Path
    treated: Group
    control: Group
    start: dt.date
    end: dt.date
    pre_start: dt.date
    customers: Path | None = None
    columns: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timestamp_format: str | None = None
    source: str = "<pilot>"
    marks: Mapping[tuple, tuple[int, int]] = field(default_factory=dict, repr=False)

    def error(self, path: tuple, message: str) -> ScenarioError:
        """An error about the value at `path` (`("treated", "column")`), placed at its line:col."""
        return _Ctx(self.source, self.marks).fail(path, message)


def load_pilot(path: str | Path) -> Pilot:
    """Read and validate a pilot YAML file (a regular file of at most `MAX_BYTES`)."""
    p = Path(path)
    return loads_pilot(read_yaml_file(p, "pilot", "pilot file"), str(p), p.parent)


def loads_pilot(text: str, source: str = "<pilot>", base_dir: str | Path = ".") -> Pilot:
    """Like `load_pilot`, from YAML text."""
    data, ctx = parse_yaml(text, source, "pilot file")
    return _build(data, Path(base_dir), ctx)


def _day(value, path, ctx) -> dt.date:
    expected = "a date like 2026-03-02"
    if isinstance(value, dt.datetime):
        raise ctx.fail(path, f"expected {expected} (a day, without a time), got {_shown(str(value))}")
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ctx.fail(path, f"expected {expected}, got {_shown(value)}") from None
    if not isinstance(value, dt.date):
        raise ctx.fail(path, f"expected {expected}, got {_shown(value)}")
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ctx.fail(path, f"{value} is outside the days the simulator can hold, {FIRST_DAY} to {LAST_DAY}")
    return value


def _group(value, path, ctx) -> dict:
    expected = "a file of customer ids (one a line), or `{column: NAME, value: VALUE}` naming the column that marks the group"
    if isinstance(value, str):
        return {"ids_file": _path()(value, path, ctx)}
    if not isinstance(value, dict):
        raise ctx.fail(path, f"expected {expected}, got {_shown(value)}")
    _unknown(value, ("column", "value"), path, ctx)
    out = {}
    for key in ("column", "value"):
        v = value.get(key)
        if v is None:
            raise ctx.fail(path, f"`{key}` is missing; expected {expected}")
        if isinstance(v, bool) or not isinstance(v, str | int | float) or not str(v).strip():
            raise ctx.fail(path + (key,), f"expected {'a column name' if key == 'column' else 'the value that marks the group'} (text), got {_shown(v)}")
        out[key] = str(v).strip()
    return out


_TOP = ("transactions", "customers", "columns", "timestamp_format", "treated", "control", "start", "end", "pre_start")


def _build(d, base_dir: Path, ctx: _Ctx) -> Pilot:
    if not isinstance(d, dict):
        raise ctx.fail((), f"expected a mapping of keys ({', '.join(_TOP)}), got {_shown(d)}")
    _unknown(d, _TOP, (), ctx)
    for key in ("transactions", "treated", "control", "start", "end"):
        if d.get(key) is None:
            ctx.problems.append(ctx.fail((key,) if key in d else (), f"`{key}` is missing; a pilot needs transactions, treated, control, start and end"))
    paths = {}
    for key in ("transactions", "customers"):
        if d.get(key) is not None:
            rel = ctx.attempt(_path(), d[key], (key,), ctx)
            if rel is not None:
                paths[key] = _existing(base_dir / rel, (key,), ctx)
    columns = ctx.attempt(_columns, d.get("columns"), ("columns",), ctx, default=MappingProxyType({}))
    fmt = ctx.attempt(_timestamp_format, d["timestamp_format"], ("timestamp_format",), ctx) if d.get("timestamp_format") is not None else None
    groups = {}
    for key in ("treated", "control"):
        if d.get(key) is not None:
            g = ctx.attempt(_group, d[key], (key,), ctx)
            if g is not None and "ids_file" in g:
                g["ids_file"] = _existing(base_dir / g["ids_file"], (key,), ctx)
            groups[key] = Group(key, **g) if g is not None else None
    days = {key: ctx.attempt(_day, d[key], (key,), ctx) for key in ("start", "end", "pre_start") if d.get(key) is not None}
    start, end = days.get("start"), days.get("end")
    if start and end and end < start:
        ctx.problems.append(ctx.fail(("end",), f"the pilot ends ({end}) before it starts ({start})"))
    pre_start = days.get("pre_start")
    if start and end and pre_start is None:
        pre_start = start - (end - start + dt.timedelta(days=1))
        if pre_start < FIRST_DAY:
            ctx.problems.append(ctx.fail(("start",), "the pre-period (as long as the pilot, before it) starts before the first day the simulator holds; give `pre_start`"))
    if start and pre_start and pre_start >= start:
        ctx.problems.append(ctx.fail(("pre_start",), f"the pre-period must start before the pilot ({start}), got {pre_start}"))
    if end and pre_start and (end - pre_start).days + 1 > MAX_DAYS:
        key = "pre_start" if days.get("pre_start") else "end"
        ctx.problems.append(ctx.fail((key,), f"the pre-period and the pilot span {(end - pre_start).days + 1:,} days; at most {MAX_DAYS:,} (ten years) are estimated at once"))
    ctx.settle()
    return Pilot(
        transactions=paths["transactions"],
        treated=groups["treated"],
        control=groups["control"],
        start=start,
        end=end,
        pre_start=pre_start,
        customers=paths.get("customers"),
        columns=columns,
        timestamp_format=fmt,
        source=ctx.source,
        marks=dict(ctx.marks),
    )


def _existing(p: Path, path: tuple, ctx: _Ctx) -> Path:
    if not _exists(p):
        ctx.problems.append(ctx.fail(path, f"no such file: {_clip(str(p), 3 * SHOWN_CHARS)} (paths are relative to the pilot file)"))
    return p


def read_ids(group: Group, pilot: Pilot) -> np.ndarray:
    """The customer ids listed in a group's file (one a line; blank lines and `#` comments skipped)."""
    p = group.ids_file
    try:
        if not p.is_file():
            raise pilot.error((group.key,), f"{p} is not a regular file; name a file of customer ids")
        with p.open("rb") as f:
            data = f.read(MAX_LIST_BYTES + 1)
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise pilot.error((group.key,), f"{p} is not UTF-8 text ({_clip(str(exc), 120)}); save it as UTF-8") from None
    except OSError as exc:
        raise pilot.error((group.key,), f"cannot read {p} ({_clip(str(exc), 200)})") from None
    if len(data) > MAX_LIST_BYTES:
        raise pilot.error((group.key,), f"{p} is larger than {MAX_LIST_BYTES:,} bytes; a list of customer ids needs far less")
    lines = pd.Series(text.splitlines(), dtype=object).str.strip()
    ids = lines[(lines != "") & ~lines.str.startswith("#")]
    if ids.empty:
        raise pilot.error((group.key,), f"{p} lists no customer ids; write one id a line")
    return pd.unique(ids.to_numpy(dtype=object))


def group_ids(group: Group, pilot: Pilot, transactions: pd.DataFrame, customers: pd.DataFrame | None) -> np.ndarray:
    """The customer ids of a group: its file's, or those whose column holds its value."""
    if group.ids_file is not None:
        return read_ids(group, pilot)
    # The column by the name the file gives it, or by the canonical name it is mapped to.
    mapped = {yours: canonical for canonical, yours in pilot.columns.items()}
    for frame in (transactions, customers):
        if frame is None:
            continue
        name = group.column if group.column in frame.columns else mapped.get(group.column)
        if name is not None and name in frame.columns:
            values = frame[name].astype("string").str.strip()
            hit = (values == group.value).fillna(False).to_numpy(dtype=bool)
            ids = pd.unique(frame["customer_id"].to_numpy(dtype=object)[hit])
            if not len(ids):
                seen = values.dropna().unique()[:8]
                raise pilot.error(
                    (group.key, "value"),
                    f"no customer has {_clip(group.value)} in column {_clip(group.column)}; its values include: {', '.join(_clip(str(v), 20) for v in seen)}",
                )
            return ids
    where = "the transactions or the customers file" if customers is not None else "the transactions (name a customers file with `customers:` if the column is there)"
    available = sorted(set(transactions.columns) | (set(customers.columns) if customers is not None else set()))
    raise pilot.error((group.key, "column"), f"no column {_clip(group.column)} in {where}; columns: {', '.join(_clip(c, 30) for c in available[:30])}")
