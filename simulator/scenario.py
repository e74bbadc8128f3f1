"""Scenario YAML -> `Scenario`: the simulation's assumptions, validated, with defaults.

Every key is optional. Paths are relative to the YAML file. Problems raise `ScenarioError`
naming the file, the key path (`redemption.probability`), the line:col of the value, what was
expected and, for unknown keys, the nearest known one. The YAML is read with the safe loader only,
bounded (`_ScenarioLoader`): a scenario is a few dozen plain values, so anchors, aliases, merge keys
and tags that build objects are refused, and so are files over `MAX_BYTES`, more than `MAX_NODES`
values, nesting deeper than `MAX_DEPTH` and a key given twice. Values shown in messages are cut to
`SHOWN_CHARS` with unprintable characters escaped.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from rulelang.errors import LoyaltyError


class ScenarioError(LoyaltyError):
    """A scenario file (or command-line override) that cannot be used."""


# --- sections -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """The stretch of history to replay: both days included."""

    start: dt.date
    end: dt.date

    def __str__(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


@dataclass(frozen=True)
class Enrollment:
    """Who joins: a `share` of customers, picked `random`ly, the `top_spenders` first, or at random
    among the customers of the RFM `segments` named (`pick: segment`, simulator.segments)."""

    share: float = 1.0
    pick: str = "random"
    segments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Calibrated:
    """Where a calibrated block came from, as `loyalty calibrate` records it in the block's `source:`
    key: `{pilot: FILE}` (a response block) or `{ledger: FILE}` (a redemption block)."""

    kind: str  # `pilot` or `ledger`
    file: str

    def to_dict(self) -> dict:
        return {self.kind: self.file}


@dataclass(frozen=True)
class Redemption:
    """After each visit a member who can afford a reward redeems with `probability`, choosing by `choice`."""

    probability: float = 0.3
    choice: str = "cheapest"
    source: Calibrated | None = None  # measured from a ledger by `loyalty calibrate --ledger`; None: typed or the default
    # A program with `pay with points`: the chance a member pays a purchase basket partly with
    # points (docs/semantics.md, "Paying with points"); a history with `points_paid` is replayed instead.
    pay_with_points: float = 0.0


@dataclass(frozen=True)
class GoalGradient:
    """Members within `within` (a share of the points needed) of a reward spend `uplift` more."""

    within: float
    uplift: float


@dataclass(frozen=True)
class Normal:
    """An uplift known only as a distribution (as `loyalty calibrate` writes it): each Monte Carlo
    run draws its own from Normal(mean, sd)."""

    mean: float
    sd: float

    def quantile(self, u: float) -> float:
        """The value at probability `u` in (0, 1)."""
        from statistics import NormalDist

        return self.mean + self.sd * NormalDist().inv_cdf(u) if self.sd > 0 else self.mean


# The simulator.rng stream of the per-run uplift draws (counter 0: spend, 1: visits); other
# streams: enrolment 11, redemption 21-22, visits 31-32, the forecast 61-66 and 71-73.
STREAM_UPLIFT = 41


class SegmentUplift(Mapping):
    """A spend uplift by RFM segment (simulator.segments), read-only: `{At risk: 0.05, Champions: 0.01}`.
    A segment it does not name has no uplift."""

    def __init__(self, uplifts: Mapping[str, float]):
        self._uplifts = dict(uplifts)

    def __getitem__(self, name: str) -> float:
        return self._uplifts[name]

    def __iter__(self):
        return iter(self._uplifts)

    def __len__(self) -> int:
        return len(self._uplifts)

    def __eq__(self, other) -> bool:
        return isinstance(other, SegmentUplift) and self._uplifts == other._uplifts

    def __hash__(self) -> int:
        return hash(tuple(self._uplifts.items()))

    def __repr__(self) -> str:
        return f"SegmentUplift({self._uplifts!r})"


@dataclass(frozen=True)
class Response:
    """Behaviour change of members: spend uplift (one number, per tier, or a distribution), visit
    uplift (one number or a distribution), goal gradient."""

    spend_uplift: float | Mapping[str, float] | Normal = 0.0
    visit_uplift: float | Normal = 0.0
    goal_gradient: GoalGradient | None = None
    source: Calibrated | None = None  # measured from a pilot by `loyalty calibrate`; None: typed or the default

    def spend_uplift_for(self, tier: str) -> float:
        """The spend uplift of a tier (0 for a tier the mapping does not name; a distribution's mean;
        0 for every tier when the uplift is by segment)."""
        if isinstance(self.spend_uplift, SegmentUplift):
            return 0.0
        if isinstance(self.spend_uplift, Normal):
            return self.spend_uplift.mean
        if isinstance(self.spend_uplift, Mapping):
            return float(self.spend_uplift.get(tier, 0.0))
        return float(self.spend_uplift)

    def for_run(self, seed: int, run: int) -> Response:
        """The response of Monte Carlo run `run`: each uplift given as a distribution drawn from the
        run's own counter-based stream (the same seed and run, the same draw), a drawn spend uplift
        below -1 taken as -1 and a drawn visit uplift outside [0, 1] as the nearer end; plain
        numbers as they are (this very response, when none is a distribution)."""
        if not isinstance(self.spend_uplift, Normal) and not isinstance(self.visit_uplift, Normal):
            return self
        import numpy as np

        from simulator import rng

        u = rng.uniform(seed, run, np.zeros(2, dtype=np.uint64), np.arange(2, dtype=np.uint64), STREAM_UPLIFT)
        u = u + 2.0**-54  # draws are multiples of 2**-53 in [0, 1): moved to the middle of their step, inside (0, 1)
        spend, visits = self.spend_uplift, self.visit_uplift
        if isinstance(spend, Normal):
            spend = max(spend.quantile(float(u[0])), -1.0)
        if isinstance(visits, Normal):
            visits = min(max(visits.quantile(float(u[1])), 0.0), 1.0)
        return Response(spend_uplift=spend, visit_uplift=visits, goal_gradient=self.goal_gradient)


@dataclass(frozen=True)
class Accounting:
    """How the program is accounted for (simulator.finance.accounting): `deferred_revenue`
    (IFRS 15 / ASC 606, points valued at `value_per_point`) or `cost` (a provision at the program's
    point cost); `expected_redemption` is "estimated" (each run's URR at each month's end) or a rate."""

    method: str
    value_per_point: float | None = None
    expected_redemption: str | float = "estimated"


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. `transactions=None` means the bundled sample data."""

    program: Path | None = None
    transactions: Path | None = None
    customers: Path | None = None
    columns: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    period: Period | None = None
    enrollment: Enrollment = Enrollment()
    redemption: Redemption = Redemption()
    response: Response = Response()
    margin: float = 0.6
    runs: int = 100
    seed: int = 0
    source: str = "<scenario>"
    timestamp_format: str | None = None  # strftime layout of the data's dates (None: ISO 8601)
    horizon: int | None = None  # months forecast after the history (simulator.horizon); None: the history only
    # The keys (dotted: `redemption.probability`) given rather than defaulted, and where: `scenario`
    # (the file or mapping) or `command line` (simulator.provenance tells the report).
    typed: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    accounting: Accounting | None = None  # None: no accounting outputs
    acquisition: float | None = None  # new customers per month in the horizon (simulator.acquisition); None: the history's rate
    # Where the runs go (simulator.cluster): `local:N` or a Dask scheduler's address; None: this
    # machine. How, not what: not an assumption, so not in `to_dict` (summary.json is the same).
    cluster: str | None = field(default=None, compare=False)
    # The share of automatic vouchers used (`vouchers.use_rate`); None: every one (1), and absent
    # from `to_dict`, so a scenario without it reads as before.
    voucher_use_rate: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping | None, base_dir: str | Path = ".", source: str = "<scenario>", _marks=None) -> Scenario:
        """Validate a plain mapping (as from YAML); relative paths are taken from `base_dir`."""
        return _build(d, Path(base_dir), _Ctx(source, _marks or {}))

    def with_overrides(self, **flags) -> Scenario:
        """A copy with command-line values in place of the file's (None means not given).

        Names are keys (`runs`, `seed`, `margin`, `period`, `program`, ...) or section keys with a
        dot or underscore (`redemption.probability`, `enrollment_share`); paths are taken as given
        (relative to the working directory).
        """
        raw = self.to_dict()
        typed = dict(self.typed)
        for name, value in flags.items():
            if value is None:
                continue
            path = _flag_path(name)
            typed[".".join(path)] = "command line"
            target = raw
            for part in path[:-1]:
                if not isinstance(target.get(part), dict):
                    target[part] = {}
                target = target[part]
            target[path[-1]] = str(value) if path[-1] in _PATH_KEYS else value
        built = _build(raw, Path("."), _Ctx("command line", {}), keep_source=self.source)
        return replace(built, typed=MappingProxyType(typed), cluster=self.cluster)

    def to_dict(self) -> dict:
        """The assumptions as plain values, keys in a fixed order (for reports and overrides)."""
        rs = self.response
        out: dict[str, Any] = {
            "program": _path_text(self.program),
            "transactions": _path_text(self.transactions),
            "customers": _path_text(self.customers),
            "columns": dict(sorted(self.columns.items())),
            "period": str(self.period) if self.period else None,
            "enrollment": {"share": self.enrollment.share, "pick": self.enrollment.pick}
            | ({"segments": list(self.enrollment.segments)} if self.enrollment.pick == "segment" else {}),
            "redemption": {"probability": self.redemption.probability, "choice": self.redemption.choice},
            "response": {
                "spend_uplift": _uplift_dict(rs.spend_uplift),
                "visit_uplift": _uplift_dict(rs.visit_uplift),
                "goal_gradient": (
                    {"within": rs.goal_gradient.within, "uplift": rs.goal_gradient.uplift} if rs.goal_gradient else None
                ),
            },
            "margin": self.margin,
            "runs": self.runs,
            "seed": self.seed,
        }
        if self.timestamp_format is not None:  # (absent by default: reports of ISO data are as they were)
            out["timestamp_format"] = self.timestamp_format
        if self.horizon is not None:  # (absent by default, likewise)
            out["horizon"] = f"{self.horizon} months"
        if self.redemption.pay_with_points:  # (absent when 0: reports of programs without it are as they were)
            out["redemption"]["pay_with_points"] = self.redemption.pay_with_points
        for section, block in (("response", rs), ("redemption", self.redemption)):
            if block.source is not None:  # (absent unless calibrated, likewise)
                out[section]["source"] = block.source.to_dict()
        if self.accounting is not None:  # (absent by default, likewise)
            a = self.accounting
            out["accounting"] = {"method": a.method, "expected_redemption": a.expected_redemption}
            if a.value_per_point is not None:
                out["accounting"]["value_per_point"] = a.value_per_point
        if self.acquisition is not None:  # (absent by default, likewise)
            out["acquisition"] = {"per_month": self.acquisition}
        if self.voucher_use_rate is not None:  # (absent by default, likewise)
            out["vouchers"] = {"use_rate": self.voucher_use_rate}
        return out

    def data_paths(self) -> tuple[Path, Path | None]:
        """(transactions, customers) to read: the scenario's, or the bundled sample when it names none."""
        if self.transactions is not None:
            return self.transactions, self.customers
        from simulator.sample_data import bundled_paths

        tx, cust = bundled_paths()
        return tx, self.customers if self.customers is not None else cust


