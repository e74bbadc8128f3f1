"""`loyalty fit`: the CDNOW sample's fits printed and written, the model file read back, the same
bytes on every run, a scenario's column mapping, and clear errors for histories it cannot fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rulelang import sha256_file
from rulelang.errors import LoyaltyError
from simulator.cli import main
from simulator.forecast import bgnbd, fitting, summary
from tests.simulator.forecast import cdnow

SAMPLE = str(cdnow.SAMPLE_CSV)


def _cli(*args):
    res = CliRunner().invoke(main, ["fit", *args])
    assert "Traceback" not in res.output
    return res


def _ok(res):
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def test_the_cdnow_sample_prints_both_fits_and_the_summary():
    out = _ok(_cli(SAMPLE, "--until", "1997-09-30", "--quiet")).output
    assert "2,357 customers, 946 repeat buyers; calibration 1997-01-01 to 1997-09-30 (39.0 weeks)" in out
    # name -> (estimate, standard error) of each table row; the raw transactions' days / 7 exactly
    # (the paper rounds weeks to 2 decimals and gets alpha 4.4135, b 2.4258).
    rows = {parts[0]: parts[1:] for parts in (line.split() for line in out.splitlines()) if len(parts) == 3}
    assert {k: rows[k][0] for k in ("r", "alpha", "a", "b")} == {"r": "0.2426", "alpha": "4.4136", "a": "0.7929", "b": "2.4259"}
    assert rows["r"][1] == "0.0126"  # its standard error
    assert [line.split()[-1] for line in out.splitlines() if "log-likelihood" in line][0] == "-9,582.43"
    assert {k: rows[k][0] for k in ("p", "q", "gamma")} == {"p": "6.2496", "q": "3.7442", "gamma": "15.4435"}
    assert "Gamma-Gamma (spend, 946 repeat buyers)" in out
    assert "share of customers still active" in out and "expected purchases per customer, next 52 weeks" in out


def test_json_and_the_model_file(tmp_path):
    model = tmp_path / "model.json"
    res = _ok(_cli(SAMPLE, "--until", "1997-09-30", "--out", str(model), "--format", "json", "--quiet"))
    printed = json.loads(res.output)
    written = json.loads(model.read_text())
    assert printed == written
    assert written["data"] == {"file": SAMPLE, "sha256": sha256_file(SAMPLE)}
    assert written["calibration"] == {
        "first_day": "1997-01-01", "until": "1997-09-30", "time_unit": "weeks", "days_per_unit": 7.0, "money_unit": "currency units (2 decimals)",
    }  # fmt: skip
    assert written["summary"]["customers"] == 2357 and written["summary"]["repeat_buyers"] == 946
    params = written["bgnbd"]["parameters"]
    assert np.allclose([params[k] for k in bgnbd.NAMES], list(cdnow.PUBLISHED_BGNBD.values()), atol=2e-4)
    assert round(written["bgnbd"]["log_likelihood"], 2) == cdnow.PUBLISHED_LL
    assert np.array(written["bgnbd"]["log_covariance"]).shape == (4, 4)
    assert set(written["gamma_gamma"]["standard_errors"]) == {"p", "q", "gamma"}
    # Read back: the fits as they were; the summary's figures are the models' own.
    back = fitting.read_model(model)
    assert back.bgnbd.params == tuple(params[k] for k in bgnbd.NAMES)
    assert np.array_equal(back.gamma_gamma.log_covariance, np.array(written["gamma_gamma"]["log_covariance"]))
    s = summary.summarize(cdnow.loaded_sample().frame, cdnow.CALIBRATION_END)
    share = bgnbd.probability_alive(back.bgnbd.params, s.x, s.t_x, s.T).mean()
    assert written["summary"]["share_active"] == pytest.approx(share, rel=1e-12)
    # The same inputs give the same bytes.
    first = model.read_bytes()
    _ok(_cli(SAMPLE, "--until", "1997-09-30", "--out", str(model), "--quiet"))
    assert model.read_bytes() == first


def test_a_damaged_model_file_is_named(tmp_path):
    bad = tmp_path / "model.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(LoyaltyError, match=r"model\.json: error: not a model file"):
        fitting.read_model(bad)
    bad.write_text('{"format": "loyalty-fit/1", "bgnbd": {}}')
    with pytest.raises(LoyaltyError, match="incomplete or damaged"):
        fitting.read_model(bad)
    bad.write_text("{")
    with pytest.raises(LoyaltyError, match="cannot read the model file"):
        fitting.read_model(bad)


def test_a_scenarios_column_mapping_and_timestamp_format(tmp_path):
    raw = cdnow.raw_sample()
    history = tmp_path / "orders.csv"
    pd.DataFrame({"member": raw["sample_id"], "day": raw["date"], "value": raw["dollars"]}).to_csv(history, index=False)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("columns:\n  customer_id: member\n  timestamp: day\n  amount: value\ntimestamp_format: '%Y%m%d'\n")
    mapped = json.loads(_ok(_cli(str(history), "--scenario", str(scenario), "--until", "1997-09-30", "--format", "json", "--quiet")).output)
    plain = json.loads(_ok(_cli(SAMPLE, "--until", "1997-09-30", "--format", "json", "--quiet")).output)
    assert mapped["bgnbd"] == plain["bgnbd"] and mapped["gamma_gamma"] == plain["gamma_gamma"]


def _history(tmp_path, rows) -> str:
    path = tmp_path / "tx.csv"
    pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).to_csv(path, index=False)
    return str(path)


def test_histories_it_cannot_fit_get_clear_errors(tmp_path):
    res = _cli(SAMPLE, "--until", "1996-12-31", "--quiet")
    assert res.exit_code == 1
    assert "cdnow_sample.csv.gz: error: --until 1996-12-31 is before the first purchase in the data (1997-01-01)" in res.output
    once = _history(tmp_path, [(f"c{i}", "2026-01-01", "5") for i in range(30)])
    res = _cli(once, "--quiet")
    assert res.exit_code == 1 and "tx.csv: error: no customer bought again" in res.output
    few = _history(tmp_path, [("a", "2026-01-01", "5"), ("a", "2026-02-01", "5"), ("b", "2026-01-05", "5")])
    res = _cli(few, "--quiet")
    assert res.exit_code == 1 and "only 2 customer(s): the BG/NBD fit needs at least 10" in res.output


def test_usage_problems_exit_2(tmp_path):
    res = _cli(SAMPLE, "--until", "30/09/1997")
    assert res.exit_code == 2 and "'30/09/1997' is not a date; write it like 1997-09-30" in res.output
    res = _cli(SAMPLE, "--out", SAMPLE, "--quiet")
    assert res.exit_code == 2 and "--out is the transactions file" in res.output
    res = _cli(SAMPLE, "--quiet", "--out", str(tmp_path / "no" / "such" / "folder" / "model.json"))
    assert res.exit_code == 2 and "cannot write the model file" in res.output
