"""The self-contained HTML report (and the side-by-side comparison page).

Charts are matplotlib SVG embedded inline (Agg backend, fixed hash salt, no date metadata), so the
file has no external URL and the same inputs give the same bytes. Jinja2 autoescapes every
user string (program name, tiers, rewards, paths); only the SVG we draw is marked safe.
"""

from __future__ import annotations

import io
import re
import warnings
from fractions import Fraction
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from jinja2 import Environment, FileSystemLoader, select_autoescape  # noqa: E402
from markupsafe import Markup  # noqa: E402

from simulator import metrics, provenance, segments  # noqa: E402

TEMPLATES = Path(__file__).parent / "templates"
PALETTE = ("#1f6f8b", "#e07a1f", "#5a9e4b", "#a23b72", "#6c757d", "#c9a227", "#3d405b")
# (figure, label, unit kind) in the order a finance reader wants them (metrics.FIGURE_LABELS); the
# lift's percentage stands beside its amount, so it is labelled as the amount is.
HEADLINE = tuple(
    (key, "Revenue lift" if key == "revenue_lift_pct" else label, kind) for key, label, kind in metrics.FIGURE_LABELS if key != "rows_outside_period"
)


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["num"] = fmt_number
    env.filters["delta"] = fmt_delta
    return env


def fmt_number(v, kind: str = "count", decimals: int = 2) -> str:
    """A figure for people: thousands separators, the currency's decimals, percentages."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if kind == "money":
        return f"{float(v):,.{decimals}f}"
    if kind == "ratio":
        return f"{100 * float(v):,.1f}%"
    if kind == "percent":
        return f"{float(v):,.2f}%"
    return f"{v:,}" if isinstance(v, int) else f"{float(v):,.1f}"


# Kinds whose differences read as percentage points, and the factor from the figure to them.
DELTA_POINTS = {"ratio": 100, "percent": 1}


def fmt_delta(v, kind: str = "count", decimals: int = 2) -> str:
    """A difference between two figures, signed; rates and percentages in percentage points."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if kind in DELTA_POINTS:
        return f"{DELTA_POINTS[kind] * float(v):+,.{2 if kind == 'percent' else 1}f} pp"
    if kind == "money":
        return f"{float(v):+,.{decimals}f}"
    return f"{v:+,}" if isinstance(v, int) else f"{float(v):+,.1f}"



def _svg(fig) -> Markup:
    buf = io.StringIO()
    with warnings.catch_warnings():
        # Text stays text in the SVG ("svg.fonttype": "none"): the browser draws a tier named 金卡
        # with its own fonts; matplotlib's font, used only to measure it, lacking the glyph is no news.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S)
    return Markup(text)


def _figure(title: str, ylabel: str, size=(9, 3.6)):
    fig, ax = plt.subplots(figsize=size)
    ax.set_title(title, loc="left", fontsize=12)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", color="#dddddd")
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _by_month(monthly: pd.DataFrame, col: str) -> pd.DataFrame:
    """P5/P50/P95/mean of a monthly column across runs."""
    g = monthly.assign(_v=monthly[col].astype(float)).groupby("month", sort=True)["_v"]
    # The same percentiles as summary.json: values some run produced.
    qs = {f"p{q}": g.agg(lambda v, q=q: float(np.percentile(v, q, method=metrics.PERCENTILE_METHOD))) for q in (5, 50, 95)}
    return pd.DataFrame({**qs, "mean": g.mean()})


def chart_liability(monthly: pd.DataFrame, currency: str) -> Markup:
    s = _by_month(monthly, "liability")
    fig, ax = _figure("Liability at each month's end (P50, band P5–P95)", currency)
    x = np.arange(len(s))
    ax.fill_between(x, s["p5"], s["p95"], color=PALETTE[0], alpha=0.2, label="P5–P95")
    ax.plot(x, s["p50"], color=PALETTE[0], marker="o", label="P50")
    ax.set_xticks(x, s.index, rotation=45, ha="right")
    ax.legend(frameon=False)
    return _svg(fig)


