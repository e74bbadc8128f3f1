"""report.xlsx, read back with openpyxl (another library than the writer): the summary sheet is
summary.json, the monthly sheet monthly.csv and the rewards sheet rewards.csv, number for number;
money shows exactly the decimals the CSV has; no cell holds a formula; hostile text is inert;
frozen headers; the same simulation gives the same bytes; the accounting and triangles sheets
appear exactly when the result has those frames."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import replace
from decimal import Decimal

import openpyxl
import pandas as pd
import pytest

from simulator.api import simulate
from simulator.finance.accounting import deferred_revenue
from simulator.finance.triangles import analyse, read_ledger
from simulator.workbook import write_workbook
from tests.simulator.simkit import ENGINE, program, sample, scenario

HOSTILE_NAME = '=HYPERLINK("http://example.com/x","click")'
# A customer-id column named so that it would run: the scenario's `columns` carries it into the assumptions.
HOSTILE_COLUMN = "@SUM(1+1)"
RISKY_START = ("=", "+", "-", "@", "\t", "\r")


def _simulate():
    tx, cu = sample(30, 5, seed=5)
    tx, cu = tx.rename(columns={"customer_id": HOSTILE_COLUMN}), cu.rename(columns={"customer_id": HOSTILE_COLUMN})
    return simulate(program(HOSTILE_NAME), tx, cu, scenario(runs=3, columns={"customer_id": HOSTILE_COLUMN}), workers=1, engine=ENGINE)


@pytest.fixture(scope="module")
def outs(tmp_path_factory):
    """The same simulation twice, each written as a whole output set."""
    d = tmp_path_factory.mktemp("workbook")
    first = _simulate()
    first.write(d / "a")
    _simulate().write(d / "b")
    return d / "a", d / "b", first


@pytest.fixture(scope="module")
def book(outs):
    return openpyxl.load_workbook(outs[0] / "report.xlsx")


def rows(ws) -> list[tuple]:
    return [tuple(r) for r in ws.iter_rows(values_only=True)]


def table(ws) -> pd.DataFrame:
    values = rows(ws)
    return pd.DataFrame(values[1:], columns=values[0])


def test_the_sheets_in_order(book):
    # This scenario asks for no accounting: that sheet is left out; every simulation has triangles.
    assert book.sheetnames == ["summary", "monthly", "triangles", "urr", "urr_by_tier", "rewards", "segments", "assumptions"]


def test_summary_sheet_is_summary_json_figure_for_figure(outs, book):
    summary = json.loads((outs[0] / "summary.json").read_text(encoding="utf-8"))
    expected = {}

    def collect(node: dict, prefix: str) -> None:  # every spread at any depth, by its dotted key
        for key, value in node.items():
            if isinstance(value, dict) and set(value) == {"mean", "p5", "p50", "p95"}:
                expected[prefix + key] = value
            elif isinstance(value, dict) and key not in ("assumptions", "sources"):
                collect(value, f"{prefix}{key}.")

    collect(summary, "")
    assert any(k.startswith("tiers.") for k in expected)
    assert expected["urr_estimate.liability_interval"] and expected["urr_estimate.std_error"]
    header, *body = rows(book["summary"])
    assert header == ("figure", "label", "unit", "P5", "P50", "P95", "mean")
    got = {r[0]: {"p5": r[3], "p50": r[4], "p95": r[5], "mean": r[6]} for r in body}
    assert got == expected  # every figure, each exactly the number summary.json holds
    for r in body:
        assert all(v is None or type(v) in (int, float) for v in r[3:]), r  # numbers, never text
        assert r[1], r  # labelled
    units = {r[0]: r[2] for r in body}
    assert units["liability"] == units["net_benefit"] == "CNY" and units["points_issued"] == "points" and units["redemption_rate"] == "%"
    assert units["urr_estimate.liability_interval"] == "CNY" and units["urr_estimate.std_error"] == "%"


def test_number_formats_by_kind(book):
    ws = book["summary"]
    fmt = {ws.cell(i, 1).value: ws.cell(i, 5).number_format for i in range(2, ws.max_row + 1)}
    assert fmt["liability"] == '#,##0.00 "CNY"'  # the currency's two decimals and its code
    assert fmt["points_issued"] == "#,##0" and fmt["members"] == "#,##0"
    assert fmt["redemption_rate"] == "0.0000%"  # a ratio of 6 decimals, every digit shown as a percentage
    monthly = book["monthly"]
    header = [c.value for c in monthly[1]]
    assert monthly.cell(2, header.index("liability") + 1).number_format == '#,##0.00 "CNY"'
    assert monthly.cell(2, header.index("closing") + 1).number_format == "#,##0"


def test_monthly_sheet_is_monthly_csv(outs, book):
    csv = pd.read_csv(outs[0] / "monthly.csv")
    sheet = table(book["monthly"])
    assert list(sheet.columns) == list(csv.columns)
    assert sheet.to_numpy().tolist() == csv.to_numpy().tolist()
    assert len(sheet) == 3 * 5  # one row per run and month, as monthly.csv has it


def test_money_shows_exactly_the_csvs_decimals(outs, book):
    # The cell holds the double nearest the amount; its shortest form is the amount itself.
    text = pd.read_csv(outs[0] / "monthly.csv", dtype=str)
    sheet = table(book["monthly"])
    for col in ("reward_cost", "partner_funded", "liability", "revenue_baseline", "revenue_with_program"):
        for cell, written in zip(sheet[col], text[col], strict=True):
            assert Decimal(repr(float(cell))) == Decimal(written), (col, cell, written)


def test_rewards_sheet_is_rewards_csv(outs, book):
    csv = pd.read_csv(outs[0] / "rewards.csv")
    sheet = table(book["rewards"])
    assert list(sheet.columns) == list(csv.columns)
    assert sheet.to_numpy().tolist() == csv.to_numpy().tolist()


def test_assumptions_hold_every_scenario_key_and_each_inputs_path_and_hash(outs, book):
    summary = json.loads((outs[0] / "summary.json").read_text(encoding="utf-8"))
    values = {(s, k): v for s, k, v in rows(book["assumptions"])[1:]}
    flat = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict) and value:
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk(summary["assumptions"], "")
    for key, value in flat.items():
        cell = values[("scenario", key)]
        if value is None:
            assert cell == "(not set)", key
        elif isinstance(value, str):
            assert cell.lstrip("'") == value, key
        else:
            assert cell == value, key
    assert values[("scenario", "columns.customer_id")] == "'" + HOSTILE_COLUMN
    for what, source in summary["sources"].items():
        for field in ("path", "sha256", "given"):
            assert values[("inputs", f"{what} {field}")] == (source[field] if source[field] is not None else "(not set)")


def test_no_cell_holds_a_formula(outs, book):
    with zipfile.ZipFile(outs[0] / "report.xlsx") as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        assert sheets
        for name in sheets:
            assert not re.search(r"<f[ >]", z.read(name).decode("utf-8")), name
    assert all(cell.data_type != "f" for ws in book for row in ws.iter_rows() for cell in row)


def test_hostile_text_is_inert(book):
    texts = [cell.value for ws in book for row in ws.iter_rows() for cell in row if isinstance(cell.value, str)]
    assert not [t for t in texts if t.startswith(RISKY_START)]
    assert "'" + HOSTILE_NAME.replace('"', "'") in texts  # the program's name, as a text with its apostrophe
    assert "'" + HOSTILE_COLUMN in texts


def test_headers_are_frozen_and_columns_sized(book):
    for ws in book:
        assert ws.freeze_panes is not None and ws.freeze_panes.endswith("2"), ws.title  # the header row stays in view
        widths = [ws.column_dimensions[openpyxl.utils.get_column_letter(j)].width for j in range(1, ws.max_column + 1)]
        assert all(w and w >= 4 for w in widths), ws.title


def test_the_same_simulation_gives_the_same_bytes(outs):
    a, b, _ = outs
    assert (a / "report.xlsx").read_bytes() == (b / "report.xlsx").read_bytes()


def test_accounting_and_triangles_sheets_appear_when_the_result_has_them(outs, tmp_path):
    a, _, result = outs
    books = deferred_revenue(
        sales_minor=[100_000, 0], points_earned=[10_000, 0], points_redeemed=[4_500, 4_000],
        expected_redemption=["0.95", "0.97"], value_per_point="0.01", decimals=2, months=["2026-01", "2026-02"],
    )  # fmt: skip
    report = analyse(read_ledger(a / "ledger.parquet"))  # run 0's triangle, from its ledger
    richer = replace(result, accounting=books)
    path = write_workbook(richer, tmp_path / "report.xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["summary", "monthly", "accounting", "triangles", "urr", "urr_by_tier", "rewards", "segments", "assumptions"]
    sheet = table(wb["accounting"])
    for col in ("sales", "opening", "deferred", "recognised_on_redemption", "recognised_breakage", "change_of_estimate", "closing"):
        # Integer minor units, in currency units exactly.
        assert [Decimal(repr(float(v))) for v in sheet[col]] == [Decimal(int(m)).scaleb(-2) for m in books[col]], col
    assert wb["accounting"].cell(2, 3).number_format == '#,##0.00 "CNY"'
    tri = table(wb["triangles"])
    assert list(tri.columns) == list(report.table.columns) and len(tri) == len(report.table)
    assert tri["earned"].tolist() == report.table["earned"].tolist()
    share = list(tri.columns).index("redeemed_share") + 1
    assert wb["triangles"].cell(2, share).number_format == "0.0000%"


def test_large_amounts_show_every_digit(outs, tmp_path):
    # 1,234,567,890,123.45: 15 digits, as many as Excel shows; what the cell shows is the amount.
    richer = replace(outs[2])
    richer.accounting = pd.DataFrame({"month": ["2026-01"], "closing": [123_456_789_012_345], "opening": [-5]})
    wb = openpyxl.load_workbook(write_workbook(richer, tmp_path / "report.xlsx"))
    sheet = table(wb["accounting"])
    assert Decimal(repr(float(sheet["closing"][0]))) == Decimal("1234567890123.45")
    assert Decimal(repr(float(sheet["opening"][0]))) == Decimal("-0.05")


def test_figures_and_columns_another_stage_adds_are_formatted_by_what_they_hold(outs, tmp_path):
    richer = replace(outs[2])
    closing = {"mean": 12.5, "p5": 10.25, "p50": 12.0, "p95": 15.75}
    richer.summary = {**richer.summary, "accounting": {"closing": closing, "urr": {"mean": 0.5, "p5": 0.4, "p50": 0.5, "p95": 0.6}}}
    richer.monthly = richer.monthly.assign(deferred_revenue=[Decimal(i).scaleb(-2) for i in range(len(richer.monthly))], note="x")
    wb = openpyxl.load_workbook(write_workbook(richer, tmp_path / "report.xlsx"))
    summary = {r[0].value: r for r in wb["summary"].iter_rows(min_row=2)}
    assert [c.value for c in summary["accounting.closing"][2:]] == ["CNY", 10.25, 12, 15.75, 12.5]
    assert summary["accounting.closing"][3].number_format == '#,##0.00 "CNY"' and summary["accounting.urr"][3].number_format == "0.0000%"
    monthly = wb["monthly"]
    header = [c.value for c in monthly[1]]
    column = header.index("deferred_revenue") + 1
    assert monthly.cell(3, column).value == 0.01 and monthly.cell(3, column).number_format == '#,##0.00 "CNY"'
    assert monthly.cell(3, header.index("note") + 1).value == "x"


# --- compare.xlsx ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """`loyalty compare` of two programs, one of them in a file whose name would run as a formula."""
    from click.testing import CliRunner

    from simulator.cli import main
    from tests.simulator.simkit import PROGRAM_TEXT

    d = tmp_path_factory.mktemp("compare")
    tx, cu = sample(20, 4, seed=2)
    tx.to_csv(d / "tx.csv", index=False)
    cu.to_csv(d / "cu.csv", index=False)
    (d / "club.loyalty").write_text(PROGRAM_TEXT, encoding="utf-8")
    (d / "=rich.loyalty").write_text(PROGRAM_TEXT.replace("1 point per 1 CNY", "2 points per 1 CNY"), encoding="utf-8")
    args = ["compare", str(d / "club.loyalty"), str(d / "=rich.loyalty"), "--transactions", str(d / "tx.csv"), "--customers", str(d / "cu.csv")]
    res = CliRunner().invoke(main, [*args, "--runs", "3", "--out", str(d / "c"), "--engine", ENGINE, "--quiet", "--workers", "1"])
    assert res.exit_code == 0, res.output
    return d / "c"


def test_compare_xlsx_holds_compare_csvs_figures_and_every_other(comparison):
    import csv

    wb = openpyxl.load_workbook(comparison / "compare.xlsx")
    assert wb.sheetnames == ["comparison", "assumptions"]
    header, *body = rows(wb["comparison"])
    sheet = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    with open(comparison / "compare.csv", newline="", encoding="utf-8") as fh:
        csv_header, *csv_rows = list(csv.reader(fh))
    figures = [r for r in csv_rows if not r[0].startswith("source ")]
    assert figures and "'=rich p50" in csv_header and "'=rich p50" in header
    for r in figures:
        for column, text in zip(csv_header[1:], r[1:], strict=True):
            cell = sheet[r[0]][column]
            assert (cell is None) if text == "" else (type(cell) in (int, float) and cell == float(text)), (r[0], column, cell, text)
    assert "tiers.Plus" in sheet and "rows_outside_period" in sheet  # every figure, not only the headline ones
    for row in sheet.values():
        if row["club p50"] is not None and row["'=rich p50"] is not None:
            # The difference is exact: an amount shows as the amount it is.
            assert Decimal(repr(row["'=rich diff_p50"])) == Decimal(repr(row["'=rich p50"])) - Decimal(repr(row["club p50"]))


def test_compare_xlsx_has_no_formula_and_inert_text(comparison):
    with zipfile.ZipFile(comparison / "compare.xlsx") as z:
        for name in (n for n in z.namelist() if n.startswith("xl/worksheets/")):
            assert not re.search(r"<f[ >]", z.read(name).decode("utf-8")), name
    wb = openpyxl.load_workbook(comparison / "compare.xlsx")
    texts = [c.value for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert not [t for t in texts if t.startswith(RISKY_START)] and "'=rich" in texts
    assert all(ws.freeze_panes and ws.freeze_panes.endswith("2") for ws in wb)


def test_to_xlsx_writes_the_workbook_or_names_the_file_it_cannot_write(outs, tmp_path):
    from rulelang.errors import LoyaltyError

    a, _, result = outs
    assert result.to_xlsx(tmp_path / "r.xlsx").read_bytes() == (a / "report.xlsx").read_bytes()
    with pytest.raises(LoyaltyError, match=r"missing/r\.xlsx: error: cannot write"):
        result.to_xlsx(tmp_path / "missing" / "r.xlsx")


def test_the_garbage_collector_is_left_as_it_was(outs, tmp_path):
    import gc

    result = outs[2]
    assert gc.isenabled()
    write_workbook(result, tmp_path / "a.xlsx")
    assert gc.isenabled()
    gc.disable()
    try:
        write_workbook(result, tmp_path / "b.xlsx")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_program_with_benefits_has_their_figures_and_columns_as_money(tmp_path):
    import rulelang
    from tests.simulator.simkit import PROGRAM_TEXT

    text = PROGRAM_TEXT + "benefit gift: cost 12.5 CNY when month(date) == month(customer.birthday) once per year funded 40% by brand\n"
    tx, cu = sample(30, 5, seed=5)
    res = simulate(rulelang.loads(text, "b.loyalty"), tx, cu, scenario(runs=2), workers=1, engine=ENGINE)
    res.write(tmp_path)
    wb = openpyxl.load_workbook(tmp_path / "report.xlsx")
    summary = {r[0]: r for r in rows(wb["summary"])}
    assert summary["benefit_cost"][1:3] == ("Cost of benefits given", "CNY")
    assert summary["benefit_partner_funded"][1:3] == ("Benefits funded by partners", "CNY")
    monthly = wb["monthly"]
    header = [c.value for c in monthly[1]]
    csv = pd.read_csv(tmp_path / "monthly.csv")
    assert header == list(csv.columns) and header.index("benefit_cost") == header.index("partner_funded") + 1
    assert monthly.cell(2, header.index("benefit_cost") + 1).number_format == '#,##0.00 "CNY"'
    assert table(monthly)["benefit_cost"].sum() == pytest.approx(res.summary["benefit_cost"]["mean"] * 2)
