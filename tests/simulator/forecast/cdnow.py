"""The CDNOW data of tests/data/cdnow (see its README), read for the forecast tests."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pandas as pd

from simulator import io
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "cdnow"
SAMPLE_CSV = DATA / "cdnow_sample.csv.gz"
CALIBRATION_END = dt.date(1997, 9, 30)  # week 39
HOLDOUT_END = dt.date(1998, 6, 30)  # week 78

# Fader, Hardie & Lee (2005), BG/NBD on the 2,357-customer sample, 39-week calibration.
PUBLISHED_BGNBD = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}
PUBLISHED_LL = -9582.43
# The Gamma-Gamma ML fit of the redistributed summary's 946 repeat buyers (published rounded: 6.25, 3.74, 15.44).
GAMMA_GAMMA_FIT = {"p": 6.2488, "q": 3.7446, "gamma": 15.4477}


@cache
def raw_sample() -> pd.DataFrame:
    """CDNOW_sample.txt as it is: master id, sample id, date YYYYMMDD, CDs, dollars (all text)."""
    return pd.read_csv(DATA / "CDNOW_sample.txt.gz", sep=r"\s+", header=None, names=["master_id", "sample_id", "date", "cds", "dollars"], dtype=str)


@cache
def raw_master() -> pd.DataFrame:
    return pd.read_csv(DATA / "CDNOW_master.txt.gz", sep=r"\s+", header=0, names=["customer_id", "date", "cds", "dollars"], dtype=str)


def as_transactions(raw: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """A raw CDNOW table as the loader's columns: customer_id, timestamp (ISO day), amount (dollars)."""
    day = pd.to_datetime(raw["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d")
    return pd.DataFrame({"customer_id": raw[id_column].str.lstrip("0"), "timestamp": day, "amount": raw["dollars"]})


@cache
def loaded_sample():
    return io.load_transactions(as_transactions(raw_sample(), "sample_id"))


@cache
def published_summary() -> pd.DataFrame:
    """Fader & Hardie's per-customer summary of the sample (ID, x, t_x, T, zbar), by ID."""
    return pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv").set_index("ID").sort_index()
