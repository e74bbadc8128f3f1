"""The HTML report: self-contained, escaped, deterministic, and it renders (headless Chromium)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import rulelang
from simulator.api import simulate
from tests.simulator.simkit import ENGINE, program, sample, scenario

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tx, cu = sample()
    res = simulate(program("<script>alert(1)</script>"), tx, cu, scenario(runs=3), workers=1, engine=ENGINE)
    path = res.to_html(tmp_path_factory.mktemp("report") / "report.html")
    return res, path


def test_user_strings_are_escaped(report):
    _, path = report
    html = path.read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_self_contained_with_charts_and_sections(report):
    _, path = report
    html = path.read_text(encoding="utf-8")
    assert html.count("<svg") >= 5
    for needle in ('src="http', 'href="http', "<link", "<script"):
        assert needle not in html
    for section in (
        "Headline figures",
        "Liability roll-forward",
        "Tier mix over time",
        "Spread across runs",
        "Reward popularity",
        "Assumptions",
        "CNY",
    ):
        assert section in html


def test_same_inputs_same_bytes(report, tmp_path):
    res, path = report
    again = res.to_html(tmp_path / "again.html")
    assert again.read_bytes() == path.read_bytes()


def test_report_renders_in_headless_chromium(report, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs it with apt-get install chromium)")
    from PIL import Image

    _, path = report
    png = _screenshot(path, tmp_path, height=3000)
    img = Image.open(png).convert("RGB")
    assert len(img.getcolors(maxcolors=1 << 20) or [0, 0]) > 1, "the screenshot is blank"
    # The first charts sit in the top half of the page: they must have coloured (not grey) pixels.
    top = np.asarray(img.crop((0, 0, img.width, img.height // 2))).astype(int)
    coloured = int(((top.max(axis=2) - top.min(axis=2)) > 40).sum())
    assert coloured > 500, "no chart colours in the rendered page"


def test_differences_are_signed_and_rates_differ_in_percentage_points():
    from simulator.report import fmt_delta

    assert fmt_delta(0.023, "ratio") == "+2.3 pp"  # 45.0% -> 47.3% is 2.3 points, not 2.3%
    assert fmt_delta(-0.5, "percent") == "-0.50 pp"
    assert fmt_delta(-1234.5, "money", 2) == "-1,234.50"
    assert fmt_delta(1500, "count") == "+1,500"
    assert fmt_delta(None, "ratio") == "–"


# --- the first screen: span, sources, warnings (simulator.provenance) -----------------------------


def _first_screen(html: str) -> str:
    """The page from its start to the headline table: what a reader sees first."""
    return html[: html.index("<h2>Headline figures</h2>")]


def test_the_first_screen_shows_the_span_and_sources_and_no_warning_when_none_applies(report):
    res, path = report
    top = _first_screen(path.read_text(encoding="utf-8"))
    assert f"<strong>Span:</strong> {res.summary['span']['text']}." in top and "history only" in top
    assert '<div class="warn">' not in top and res.summary["warnings"] == []
    assert "<td>response.visit_uplift</td><td>+10.0%</td><td>typed in the scenario</td>" in top
    assert "<td>margin</td><td>0.5</td><td>typed in the scenario</td>" in top


def test_the_first_screen_shows_the_horizon_the_fitted_models_and_both_warnings(tmp_path):
    tx, cu = sample(customers=80, months=6)
    sc = scenario(runs=2, horizon="2 months", response={"spend_uplift": 0.0, "visit_uplift": 0.0})
    # expire after 9 months, longer than 6 months replayed and 2 forecast: nothing can expire.
    prog = program().source.text.replace("expire after 3 months", "expire after 9 months")
    res = simulate(rulelang.loads(prog, "t.loyalty"), tx, cu, sc, workers=1, engine=ENGINE)
    top = _first_screen(res.to_html(tmp_path / "report.html").read_text(encoding="utf-8"))
    assert "history 2026-01-01 to 2026-06-30 (6 months) + forecast 2 months to 2026-08-31" in top
    assert "<td>forecast.purchases</td><td>BG/NBD r " in top and "fitted to the history" in top
    assert "<strong>lift assumed 0: ROI shows cost only</strong>" in top
    assert "<strong>no points can expire within 8 months: breakage 0 is not an estimate</strong>" in top
    assert res.summary["points_expired"]["p95"] == 0
def test_the_breakage_and_accounting_sections(tmp_path):
    tx, cu = sample()
    books = {"method": "deferred_revenue", "value_per_point": 0.01}
    res = simulate(program(), tx, cu, scenario(runs=2, accounting=books), workers=1, engine=ENGINE)
    html = res.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Breakage: the ultimate redemption rate" in html and "months since earned" in html
    assert "Accounting: deferred revenue (IFRS 15 / ASC 606)" in html
    # The liability's interval with Mack's error beside the runs' own, as summary.json has them.
    interval = res.summary["urr_estimate"]["liability_interval"]
    assert "with each run's URR drawn from its Mack error" in html
    assert f"{interval['p5']:,.2f} · {interval['p50']:,.2f} · {interval['p95']:,.2f}</td>" in html
    labels = ("Opening deferred revenue", "Deferred (points issued)", "Recognised on redemption", "Breakage recognised", "Change in estimate", "Closing deferred revenue")
    at = [html.index(label) for label in labels]
    assert at == sorted(at)  # the rows in the order of a loyalty-liability note
    closing = res.accounting_runs[0]["closing"].iloc[-1] / 100
    assert f"{closing:,.2f}</td></tr>" in html  # run 1's last closing balance ends the table


def test_the_roll_forward_by_quarter_opens_closes_and_adds_up():
    import pandas as pd

    from simulator.finance import accounting
    from simulator.report import rollforward_table

    months = [str(p) for p in pd.period_range("2026-01", periods=15, freq="M")]
    frame = accounting.deferred_revenue([1000 * (i + 1) for i in range(15)], [100] * 15, [40] * 15, 0.9, 0.01, 2, months)
    table = rollforward_table(frame, "deferred_revenue", 2)
    assert table["quarterly"] and table["columns"] == ["2026Q1", "2026Q2", "2026Q3", "2026Q4", "2027Q1"]
    rows = {r["label"]: r["amounts"] for r in table["rows"]}
    by_q = [frame.iloc[3 * q : 3 * q + 3] for q in range(5)]
    assert rows["Opening deferred revenue"] == [q["opening"].iloc[0] / 100 for q in by_q]
    assert rows["Closing deferred revenue"] == [q["closing"].iloc[-1] / 100 for q in by_q]
    assert rows["Deferred (points issued)"] == [q["deferred"].sum() / 100 for q in by_q]
    for q in range(5):  # each quarter balances as its months do
        flows = rows["Deferred (points issued)"][q] - rows["Recognised on redemption"][q] - rows["Breakage recognised"][q] - rows["Change in estimate"][q]
        assert round(rows["Opening deferred revenue"][q] + flows, 2) == rows["Closing deferred revenue"][q]


def test_the_breakage_and_accounting_sections_render_in_headless_chromium(tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs it with apt-get install chromium)")
    from PIL import Image

    tx, cu = sample()
    res = simulate(program(), tx, cu, scenario(runs=2, accounting={"method": "cost"}), workers=1, engine=ENGINE)
    html = res.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    # The page cut to the two sections (same styles): what the screenshot shows is theirs alone.
    start, end = html.index("<h2>Breakage: the ultimate redemption rate</h2>"), html.index("<h2>Reward popularity</h2>")
    body = html.index("<body>") + len("<body>")
    page = tmp_path / "sections.html"
    page.write_text(html[:body] + html[start:end] + "</body></html>", encoding="utf-8")
    png = _screenshot(page, tmp_path, height=1600)
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    # The heatmap's blues: blue well above red (the page's text is grey, its tables white).
    blue = int(((pixels[:, :, 2] - pixels[:, :, 0]) > 60).sum())
    assert blue > 2000, "no heatmap cells in the rendered sections"
    dark = int((pixels.max(axis=2) < 80).sum())
    assert dark > 2000, "no text (the roll-forward's figures) in the rendered sections"


def test_a_chart_keeps_chinese_names_as_text_without_font_warnings():
    import warnings

    import matplotlib.pyplot as plt

    from simulator import report

    report._plt_setup()  # as the report draws its charts
    fig, ax = plt.subplots()
    ax.bar(["普通会员", "金卡"], [3, 5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svg = report._svg(fig)
    # As <text> the browser's fonts draw (not paths, with the name only in a comment).
    assert "<text" in svg and ">金卡</text>" in svg and ">普通会员</text>" in svg


def test_the_program_cost_by_part_appears_with_benefits_and_adds_up(report, tmp_path):
    from tests.simulator.simkit import PROGRAM_TEXT

    plain, path = report
    assert "Program cost, by part" not in path.read_text(encoding="utf-8")
    text = PROGRAM_TEXT + 'benefit treat: cost 3.5 CNY when category == "pastry" at most 2 times per month funded 20% by bakery\n'
    tx, cu = sample()
    res = simulate(rulelang.loads(text, "b.loyalty"), tx, cu, scenario(runs=3), workers=1, engine=ENGINE)
    html = res.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Program cost, by part" in html and "Benefits given − partner funding" in html
    assert "<th>Benefit cost (CNY)</th>" in html
    from simulator.report import cost_split

    points, benefits, total = cost_split(res.per_run, 2)
    runs = res.per_run
    assert benefits["mean"] == round(sum(f["benefit_cost"] - f["benefit_partner_funded"] for f in runs) / len(runs) / 100, 2)
    assert round(points["mean"] + benefits["mean"], 2) == total["mean"] == res.summary["program_cost"]["mean"]
    assert [r["label"] for r in (points, benefits, total)][-1] == "Program cost"


def _screenshot(page: Path, tmp_path: Path, height: int) -> Path:
    """Headless Chromium's screenshot of `page`, 1200 pixels wide, as a PNG in `tmp_path`."""
    png = tmp_path / "shot.png"
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", f"--window-size=1200,{height}", page.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, check=False, capture_output=True, timeout=120)
    assert png.exists(), "chromium wrote no screenshot"
    return png


def test_a_budget_program_s_report_shows_each_budget_and_warns_of_one_not_reached(tmp_path):
    from simulator.report import budget_rows
    from simulator.sample_data import bundled_paths

    text = (Path(__file__).resolve().parents[2] / "benchmarks" / "programs" / "coffee_budget.loyalty").read_text(encoding="utf-8")
    # A fourth budget far above what the year gives: never reached.
    text = text.replace("earn review:     50 points on review at most 3 times per month",
                        "earn review:     50 points on review at most 3 times per month budget 90000000 points")
    program = tmp_path / "budgets.loyalty"
    program.write_text(text, encoding="utf-8")
    tx, cu = bundled_paths()
    result = simulate(program, tx, cu, {"runs": 2, "seed": 3}, workers=1)
    rows = {r["rule"]: r for r in budget_rows(result.summary)}
    assert rows["welcome"]["runs_ran_out"] == 2 and rows["welcome"]["p50"] == 100_000
    assert rows["review"]["runs_ran_out"] == 0 and rows["review"]["first_day"] is None
    assert [w["code"] for w in result.summary["warnings"]].count("budget_not_reached") == 1
    page = result.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Budgets</h2>" in page and "2 of 2 runs" in page and "not reached" in page
