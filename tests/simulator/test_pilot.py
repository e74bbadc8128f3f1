"""simulator.pilot: the pilot file, read with the scenario's bounded loader; every mistake at its key's line:col."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from simulator.pilot import Group, group_ids, load_pilot, loads_pilot, read_ids
from simulator.scenario import ScenarioError
from tests.conftest import EXAMPLES

GOOD = """\
transactions: tx.csv
treated: treated.txt
control: {column: pilot_group, value: control}
start: 2026-03-02
end: 2026-04-12
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "tx.csv").write_text("customer_id,timestamp,amount,pilot_group\na,2026-03-03,1.00,treated\nb,2026-03-03,2.00,control\n", encoding="utf-8")
    (tmp_path / "treated.txt").write_text("# the treated\na\n\n  c  \na\n", encoding="utf-8")
    return tmp_path


def _problem(text, folder) -> str:
    with pytest.raises(ScenarioError) as e:
        loads_pilot(text, "p.yaml", folder)
    return str(e.value)


def test_the_example_pilot_reads():
    p = load_pilot(EXAMPLES / "pilot" / "pilot.yaml")
    assert (p.start, p.end, p.pre_start) == (dt.date(2026, 3, 2), dt.date(2026, 4, 12), dt.date(2026, 1, 19))  # as long as the pilot, before it
    assert p.treated == Group("treated", column="pilot_group", value="treated")
    assert p.columns["customer_id"] == "member_no"
    assert p.transactions == EXAMPLES / "pilot" / "transactions.csv"


def test_a_list_file_and_a_column_give_the_groups(folder):
    p = loads_pilot(GOOD + "pre_start: 2026-01-05\n", "p.yaml", folder)
    assert p.pre_start == dt.date(2026, 1, 5)
    assert list(read_ids(p.treated, p)) == ["a", "c"]  # comments, blanks and repeats skipped, edges stripped
    frame = pd.read_csv(folder / "tx.csv")
    assert list(group_ids(p.control, p, frame, None)) == ["b"]


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD.replace("start: 2026-03-02", "start: 2026-02-30"), "p.yaml:4:8: error: cannot read '2026-02-30' as a date"),
        (GOOD.replace("end: 2026-04-12", "end: 2026-03-01"), "p.yaml:5:6: error: end: the pilot ends (2026-03-01) before it starts (2026-03-02)"),
        (GOOD + "pre_start: 2026-03-02\n", "p.yaml:6:12: error: pre_start: the pre-period must start before the pilot"),
        (GOOD.replace("end: 2026-04-12\n", ""), "p.yaml:1:1: error: (top level): `end` is missing; a pilot needs transactions, treated, control, start and end"),
        (GOOD.replace("treated: treated.txt", "treated: nobody.txt"), "p.yaml:2:10: error: treated: no such file"),
        (GOOD.replace("value: control", "vale: control"), "p.yaml:3:32: error: control.vale: unknown key `vale`; did you mean `value`?"),
        (GOOD.replace("{column: pilot_group, value: control}", "[a, b]"), "p.yaml:3:10: error: control: expected a file of customer ids"),
        (GOOD + "strat: 2026-01-01\n", "p.yaml:6:1: error: strat: unknown key `strat`; did you mean `start`?"),
        (GOOD + "columns: {customer_id: customer_id, amont: total}\n", "columns.amont: unknown column `amont`; did you mean `amount`?"),
        ("transactions: &t tx.csv\n", "p.yaml:1:15: error: `&t`: anchors and aliases are not allowed"),
        ("- a\n- b\n", "p.yaml:1:1: error: (top level): expected a mapping of keys"),
    ],
)
def test_mistakes_name_the_key_and_place(folder, text, message):
    assert message in _problem(text, folder)


def test_every_mistake_is_reported_at_once(folder):
    text = GOOD.replace("start: 2026-03-02", "start: soon").replace("treated: treated.txt", "treated: {column: g}")
    problems = _problem(text, folder).splitlines()
    assert [p.split(": error: ")[1].split(":")[0] for p in problems] == ["treated", "start"]


def test_group_column_mistakes_name_the_key(folder):
    p = loads_pilot(GOOD.replace("value: control", "value: contrl"), "p.yaml", folder)
    frame = pd.read_csv(folder / "tx.csv")
    with pytest.raises(ScenarioError, match=r"p.yaml:3:39: error: control.value: no customer has contrl in column pilot_group; its values include: treated, control"):
        group_ids(p.control, p, frame, None)
    p = loads_pilot(GOOD.replace("column: pilot_group", "column: group"), "p.yaml", folder)
    with pytest.raises(ScenarioError, match=r"p.yaml:3:19: error: control.column: no column group in the transactions \(name a customers file"):
        group_ids(p.control, p, frame, None)


def test_an_empty_list_file_is_an_error(folder):
    (folder / "treated.txt").write_text("# nobody yet\n\n", encoding="utf-8")
    p = loads_pilot(GOOD, "p.yaml", folder)
    with pytest.raises(ScenarioError, match=r"p.yaml:2:10: error: treated: .*treated.txt lists no customer ids"):
        read_ids(p.treated, p)


def test_a_missing_pilot_file(tmp_path):
    with pytest.raises(ScenarioError, match="no such pilot file"):
        load_pilot(tmp_path / "none.yaml")


def test_a_span_over_ten_years_is_refused_at_its_key(folder):
    message = _problem(GOOD + "pre_start: 2010-01-01\n", folder)
    assert "p.yaml:6:12: error: pre_start: the pre-period and the pilot span 5,946 days; at most 3,660" in message


def test_a_pilot_file_too_large_is_refused_as_a_pilot_file(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(ScenarioError, match=r"big.yaml: error: the pilot file is larger than 1,048,576 bytes \(1 MiB\); a pilot file needs"):
        load_pilot(big)
    with pytest.raises(ScenarioError, match=r"<pilot>: error: the pilot file is larger than"):
        loads_pilot("# " + "x" * (1024 * 1024))