def chart_points(monthly: pd.DataFrame) -> Markup:
    cols = (("issued", "Issued"), ("redeemed", "Redeemed"), ("expired", "Expired"))
    fig, ax = _figure("Points issued, redeemed and expired per month (mean over runs)", "points")
    months = sorted(monthly["month"].unique())
    x = np.arange(len(months))
    w = 0.27
    for i, (col, label) in enumerate(cols):
        ax.bar(x + (i - 1) * w, _by_month(monthly, col)["mean"].to_numpy(), width=w, color=PALETTE[i], label=label)
    ax.set_xticks(x, months, rotation=45, ha="right")
    ax.legend(frameon=False)
    return _svg(fig)


def chart_tiers(monthly: pd.DataFrame) -> Markup | None:
    cols = [c for c in monthly.columns if c.startswith("tier_")]
    if not cols:
        return None
    fig, ax = _figure("Members per tier at each month's end (mean over runs)", "members")
    months = sorted(monthly["month"].unique())
    x = np.arange(len(months))
    ys = [_by_month(monthly, c)["mean"].to_numpy() for c in cols]
    ax.stackplot(x, *ys, labels=[c[len("tier_") :] for c in cols], colors=PALETTE[: len(cols)], alpha=0.85)
    ax.set_xticks(x, months, rotation=45, ha="right")
    ax.legend(frameon=False, loc="upper left")
    return _svg(fig)