def read_yaml_file(path: str | Path, what: str, noun: str) -> str:
    """The text of a `what` ("scenario", "pilot") YAML file: a regular file of at most `MAX_BYTES`
    of UTF-8, or a ScenarioError naming the file (`noun`: what a too large one is called)."""
    p = Path(path)
    try:
        if not p.is_file():  # a FIFO or a device would block or never end
            reason = f"no such {what} file" if not p.exists() else f"not a regular file; name a {what} YAML file"
            raise ScenarioError(f"{p}: error: {reason}")
        with p.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{p}: error: cannot read the {what} file ({_clip(str(exc), 200)})") from None
    if len(data) > MAX_BYTES:
        raise ScenarioError(_too_big(str(p), noun))
    return text


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file (a regular file of at most `MAX_BYTES`)."""
    p = Path(path)
    return loads_scenario(read_yaml_file(p, "scenario", "scenario"), str(p), p.parent)


def loads_scenario(text: str, source: str = "<scenario>", base_dir: str | Path = ".") -> Scenario:
    """Like `load_scenario`, from YAML text."""
    data, ctx = parse_yaml(text, source, "scenario")
    return _build(data, Path(base_dir), ctx)


def parse_yaml(text: str, source: str, noun: str) -> tuple[object, _Ctx]:
    """YAML text (at most `MAX_BYTES`; `noun`: what a too large one is called) through the bounded
    loader: its values and a context that places each key's line:col in errors."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ScenarioError(_too_big(source, noun))
    try:
        loader = _ScenarioLoader(text)  # its reader refuses characters YAML does not allow, here
        try:
            node = loader.get_single_node()  # parsed once: the node graph gives the positions, then the values
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ScenarioError(_yaml_problem(exc, text, source)) from None
    ctx = _Ctx(source, {})
    if node is not None:
        _collect_marks(node, (), ctx, loader)
    return data, ctx


