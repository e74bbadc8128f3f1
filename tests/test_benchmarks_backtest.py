"""benchmarks/backtest.py's comparison models against published figures (correctness only, never timing)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np

from simulator import io
from simulator.forecast import summary

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import backtest as study  # noqa: E402


def _sample_summary():
    s = summary.summarize(io.load_transactions(study.history("sample")).frame, dt.date(1997, 9, 30))
    return s.x.astype(np.float64), s.t_x, s.T


def test_the_pareto_nbd_of_the_study_is_the_published_cdnow_fit():
    # Fader, Hardie & Lee (2005, "RFM and CLV"): r = 0.55, alpha = 10.58, s = 0.61, beta = 11.67.
    p, forecast = study.pareto_nbd(*_sample_summary(), 39.0)
    assert np.round(p, 2).tolist() == [0.55, 10.58, 0.61, 11.67]
    assert 1500 < forecast < 1882  # below the 1,882 purchase days that happened, as the study records