def chart_spread(per_run: list[dict], decimals: int, currency: str) -> Markup:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, (key, title, color) in zip(
        axes,
        (("program_cost", "Program cost across runs", PALETTE[1]), ("revenue_lift", "Revenue lift across runs", PALETTE[2])),
        strict=True,
    ):
        vals = np.array([r[key] for r in per_run], dtype=float) / 10**decimals
        ax.hist(vals, bins=min(30, max(5, len(vals) // 5)), color=color)
        ax.set_title(title, loc="left", fontsize=12)
        ax.set_xlabel(currency)
        ax.set_ylabel("runs")
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _svg(fig)


def chart_rewards(rewards: pd.DataFrame) -> Markup:
    fig, ax = _figure("Redemptions per reward (mean per run)", "", size=(9, 0.5 + 0.5 * max(len(rewards), 2)))
    y = np.arange(len(rewards))
    ax.barh(y, rewards["count"].astype(float).to_numpy(), color=PALETTE[3])
    ax.set_yticks(y, rewards["reward"].tolist())
    ax.invert_yaxis()
    ax.set_xlabel("redemptions")
    ax.grid(axis="x", color="#dddddd")
    return _svg(fig)


def chart_triangle(table: pd.DataFrame) -> Markup:
    """Run 0's cohort triangle as a heatmap: the share of each cohort's points redeemed by each
    development month (vector cells, so the page stays text and its bytes reproducible)."""
    grid = table.pivot(index="cohort", columns="development", values="redeemed_share").sort_index()
    n_cohorts, n_ages = grid.shape
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.28 * n_cohorts))
    mesh = ax.pcolormesh(np.ma.masked_invalid(grid.to_numpy(dtype=float)), cmap="Blues", vmin=0, vmax=1, edgecolors="white", linewidth=0.5)
    ax.set_title("Share of each cohort's points redeemed, by months since earned (run 1)", loc="left", fontsize=12)
    ax.set_xticks(np.arange(n_ages) + 0.5, [str(a) for a in grid.columns])
    ax.set_yticks(np.arange(n_cohorts) + 0.5, grid.index.tolist())
    ax.invert_yaxis()
    ax.set_xlabel("development (months since the cohort's month)")
    ax.set_ylabel("cohort (month earned)")
    fig.colorbar(mesh, ax=ax, format=lambda v, _: f"{100 * v:.0f}%", fraction=0.03)
    return _svg(fig)


# The accounting roll-forward's rows as an airline's loyalty-liability note lays them out:
# (line in the run's frame, label, sign shown).
ROLLFORWARD_ROWS = {
    "deferred_revenue": (
        ("opening", "Opening deferred revenue", ""),
        ("deferred", "Deferred (points issued)", "+"),
        ("recognised_on_redemption", "Recognised on redemption", "−"),
        ("recognised_breakage", "Breakage recognised", "−"),
        ("change_of_estimate", "Change in estimate", "−"),
        ("closing", "Closing deferred revenue", "="),
    ),
    "cost": (
        ("opening", "Opening provision", ""),
        ("provided", "Provided (points issued)", "+"),
        ("used_on_redemption", "Used on redemption", "−"),
        ("released_breakage", "Breakage released", "−"),
        ("change_of_estimate", "Change in estimate", "+"),
        ("closing", "Closing provision", "="),
    ),
}


def rollforward_table(frame: pd.DataFrame, method: str, decimals: int) -> dict:
    """Run 0's roll-forward as rows of lines and columns of periods: months, or quarters when there
    are more than twelve (a quarter opens at its first month's opening, closes at its last's, and
    adds its months' flows between)."""
    period = pd.PeriodIndex(frame["month"], freq="M")
    quarterly = len(frame) > 12
    key = period.asfreq("Q") if quarterly else period
    groups = frame.groupby(np.asarray(key.astype(str)), sort=True)
    columns = list(groups.groups)
    scale = 10**decimals
    rows = []
    for line, label, sign in ROLLFORWARD_ROWS[method]:
        how = "first" if line == "opening" else "last" if line == "closing" else "sum"
        values = groups[line].agg(how)
        rows.append({"label": label, "sign": sign, "total": line == "closing", "amounts": [int(values[c]) / scale for c in columns]})
    return {"columns": columns, "rows": rows, "quarterly": quarterly}


SOURCE_KEYS = ("program", "transactions", "customers")


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out.extend(_flatten(v, f"{prefix}{k}.") if v else [(f"{prefix}{k}", "{}")])
        else:
            out.append((f"{prefix}{k}", "–" if v is None else str(v)))
    return out


def headline(summary: dict) -> list[dict]:
    """Rows of the headline table: label, unit and the four statistics (of the figures the summary
    has: a program without benefits has no benefit figures)."""
    rows = []
    for key, label, kind in HEADLINE:
        if key in metrics.OPTIONAL_FIGURES and key not in summary:  # a program without discounts, benefits or pending points
            continue
        s = summary[key]
        unit = {"money": summary["currency"], "points": "points", "ratio": "%", "percent": "%", "count": ""}[kind]
        rows.append({"key": key, "label": label, "unit": unit, "kind": kind, **s})
    return rows


# Per metrics.COST_KINDS kind: its monthly column's heading, and its part of the program cost (its
# cost less what partners fund of it), which the report shows when the program has any such kind.
COST_PARTS = {"discount": ("Discount cost", "Discounts given − partner funding"), "benefit": ("Benefit cost", "Benefits given − partner funding"),
              "voucher": ("Voucher cost", "Vouchers used − partner funding")}
POINTS_PART = "Points: rewards redeemed − partner funding + liability"


def cost_split(per_run: list[dict], decimals: int) -> list[dict]:
    """Rows of the program cost's split across runs (label and the four statistics, in currency
    units): the points' part, each cost kind's the runs have, and the program cost they add up to
    (the means add up exactly; percentiles of parts need not). Empty without cost kinds."""
    kinds = [k for k in metrics.COST_KINDS if metrics.cost_figures(k)[0] in per_run[0]]
    if not kinds:
        return []
    scale = 10**decimals
    parts = [(POINTS_PART, lambda f: f["reward_cost"] - f["partner_funded"] + f["liability"])]
    parts += [(COST_PARTS[k][1], lambda f, k=k: f[metrics.cost_figures(k)[0]] - f[metrics.cost_figures(k)[1]]) for k in kinds]
    parts.append(("Program cost", lambda f: f["program_cost"]))
    return [{"label": label, **metrics.spread([Fraction(part(f), scale) for f in per_run], decimals)} for label, part in parts]


def budget_rows(summary: dict) -> list[dict]:
    """One row per budgeted rule (summary.json `budgets`): its budget, what it gave (P5, P50, P95),
    in how many runs it ran out and the days it did (the first and the last across runs)."""
    rows = []
    for name, b in summary.get("budgets", {}).items():
        days = sorted(d for d in b["ran_out_by_run"] if d is not None)
        rows.append({"rule": name, "unit": b["unit"], "budget": b["budget"], **{q: b["used"][q] for q in ("p5", "p50", "p95")},
                     "runs_ran_out": b["runs_ran_out"], "first_day": days[0] if days else None, "last_day": days[-1] if days else None})
    return rows


def _plt_setup() -> None:
    matplotlib.rcParams.update({"svg.hashsalt": "loyalty-toolkit", "svg.fonttype": "none", "font.size": 9, "figure.dpi": 72})


def render_report(result) -> str:
    """The report page of one simulation."""
    _plt_setup()
    s = result.summary
    dec = result.program.model.decimals
    cur = s["currency"]
    first = result.monthly[result.monthly["run"] == 0].drop(columns="run")
    tiers = [c for c in first.columns if c.startswith("tier_")]
    return (
        _env()
        .get_template("report.html")
        .render(
            s=s,
            decimals=dec,
            currency=cur,
            runs=len(result.per_run),
            headline=headline(s),
            tiers=[(c, c[len("tier_") :]) for c in tiers],
            months=first.to_dict("records"),
            cost_split=cost_split(result.per_run, dec),
            budgets=budget_rows(s),
            # Each cost kind's monthly cost after the reward cost (the program's own kinds only).
            cost_columns=[(metrics.cost_figures(k)[0], COST_PARTS[k][0]) for k in metrics.COST_KINDS
                          if metrics.cost_figures(k)[0] in first.columns],
            rewards=result.rewards.to_dict("records"),
            # The files read are in `sources` (path and sha256), whether the scenario named them or not.
            assumptions=[(k, v) for k, v in _flatten(result.scenario.to_dict()) if k not in SOURCE_KEYS],
            sources=source_rows(s),
            tier_end=s["tiers"],
            chart_liability=chart_liability(result.monthly, cur),
            chart_points=chart_points(result.monthly),
            chart_tiers=chart_tiers(result.monthly),
            chart_spread=chart_spread(result.per_run, dec, cur),
            chart_rewards=chart_rewards(result.rewards) if len(result.rewards) else None,
            method=metrics.PERCENTILE_METHOD,
            **first_screen(s),
            **finance_sections(result, dec),
            **segment_sections(result, dec),
        )
    )


def segment_sections(result, decimals: int) -> dict:
    """The report's segments section: segments.csv's rows by RFM segment and by lifecycle stage,
    and the VIP pyramid of run 0 (simulator.segments)."""
    out: dict = {"segment_rows": None, "stage_rows": None, "tier_rows": None, "pyramid": None, "chart_pyramid": None, "migrations": None}
    table = result.segments
    if table is None:
        return out
    out["segment_rows"] = table[table["dimension"] == "segment"].to_dict("records")
    out["stage_rows"] = table[table["dimension"] == "stage"].to_dict("records")
    out["tier_rows"] = table[table["dimension"] == "tier"].to_dict("records")
    seg = result.segmentation
    if seg is not None and seg.tiers:
        moved = segments.migration(seg, result.read_ledger())
        if moved is not None:
            out["migrations"] = [_matrix(m) for m in moved]
    if seg is not None and seg.revenue is not None and len(seg.revenue):
        fig0 = result.per_run[0]
        costs = segments.customer_costs(seg, result.read_ledger(), result.program.model.point_cost, fig0["urr"], decimals)
        p = segments.pyramid(seg, costs)
        out["pyramid"] = p
        out["chart_pyramid"] = chart_pyramid(p)
    return out


def _matrix(frame: pd.DataFrame) -> dict:
    """A count matrix for the page: its axes' names, column labels and rows (label, counts)."""
    return {
        "rows_name": frame.index.name,
        "columns_name": frame.columns.name,
        "columns": [str(c) for c in frame.columns],
        "rows": [(str(i), [int(v) for v in frame.loc[i]]) for i in frame.index],
    }


def chart_pyramid(p) -> Markup:
    """Who brings the money against who the program pays: cumulative shares over the customers
    ranked by their revenue (run 1's program cost)."""
    fig, ax = _figure("Customers ranked by revenue: cumulative share of revenue and of program cost (run 1)", "cumulative share")
    c = p.curve
    ax.plot(100 * c["customer_share"], 100 * c["revenue_share"], color=PALETTE[0], label="Revenue")
    ax.plot(100 * c["customer_share"], 100 * c["cost_share"], color=PALETTE[1], label="Program cost")
    ax.plot([0, 100], [0, 100], color="#bbbbbb", linestyle="--", linewidth=0.8, label="Even")
    ax.axvline(20, color="#888888", linewidth=0.8)
    ax.set_xlabel("customers, most revenue first (%)")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0f}%")
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0f}%")
    ax.legend(frameon=False, loc="lower right")
    return _svg(fig)