# --- reading YAML, bounded ----------------------------------------------------------------------

MAX_BYTES = 1024 * 1024  # a scenario is a few hundred bytes; comments and all, far below this
MAX_NODES = 10_000  # values (scalars, lists, mappings); a scenario has a few dozen
MAX_DEPTH = 32  # levels of nesting; a scenario uses three
SHOWN_CHARS = 80  # the most of one value a message shows
MAX_PROBLEMS = 50  # problems listed in one error
_MAX_NUMBER_CHARS = 64  # a longer whole number is beyond every limit (and Python's str() of it may refuse)
_ALLOWED_TAGS = frozenset(yaml.SafeLoader.yaml_constructors) - {None}
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NOT_READ_AS = {  # what a scalar of a tag is read as, for "cannot read ... as ..."
    "tag:yaml.org,2002:int": "a whole number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "true or false",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:binary": "base64 data",
}


class _Refused(yaml.MarkedYAMLError):
    """YAML that is well formed but has no place in a scenario (the message is the whole problem)."""

    def __init__(self, mark, problem: str):
        super().__init__(problem=problem, problem_mark=mark)


class _ScenarioLoader(yaml.SafeLoader):
    """The safe loader with bounds, checked on the events before any value is built.

    Anchors and aliases are refused rather than limited: a scenario has no value worth sharing, an
    alias is the one way a few hundred bytes expand to gigabytes ("billion laughs"), and a value
    reached by two paths would have no single line:col to report.
    """

    def __init__(self, text: str):
        super().__init__(text)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
            sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
            raise _Refused(event.start_mark, f"`{sign}{_clip(event.anchor)}`: anchors and aliases are not allowed in a scenario; write the value out in full")
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in _ALLOWED_TAGS:
            raise _Refused(event.start_mark, f"the tag `{_clip(_short_tag(tag))}` is not allowed in a scenario; write plain text, numbers, true/false, lists and mappings")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Refused(event.start_mark, f"more than {MAX_NODES:,} values; a scenario has a few dozen")
        nests = isinstance(event, yaml.CollectionStartEvent)
        self._depth += nests
        if self._depth > MAX_DEPTH:
            raise _Refused(event.start_mark, f"nested more than {MAX_DEPTH} levels deep; a scenario nests three at most")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= nests

    def flatten_mapping(self, node):
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                raise _Refused(key_node.start_mark, "`<<` merge keys are not allowed in a scenario; write the keys out in full")
        super().flatten_mapping(node)

    def construct_mapping(self, node, deep=False):
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(key_node.start_mark, "a key must be a name or a number, not a list or a mapping")
        return super().construct_mapping(node, deep)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError):
            # SafeConstructor's own conversions raise these on odd scalars (`2026-13-45`, `!!int x`)
            what = _NOT_READ_AS.get(node.tag, f"`{_clip(_short_tag(node.tag))}`")
            raise _Refused(node.start_mark, f"cannot read {_shown(str(node.value))} as {what}; quote it if it is text") from None

    def construct_yaml_int(self, node):
        if isinstance(node.value, str) and len(node.value) > _MAX_NUMBER_CHARS:
            raise _Refused(node.start_mark, f"a number of {len(node.value):,} characters is longer than any scenario value (at most {_MAX_NUMBER_CHARS})")
        return super().construct_yaml_int(node)