# The headline cards (report.html) that carry their figures' warnings.
CARDS = ("program_cost", "liability", "revenue_lift", "net_benefit")


def first_screen(summary: dict) -> dict:
    """The report's first screen (simulator.provenance): the span, the warnings, each by the
    figures it stands next to in the table and the cards, and where each assumption came from."""
    return {
        "span": summary.get("span"),
        "warnings": summary.get("warnings", []),
        "notes": provenance.notes_by_figure(summary, tuple(key for key, _, _ in HEADLINE)),
        "card_notes": provenance.notes_by_figure(summary, CARDS, repeat=True),
        "assumption_sources": [(key, {**a, "source_text": provenance.source_text(a)}) for key, a in summary.get("assumption_sources", {}).items()],
    }
def finance_sections(result, decimals: int) -> dict:
    """The report's breakage section (run 0's triangle and URR, the URR across runs) and, when the
    scenario asks for accounting, its roll-forward."""
    t = result.run_triangles
    out: dict = {"urr_run0": None, "chart_triangle": None, "rollforward": None}
    if t is not None:
        out["urr_run0"] = t.overall
        out["chart_triangle"] = chart_triangle(t.table)
    if result.accounting_runs:
        method = result.scenario.accounting.method
        out["rollforward"] = rollforward_table(result.accounting_runs[0], method, decimals)
        out["rollforward_method"] = method
    return out