_ScenarioLoader.add_constructor("tag:yaml.org,2002:int", _ScenarioLoader.construct_yaml_int)


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _too_big(source: str, noun: str = "scenario") -> str:
    return f"{source}: error: the {noun} is larger than {MAX_BYTES:,} bytes (1 MiB); a {noun} needs a few hundred"


def _yaml_problem(exc: yaml.YAMLError, text: str, source: str) -> str:
    """The message of a YAML error: the place, and the problem in one line."""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow; it has an offset, not a mark
        line, col = _line_col(text, exc.position)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        return f"{source}:{line}:{col}: error: not valid YAML: the character {_clip(char)} (U+{ord(char):04X}) is not allowed in YAML; remove it"
    mark = getattr(exc, "problem_mark", None)
    where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    if problem.startswith("but ") and getattr(exc, "context", None):  # "expected a single document in the stream, but found another"
        problem = f"{exc.context}, {problem}"
    prefix = "" if isinstance(exc, _Refused) else "not valid YAML: "
    return f"{source}{where}: error: {prefix}{_clip(problem, 2 * SHOWN_CHARS)}"


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of `offset`, counting line breaks as YAML does (all before a bad character are YAML's)."""
    before = text[:offset].splitlines(keepends=True)
    if not before or before[-1] != before[-1].splitlines()[0]:
        return len(before) + 1, 1
    return len(before), len(before[-1]) + 1


# --- validation ---------------------------------------------------------------------------------

_PATH_KEYS = ("program", "transactions", "customers")
_KEY = Callable[[Any, tuple, "_Ctx"], Any]


@dataclass(frozen=True)
class _Ctx:
    source: str
    marks: Mapping[tuple, tuple[int, int]]
    problems: list = field(default_factory=list)  # every problem found, reported together

    def fail(self, path: tuple, message: str, key: bool = False, at: tuple[int, int] | None = None) -> ScenarioError:
        name = ".".join(_clip(str(part)) for part in path) or "(top level)"
        mark = at or self.marks.get(("key",) + path if key else path) or self.marks.get(path)
        where = f":{mark[0]}:{mark[1]}" if mark else ""
        exc = ScenarioError(f"{self.source}{where}: error: {name}: {message}")
        exc.at = mark or (float("inf"), 0)  # where it is, to report problems in file order
        return exc

    def attempt(self, check, *args, default=None):
        """check(*args), or `default` with its problem noted, so one mistake does not hide the next."""
        try:
            return check(*args)
        except ScenarioError as exc:
            self.problems.append(exc)
            return default

    def settle(self) -> None:
        """Raise every noted problem at once, in file order."""
        if self.problems:
            found = [str(p) for p in sorted(self.problems, key=lambda p: getattr(p, "at", (float("inf"), 0)))]
            if len(found) > MAX_PROBLEMS:  # the first ones are what a reader fixes first
                found[MAX_PROBLEMS:] = [f"{self.source}: error: {len(found) - MAX_PROBLEMS:,} more problems not shown"]
            raise ScenarioError("\n".join(found))


def _collect_marks(node, path: tuple, ctx: _Ctx, loader: yaml.SafeLoader) -> None:
    """Each value's and key's line:col by key path (the last of a key given twice, as the mapping keeps it); a key given twice is a problem."""
    ctx.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        first_line: dict = {}
        for knode, vnode in node.value:
            key = loader.construct_object(knode, deep=True)  # as the mapping holds it (`1` and `01` are one key)
            at = (knode.start_mark.line + 1, knode.start_mark.column + 1)
            if key in first_line:
                ctx.problems.append(ctx.fail(path + (key,), f"the key is given twice (first on line {first_line[key]}); keep one", key=True, at=at))
            first_line.setdefault(key, at[0])
            ctx.marks[("key",) + path + (key,)] = at
            _collect_marks(vnode, path + (key,), ctx, loader)
    elif isinstance(node, yaml.SequenceNode):  # (a list's items by position: `enrollment.segments`)
        for i, item in enumerate(node.value):
            _collect_marks(item, path + (i,), ctx, loader)


def _clip(text: str, limit: int = SHOWN_CHARS) -> str:
    """User text as a message shows it: unprintable characters escaped, at most `limit` characters."""
    head = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text[: limit + 1])
    return head if len(head) <= limit else head[: limit - 1] + "…"


def _shown(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return _clip(repr(value[: SHOWN_CHARS + 1]))
    if isinstance(value, int) and value.bit_length() > 200:  # str() of a long one is slow, or refused
        return f"a whole number of about {int(value.bit_length() * 0.30103):,} digits"
    return _clip(str(value))


def _number(lo: float | None, hi: float | None, what: str) -> _KEY:
    def check(value, path, ctx):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ctx.fail(path, f"expected {what}, got {_shown(value)}")
        if value != value or (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ctx.fail(path, f"{_shown(value)} is out of range; expected {what}")
        return float(value)

    return check


def _integer(lo: int, hi: int, what: str) -> _KEY:
    def check(value, path, ctx):
        if isinstance(value, bool) or not isinstance(value, int):
            hint = f" (write {int(value)})" if isinstance(value, float) and value.is_integer() and abs(value) <= hi else ""
            raise ctx.fail(path, f"expected {what}, got {_shown(value)}{hint}")
        if not lo <= value <= hi:
            raise ctx.fail(path, f"{_shown(value)} is out of range; expected {what}")
        return value

    return check


def _choice(options: tuple[str, ...]) -> _KEY:
    def check(value, path, ctx):
        if not isinstance(value, str) or value not in options:
            close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise ctx.fail(path, f"expected one of {' | '.join(options)}, got {_shown(value)}{hint}")
        return value

    return check


def _path() -> _KEY:
    def check(value, path, ctx):
        if not isinstance(value, str) or not value.strip():
            raise ctx.fail(path, f"expected a file path, got {_shown(value)}")
        if not value.isprintable():
            raise ctx.fail(path, f"a file path cannot hold control characters, got {_shown(value)}")
        return value

    return check


# The days a period may name: timestamps are datetime64[ns] (pandas.Timestamp.min is 1677-09-21
# 00:12:43, .max 2262-04-11 23:47:16), and the period ends at the midnight after its last day.
FIRST_DAY = dt.date(1677, 9, 22)
LAST_DAY = dt.date(2262, 4, 10)


def _period(value, path, ctx) -> Period:
    expected = "a period like `2026-01-01 to 2026-12-31` (both days included)"
    if not isinstance(value, str):
        raise ctx.fail(path, f"expected {expected}, got {_shown(value)}")
    m = re.fullmatch(r"\s*(\S+)\s+to\s+(\S+)\s*", value)
    if not m:
        raise ctx.fail(path, f"expected {expected}, got {_shown(value)}")
    days = []
    for text in m.groups():
        try:
            days.append(dt.date.fromisoformat(text))
        except ValueError:
            raise ctx.fail(path, f"`{_clip(text)}` is not a date; expected {expected}") from None
        if not FIRST_DAY <= days[-1] <= LAST_DAY:
            raise ctx.fail(path, f"{days[-1]} is outside the days the simulator can hold, {FIRST_DAY} to {LAST_DAY}")
    if days[1] < days[0]:
        raise ctx.fail(path, f"the period ends ({days[1]}) before it starts ({days[0]})")
    return Period(days[0], days[1])


def _timestamp_format(value, path, ctx) -> str:
    """A strftime layout that reads back what it writes, with a year, a month and a day, no zone."""
    expected = 'a strftime layout of the data\'s dates, like "%d/%m/%Y" or "%d/%m/%Y %H:%M"'
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(path, f"expected {expected}, got {_shown(value)}")
    if "%z" in value or "%Z" in value:
        raise ctx.fail(path, "time zones (%z, %Z) are not read; write the layout of the local time (see docs/simulator.md)")
    missing = [part for part, codes in (("year", "%Y %y"), ("month", "%m %b %B"), ("day", "%d")) if not any(c in value for c in codes.split())]
    if missing:
        raise ctx.fail(path, f"{_shown(value)} has no {' or '.join(missing)}; expected {expected}")
    import pandas as pd

    sample = dt.datetime(2026, 3, 14, 15, 9, 26, 535000)
    try:
        written = sample.strftime(value)
        back = pd.to_datetime(pd.Series([written]), format=value, errors="raise")[0]
    except (ValueError, TypeError):
        back = None
    if back is None or back.date() != sample.date():
        raise ctx.fail(path, f"{_shown(value)} does not read back the dates it writes; expected {expected}")
    return value


MAX_HORIZON_MONTHS = 1200


def _horizon(value, path, ctx) -> int:
    """`24 months` or `2 years`: the months forecast after the history's last day."""
    expected = f"a horizon like `24 months` or `2 years` (1 to {MAX_HORIZON_MONTHS} months)"
    m = re.fullmatch(r"\s*(\d{1,6})\s*(months?|years?)\s*", value) if isinstance(value, str) else None
    if not m:
        raise ctx.fail(path, f"expected {expected}, got {_shown(value)}")
    months = int(m.group(1)) * (12 if m.group(2).startswith("year") else 1)
    if not 1 <= months <= MAX_HORIZON_MONTHS:
        raise ctx.fail(path, f"{months} months is outside 1 to {MAX_HORIZON_MONTHS}; expected {expected}")
    return months


ACCOUNTING_METHODS = ("deferred_revenue", "cost")
_ACCOUNTING_EXAMPLE = "`{method: deferred_revenue, value_per_point: 0.01, expected_redemption: estimated}` or `{method: cost}`"


def _accounting(value, path, ctx) -> Accounting:
    """`{method: deferred_revenue, value_per_point: 0.01, expected_redemption: estimated | 0.9}` or `{method: cost}`."""
    if not isinstance(value, dict):
        raise ctx.fail(path, f"expected a section like {_ACCOUNTING_EXAMPLE}, got {_shown(value)}")
    method = value.get("method")
    if method not in ACCOUNTING_METHODS:
        at = path + ("method",) if "method" in value else path
        got = f"got {_shown(method)}" if "method" in value else "`method` is missing"
        raise ctx.fail(at, f"expected `method: deferred_revenue` (IFRS 15 / ASC 606) or `method: cost` (a provision); {got}")
    known = ("method", "value_per_point", "expected_redemption") if method == "deferred_revenue" else ("method", "expected_redemption")
    if method == "cost" and "value_per_point" in value:
        raise ctx.fail(
            path + ("value_per_point",),
            "the cost method values points at the program's point cost; drop `value_per_point`, or use `method: deferred_revenue`",
            key=True,
        )
    _unknown(value, known, path, ctx)
    vpp = None
    if method == "deferred_revenue":
        if value.get("value_per_point") is None:
            raise ctx.fail(path, "`value_per_point` is missing; deferred revenue needs what a redeemed point is worth to a member, like `value_per_point: 0.01`")
        vpp = _number(0.0, 1e6, "what a redeemed point is worth to a member in currency units, like 0.01 (0 to 1,000,000)")(
            value["value_per_point"], path + ("value_per_point",), ctx
        )
        if vpp == 0:
            raise ctx.fail(path + ("value_per_point",), "0 gives the points no value, so nothing is deferred; give what a redeemed point is worth, like 0.01")
    rate = value.get("expected_redemption", "estimated")
    if rate != "estimated":
        expected = "`estimated` (each run's URR at each month's end) or a redemption rate above 0 and at most 1, like 0.9"
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
            raise ctx.fail(path + ("expected_redemption",), f"expected {expected}, got {_shown(rate)}")
        rate = float(rate)
    return Accounting(method, vpp, rate)


_IDENT = re.compile(r"[^\W\d]\w*")
# The canonical column names a mapping is most likely to mean; other keys are allowed (a program
# may declare its own columns) unless they look like a misspelling of one of these.
CANONICAL_COLUMNS = (
    "customer_id", "timestamp", "amount", "event", "transaction_id", "reward",
    "category", "sku", "product", "brand", "quantity", "store", "channel", "payment", "region",
    "birthday", "segment", "city", "gender", "enrolled",
)  # fmt: skip


def _columns(value, path, ctx) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        raise ctx.fail(path, f"expected a mapping of canonical names to your column names, like `customer_id: member_no`, got {_shown(value)}")
    out: dict[str, str] = {}
    mapped_to: dict[str, str] = {}  # your column -> the canonical name it was mapped to first
    for key, src in value.items():
        if ctx.attempt(_column, key, src, path + (key,), ctx, default=False):
            if src in mapped_to:
                ctx.problems.append(ctx.fail(path + (key,), f"your column `{_clip(src)}` is already mapped to `{_clip(mapped_to[src])}`; map it to one canonical name"))
            mapped_to.setdefault(src, key)
            out[key] = src
    return MappingProxyType(out)


def _column(key, src, path, ctx) -> bool:
    """One `canonical: yours` mapping checked (True), or its problem raised."""
    if not isinstance(key, str) or not _IDENT.fullmatch(key):
        raise ctx.fail(path, f"expected a column name as the key, got {_shown(key)}", key=True)
    if not isinstance(src, str) or not src.strip():
        raise ctx.fail(path, f"expected your column's name (text), got {_shown(src)}")
    if key not in CANONICAL_COLUMNS:
        if src in CANONICAL_COLUMNS:
            raise ctx.fail(path, f"the mapping is canonical name -> your column; write `{src}: {_clip(key)}`", key=True)
        close = difflib.get_close_matches(key, CANONICAL_COLUMNS, n=1, cutoff=0.8)
        if close:
            raise ctx.fail(path, f"unknown column `{_clip(key)}`; did you mean `{close[0]}`?", key=True)
    return True


def _uplift_number(value, path, ctx) -> float:
    return _number(-1.0, 1.0, "a share between -1 and 1 (0.03 means +3%)")(value, path, ctx)


_DISTRIBUTION = "a distribution `{normal: {mean: 0.03, sd: 0.01}}`"


def _is_distribution(value) -> bool:
    return isinstance(value, dict) and "normal" in value and len(value) == 1


def _distribution(value, path, ctx) -> Normal:
    """`{normal: {mean: M, sd: S}}`: mean a share between -1 and 1, sd between 0 and 1."""
    inner = value["normal"]
    at = path + ("normal",)
    if not isinstance(inner, dict):
        raise ctx.fail(at, f"expected the mean and standard deviation, like `{{mean: 0.03, sd: 0.01}}`, got {_shown(inner)}")
    _unknown(inner, ("mean", "sd"), at, ctx)
    for key in ("mean", "sd"):
        if inner.get(key) is None:
            raise ctx.fail(at, f"`{key}` is missing; `normal` needs mean and sd, like `{{mean: 0.03, sd: 0.01}}`")
    mean = _number(-1.0, 1.0, "a share between -1 and 1 (0.03 means +3%)")(inner["mean"], at + ("mean",), ctx)
    sd = _number(0.0, 1.0, "a standard deviation between 0 and 1 (0.01 means 1 point of uplift)")(inner["sd"], at + ("sd",), ctx)
    return Normal(mean, sd)


def _uplift_dict(value):
    """An uplift as plain values: a number, a tier mapping, or `{normal: {mean, sd}}`."""
    if isinstance(value, Normal):
        return {"normal": {"mean": value.mean, "sd": value.sd}}
    return dict(value) if isinstance(value, Mapping) else value


def _visit_uplift(value, path, ctx):
    if _is_distribution(value):
        return _distribution(value, path, ctx)
    expected = f"a share between 0 and 1 (0.02 means +2% visits) or {_DISTRIBUTION}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ctx.fail(path, f"expected {expected}, got {_shown(value)}")
    return _number(0.0, 1.0, expected)(value, path, ctx)


def _spend_uplift(value, path, ctx):
    if _is_distribution(value):
        return _distribution(value, path, ctx)
    if isinstance(value, dict):
        out = {}
        for tier, v in value.items():
            if not isinstance(tier, str):
                raise ctx.fail(path + (tier,), f"expected a tier name as the key, got {_shown(tier)}", key=True)
            out[tier] = _uplift_number(v, path + (tier,), ctx)
        return _by_tier_or_segment(out, path, ctx)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ctx.fail(path, f"expected a number (0.03 means +3%), a mapping of tier to number, like `{{Gold: 0.03}}`, or {_DISTRIBUTION}, got {_shown(value)}")
    return _uplift_number(value, path, ctx)


def _by_tier_or_segment(uplifts: dict, path, ctx):
    """A mapping of uplifts whose keys are all RFM segment names is by segment; otherwise by tier.
    One mapping is one or the other: segment names beside other keys are refused."""
    from simulator.segments import SEGMENTS

    named = [k for k in uplifts if k in SEGMENTS]
    if not named:
        return MappingProxyType(uplifts)
    others = [k for k in uplifts if k not in SEGMENTS]
    if others:
        k = others[0]
        hint = _segment_hint(k, SEGMENTS)
        raise ctx.fail(
            path + (k,),
            f"`{_clip(k)}` is not a segment, and `{_clip(named[0])}` is: give the uplift by tier or by segment, not both in one mapping{hint}",
            key=True,
        )
    return SegmentUplift(uplifts)


def _segment_hint(name: str, names: tuple[str, ...]) -> str:
    """`; did you mean `X`?` for a near-miss of a segment name (case aside), with the names otherwise."""
    folded = {n.casefold(): n for n in names}
    close = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.6)
    return f"; did you mean `{folded[close[0]]}`?" if close else f"; segments: {', '.join(names)}"


def _segment_names(value, path, ctx) -> tuple[str, ...]:
    """A list of RFM segment names (simulator.segments), each known, none twice."""
    from simulator.segments import SEGMENTS

    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ctx.fail(path, f"expected a list of segment names, like `[At risk, Champions]`, got {_shown(value)}")
    out: list[str] = []
    for i, name in enumerate(value):
        if not isinstance(name, str) or name not in SEGMENTS:
            shown = _clip(str(name))
            raise ctx.fail(path + (i,), f"unknown segment `{shown}`{_segment_hint(str(name), SEGMENTS)}")
        if name in out:
            raise ctx.fail(path + (i,), f"the segment `{name}` is named twice; keep one")
        out.append(name)
    return tuple(out)


CALIBRATED_KINDS = ("pilot", "ledger")


def _calibrated(value, path, ctx) -> Calibrated:
    """`{pilot: FILE}` or `{ledger: FILE}`: what `loyalty calibrate` measured the block from (a record, not read)."""
    expected = "`{pilot: FILE}` or `{ledger: FILE}`, as `loyalty calibrate` writes it"
    if not isinstance(value, dict) or len(value) != 1:
        raise ctx.fail(path, f"expected {expected}, got {_shown(value)}")
    (kind, file), = value.items()
    if kind not in CALIBRATED_KINDS:
        raise ctx.fail(path + (kind,), f"unknown source `{_clip(str(kind))}`; expected {expected}", key=True)
    return Calibrated(kind, _path()(file, path + (kind,), ctx))


# Each section: key -> (validator, default). A key's default of REQUIRED means it must be given.
REQUIRED = object()
MAX_ACQUISITION = 1_000_000  # new customers per month a scenario may ask for

_SECTIONS: dict[str, dict[str, tuple[_KEY, Any]]] = {
    "acquisition": {
        "per_month": (_number(0.0, MAX_ACQUISITION, f"new customers per month in the horizon, 0 to {MAX_ACQUISITION:,} (0: none)"), None),
    },
    "enrollment": {
        "share": (_number(0.0, 1.0, "a share between 0 and 1"), 1.0),
        "pick": (_choice(("random", "top_spenders", "segment")), "random"),
        "segments": (_segment_names, ()),
    },
    "redemption": {
        "probability": (_number(0.0, 1.0, "a probability between 0 and 1"), 0.3),
        "choice": (_choice(("cheapest", "dearest", "random")), "cheapest"),
        "source": (_calibrated, None),
        "pay_with_points": (_number(0.0, 1.0, "a probability between 0 and 1 that a member pays a purchase partly with points"), 0.0),
    },
    "response": {
        "spend_uplift": (_spend_uplift, 0.0),
        "visit_uplift": (_visit_uplift, 0.0),
        "goal_gradient": (None, None),  # a nested section, below
        "source": (_calibrated, None),
    },
    # Automatic vouchers (docs/semantics.md, "Automatic vouchers"): the share of issued vouchers used.
    "vouchers": {
        "use_rate": (_number(0.0, 1.0, "the share of issued vouchers members use, between 0 and 1 (default 1: all of them)"), None),
    },
    "goal_gradient": {
        "within": (_number(0.0, 1.0, "a share between 0 and 1 of the points a reward needs"), REQUIRED),
        "uplift": (_uplift_number, REQUIRED),
    },
}

def _cluster(value, path, ctx) -> str:
    from simulator.cluster import address_problem

    problem = address_problem(value)
    if problem:
        raise ctx.fail(path, problem)
    return value


_TOP: dict[str, tuple[_KEY | None, Any]] = {
    "program": (_path(), None),
    "transactions": (_path(), None),
    "customers": (_path(), None),
    "columns": (_columns, MappingProxyType({})),
    "period": (_period, None),
    "enrollment": (None, None),
    "redemption": (None, None),
    "response": (None, None),
    "margin": (_number(0.0, 1.0, "a share between 0 and 1 (0.6 means a 60% gross margin)"), 0.6),
    "runs": (_integer(1, 1_000_000, "a whole number of runs, at least 1"), 100),
    "seed": (_integer(0, 2**63 - 1, "a whole number, 0 or more"), 0),
    "timestamp_format": (_timestamp_format, None),
    "horizon": (_horizon, None),
    "accounting": (_accounting, None),
    "acquisition": (None, None),
    "cluster": (_cluster, None),
    "vouchers": (None, None),
}


def _unknown(keys, known, path, ctx):
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
            hint = f"; did you mean `{close[0]}`?" if close else f"; known keys: {', '.join(known)}"
            ctx.problems.append(ctx.fail(path + (key,), f"unknown key `{_clip(str(key))}`{hint}", key=True))


def _defaults(name: str) -> dict:
    """A section's defaults (what a section with a problem stands in with while the rest is checked)."""
    return {key: default for key, (_, default) in _SECTIONS[name].items()}


def _section(raw, name: str, path: tuple, ctx) -> dict:
    spec = _SECTIONS[name]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ctx.fail(path, f"expected a section with keys {', '.join(spec)}, got {_shown(raw)}")
    _unknown(raw, spec, path, ctx)
    out = {}
    for key, (check, default) in spec.items():
        if key in raw and raw[key] is not None:
            out[key] = ctx.attempt(check, raw[key], path + (key,), ctx, default=None if default is REQUIRED else default) if check else raw[key]
        elif default is REQUIRED:
            ctx.problems.append(ctx.fail(path, f"`{key}` is missing; `{'.'.join(path)}` needs {', '.join(spec)}"))
            out[key] = None
        else:
            out[key] = default
    return out


def _build(d, base_dir: Path, ctx: _Ctx, keep_source: str | None = None) -> Scenario:
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise ctx.fail((), f"expected a mapping of keys ({', '.join(_TOP)}), got {_shown(d)}")
    _unknown(d, _TOP, (), ctx)
    values: dict[str, Any] = {}
    for key, (check, default) in _TOP.items():
        v = d.get(key)
        values[key] = ctx.attempt(check, v, (key,), ctx, default=default) if (check and v is not None) else default
    for key in _PATH_KEYS:
        if values[key] is not None:
            p = base_dir / values[key]
            if not _exists(p):
                where = f" (paths are relative to the scenario file, in {_clip(str(base_dir), 3 * SHOWN_CHARS)})" if ctx.marks else ""
                ctx.problems.append(ctx.fail((key,), f"no such file: {_clip(str(p), 3 * SHOWN_CHARS)}{where}"))
            values[key] = p
    enr = ctx.attempt(_section, d.get("enrollment"), "enrollment", ("enrollment",), ctx, default=_defaults("enrollment"))
    red = ctx.attempt(_section, d.get("redemption"), "redemption", ("redemption",), ctx, default=_defaults("redemption"))
    resp = ctx.attempt(_section, d.get("response"), "response", ("response",), ctx, default=_defaults("response"))
    acq = ctx.attempt(_section, d.get("acquisition"), "acquisition", ("acquisition",), ctx, default=_defaults("acquisition"))
    vou = ctx.attempt(_section, d.get("vouchers"), "vouchers", ("vouchers",), ctx, default=_defaults("vouchers"))
    if enr is not None and (enr["pick"] == "segment") != bool(enr["segments"]):
        if enr["pick"] == "segment":
            ctx.problems.append(ctx.fail(("enrollment", "pick"), "`pick: segment` needs the segments to enrol: add `segments: [At risk, Champions]` (say) to `enrollment`"))
        else:
            ctx.problems.append(ctx.fail(("enrollment", "segments"), f"segments are enrolled only with `pick: segment` (pick is `{enr['pick']}`); set `pick: segment` or drop `segments`", key=True))
    if resp["goal_gradient"] is not None:
        gg = ctx.attempt(_section, resp["goal_gradient"], "goal_gradient", ("response", "goal_gradient"), ctx)
        resp["goal_gradient"] = GoalGradient(**gg) if gg is not None and None not in gg.values() else None
    if values["customers"] is not None and values["transactions"] is None:
        ctx.problems.append(ctx.fail(("customers",), "a customers file needs a transactions file too; add `transactions:`"))
    ctx.settle()
    typed = {key: "scenario" for key in _TOP if key not in _SECTIONS and key != "cluster" and d.get(key) is not None}
    for section in _SECTIONS:
        raw = d.get(section)
        typed.update({f"{section}.{key}": "scenario" for key in (raw if isinstance(raw, dict) else {}) if raw[key] is not None and key != "source"})
    return Scenario(
        program=values["program"],
        transactions=values["transactions"],
        customers=values["customers"],
        columns=values["columns"],
        period=values["period"],
        enrollment=Enrollment(**enr),
        redemption=Redemption(**red),
        response=Response(**resp),
        margin=values["margin"],
        runs=values["runs"],
        seed=values["seed"],
        source=keep_source or ctx.source,
        timestamp_format=values["timestamp_format"],
        horizon=values["horizon"],
        typed=MappingProxyType(typed),
        accounting=values["accounting"],
        acquisition=acq["per_month"] if acq is not None else None,
        cluster=values["cluster"],
        voucher_use_rate=vou["use_rate"] if vou is not None else None,
    )


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:  # a name the file system cannot hold (too long)
        return False


def _path_text(p: Path | None) -> str | None:
    return None if p is None else p.as_posix()


def _flag_path(name: str) -> tuple[str, ...]:
    if "." in name:
        return tuple(name.split("."))
    if name in _TOP:
        return (name,)
    for section in ("enrollment", "redemption", "response"):
        if name.startswith(section + "_") and name[len(section) + 1 :] in _SECTIONS[section]:
            return (section, name[len(section) + 1 :])
    owners = [s for s in ("enrollment", "redemption", "response") if name in _SECTIONS[s]]
    if len(owners) == 1:
        return (owners[0], name)
    raise ScenarioError(f"command line: error: unknown scenario setting `{name}`")