# Whether a higher figure is better for the business (+1) or worse (-1); the rest are neither.
DIRECTION = {
    "program_cost": -1, "reward_cost": -1, "liability": -1,
    "partner_funded": +1, "revenue_with_program": +1, "revenue_lift": +1, "revenue_lift_pct": +1,
    "incremental_margin": +1, "net_benefit": +1, "roi": +1,
}  # fmt: skip


def verdict(key: str, diff) -> str | None:
    """`better`, `worse` or None (no direction, no difference): how a difference reads for `key`."""
    sign = DIRECTION.get(key, 0) * ((diff > 0) - (diff < 0)) if diff is not None else 0
    return {1: "better", -1: "worse"}.get(sign)


def compare_rows(results: list) -> list[dict]:
    """Per headline figure: each result's P50 (and P5–P95), the difference from the first, and
    whether that difference is better or worse (`verdicts`)."""
    rows = []
    for key, label, kind in HEADLINE:
        if not all(key in r.summary for r in results):  # discounts, benefits: only a program with them has the figures
            if key in metrics.OPTIONAL_FIGURES and not any(key in r.summary for r in results):
                continue
        vals = [r.summary.get(key, {"mean": 0, "p5": 0, "p50": 0, "p95": 0}) for r in results]
        base = vals[0]["p50"]
        diffs = [metrics.difference(v["p50"], base) for v in vals]
        verdicts = [verdict(key, d) for d in diffs]
        rows.append({"key": key, "label": label, "kind": kind, "values": vals, "diffs": diffs, "verdicts": verdicts})
    return rows


def source_rows(summary: dict) -> list[dict]:
    """summary.json's `sources` for a page: what, path (or what was given instead), sha256."""
    return [{"what": what, "path": v["path"] or f"({v['given']})", "given": v["given"], "sha256": v["sha256"] or "–"} for what, v in summary.get("sources", {}).items()]


def render_compare(results: list, names: list[str]) -> str:
    """The side-by-side page of several simulations on the same data and seed."""
    _plt_setup()
    dec = results[0].program.model.decimals
    return (
        _env()
        .get_template("compare.html")
        .render(
            names=names,
            rows=compare_rows(results),
            decimals=dec,
            currency=results[0].summary["currency"],
            runs=len(results[0].per_run),
            sources=[source_rows(r.summary) for r in results],
        )
    )
