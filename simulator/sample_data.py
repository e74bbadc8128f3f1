"""Synthetic transaction histories for a coffee chain that also sells groceries and fuel.

Heavy-tailed visit frequency and spend (about 20% of customers bring about 80% of revenue),
multi-line baskets sharing a `transaction_id`, a few refunds and referrals, birthdays and
segments. Every draw comes from `simulator.rng` (a hash of the coordinates), so the output depends
only on the parameters, not on the NumPy version. Column-at-a-time throughout.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from rulelang import atomic_replace, formula_safe
from simulator import rng

DATA_DIR = Path(__file__).resolve().parent / "data"
# The bundled sample, the default data of `loyalty simulate`; regenerate with
# `python -m simulator.sample_data` (a test checks the files equal `generate(**BUNDLED)`).
# Its pilot (programs/coffee_pilot.yaml; `loyalty calibrate` measures it): of the customers who
# joined before the pre-period (as long as the pilot, just before it), `share` are in the pilot, half
# treated, half control; in the pilot's days treated customers visit `visit_lift` more often and
# spend `spend_lift` more a visit (the true uplifts), the control as before.
BUNDLED_PILOT = {"start": "2026-09-01", "end": "2026-10-31", "share": 1.0, "spend_lift": 0.04, "visit_lift": 0.08}
BUNDLED = {"customers": 2000, "months": 12, "seed": 2026, "start": "2026-01-01", "pilot": BUNDLED_PILOT}
BUNDLED_FILES = ("transactions.parquet", "customers.parquet")

# category -> (share of basket lines, [(sku, price)], aisle); prices in the program currency.
# Grocery lines are in the "organic" aisle with ORGANIC_SHARE, else in their own aisle.
CATALOGUE: dict[str, tuple[float, list[tuple[str, float]], str]] = {
    "coffee": (0.38, [("LATTE", 32.0), ("AMERICANO", 26.0), ("FLAT-WHITE", 34.0), ("COLD-BREW", 30.0)], "cafe"),
    "tea": (0.10, [("GREEN-TEA", 22.0), ("MILK-TEA", 26.0), ("MATCHA-LATTE", 33.0)], "cafe"),
    "pastry": (0.16, [("CROISSANT", 16.0), ("MUFFIN", 15.0), ("CHEESECAKE", 28.0)], "bakery"),
    "food": (0.12, [("SANDWICH", 36.0), ("SALAD", 42.0), ("WRAP", 33.0)], "deli"),
    "beans": (0.05, [("BEANS-250G", 88.0), ("BEANS-1KG", 268.0)], "cafe"),
    "merch": (0.02, [("MUG", 98.0), ("TUMBLER", 168.0)], "merch"),
    "grocery": (0.12, [("MILK-1L", 14.0), ("CEREAL-500G", 32.0), ("BREAD", 12.0), ("EGGS-10", 18.0), ("JUICE-1L", 16.0)], "grocery"),
    "fuel": (0.05, [("FUEL-95", 320.0), ("FUEL-92", 290.0)], "forecourt"),
}
ORGANIC_SHARE = 0.3
CHANNELS = ("store", "app", "online")
SEGMENTS = (("office", 0.40), ("student", 0.20), ("family", 0.25), ("retiree", 0.15))
CITIES = (("Shanghai", 0.35), ("Beijing", 0.25), ("Shenzhen", 0.15), ("Hangzhou", 0.15), ("Chengdu", 0.10))
# Hour-of-day weights, 07:00 to 21:00: a morning rush, lunch, an afternoon pick-me-up.
HOURS = np.arange(7, 22)
HOUR_WEIGHTS = np.array([10, 14, 9, 6, 7, 10, 9, 6, 7, 6, 5, 4, 3, 2, 2], dtype=float)

REFUND_SHARE = 0.02
REFERRER_SHARE = 0.05

# One stream per kind of draw, so that adding a draw never shifts the others.
(S_JOIN, S_JOINDAY, S_CHURN, S_CHURNDAY, S_RATE1, S_RATE2, S_SCALE1, S_SCALE2, S_ROUND, S_APP, S_HOME,
 S_DAY, S_HOUR, S_MIN, S_LINES, S_CHAN, S_STORE, S_CAT, S_SKU, S_QTY, S_NOISE1, S_NOISE2,
 S_REFUND, S_REFDAY, S_REFKIND, S_REFER, S_REFERDAY, S_BDAY_MISS, S_BDAY, S_SEG, S_CITY, S_GENDER, S_ORGANIC,
 S_PILOT, S_ARM, S_EXTRA, S_EXTRADAY) = range(37)  # fmt: skip
PILOT_ARMS = (None, "control", "treated")  # the customers' `pilot_group`, by arm (0: not in the pilot)


def _u(seed: int, stream: int, n: int) -> np.ndarray:
    return rng.uniform(seed, 0, np.arange(n, dtype=np.uint64), np.zeros(n, dtype=np.uint64), stream)


def _normal(seed: int, s1: int, s2: int, n: int) -> np.ndarray:
    # Box-Muller on two independent uniforms; 1 - u keeps the log finite.
    return np.sqrt(-2.0 * np.log1p(-_u(seed, s1, n))) * np.cos(2.0 * np.pi * _u(seed, s2, n))


def _pick(u: np.ndarray, weights) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return np.minimum(np.searchsorted(np.cumsum(w) / w.sum(), u, side="right"), len(w) - 1)


def generate(customers: int, months: int, seed: int, start: str = "2026-01-01", pilot: Mapping | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transactions, customers) for `customers` people over `months` months from `start`.

    With `pilot` (`{start, end, share, spend_lift, visit_lift}`, as `BUNDLED_PILOT`) the history
    holds a pilot with a known lift, and the customers a `pilot_group` column (`treated`, `control`,
    or missing); without one, the history is as it always was (the pilot's draws are streams of
    their own, and its extra visits come after every other draw's counters)."""
    if customers < 1 or months < 1:
        raise ValueError("customers and months must be at least 1")
    t0 = pd.Timestamp(start).normalize()
    days = (t0 + pd.DateOffset(months=months) - t0).days
    n = customers
    width = max(6, len(str(n)))
    ids = pd.Series(np.arange(1, n + 1)).astype("str").str.zfill(width).radd("C").to_numpy(dtype=object)

    # --- customers: when they are around, how often they come, how much they spend -----------
    joins_late = _u(seed, S_JOIN, n) < 0.3
    join = np.where(joins_late, np.floor(_u(seed, S_JOINDAY, n) * days * 0.8), 0).astype(np.int64)
    churns = _u(seed, S_CHURN, n) < 0.15
    leave = np.where(churns, join + 1 + np.floor(_u(seed, S_CHURNDAY, n) * (days - join - 1)), days).astype(np.int64)
    span = np.maximum(leave - join, 1)
    rate = np.clip(np.exp(np.log(1.0) + 1.6 * _normal(seed, S_RATE1, S_RATE2, n)), 0.05, 45.0)  # visits per 30 days
    scale = np.exp(0.75 * _normal(seed, S_SCALE1, S_SCALE2, n))  # how pricey their choices are
    visits = np.maximum(np.floor(rate * span / 30.0 + _u(seed, S_ROUND, n)), 1).astype(np.int64)
    app_share = np.where(_u(seed, S_APP, n) < 0.35, 0.7, 0.05)
    stores = int(np.clip(n // 150, 3, 30))
    home = np.floor(_u(seed, S_HOME, n) * stores).astype(np.int64)

    # --- visits (baskets) --------------------------------------------------------------------
    c = np.repeat(np.arange(n), visits)
    day = join[c] + np.floor(_u(seed, S_DAY, len(c)) * span[c]).astype(np.int64)
    arm = np.zeros(n, dtype=np.int64)
    lifted = np.zeros(len(c), dtype=bool)
    if pilot is not None:
        arm, c, day, lifted = _pilot(seed, pilot, t0, join, leave, c, day)
    v = len(c)
    hour = HOURS[_pick(_u(seed, S_HOUR, v), HOUR_WEIGHTS)]
    secs = day * 86400 + hour * 3600 + np.floor(_u(seed, S_MIN, v) * 3600).astype(np.int64)
    ul = _u(seed, S_LINES, v)
    lines = 1 + (ul > 0.5).astype(np.int64) + (ul > 0.8) + (ul > 0.93) + (ul > 0.98)
    uc = _u(seed, S_CHAN, v)
    channel = np.where(uc < app_share[c], 1, np.where(uc < app_share[c] + 0.08, 2, 0))
    us = _u(seed, S_STORE, v)
    store = np.where(us < 0.8, home[c], np.floor((us - 0.8) / 0.2 * stores).astype(np.int64))

    # --- basket lines ------------------------------------------------------------------------
    b = np.repeat(np.arange(v), lines)
    m = len(b)
    line_no = np.arange(m) - np.repeat(np.cumsum(lines) - lines, lines)
    cats = list(CATALOGUE)
    cat = _pick(_u(seed, S_CAT, m), [CATALOGUE[k][0] for k in cats])
    skus = [s for k in cats for s, _ in CATALOGUE[k][1]]
    prices = np.array([p for k in cats for _, p in CATALOGUE[k][1]])
    first_sku = np.cumsum([0] + [len(CATALOGUE[k][1]) for k in cats])
    n_skus = np.diff(first_sku)
    sku = first_sku[cat] + np.minimum(np.floor(_u(seed, S_SKU, m) * n_skus[cat]).astype(np.int64), n_skus[cat] - 1)
    uq = _u(seed, S_QTY, m)
    qty = np.where(cats.index("fuel") == cat, 1, 1 + (uq > 0.85).astype(np.int64) + (uq > 0.96))
    noise = np.exp(0.15 * _normal(seed, S_NOISE1, S_NOISE2, m))
    spend_lift = 1.0 + (float(pilot["spend_lift"]) if pilot is not None else 0.0)
    amount = np.round(prices[sku] * qty * scale[c[b]] * noise * np.where(lifted[b], spend_lift, 1.0), 2)
    aisle = np.array([CATALOGUE[k][2] for k in cats], dtype=object)[cat]
    aisle[(aisle == "grocery") & (_u(seed, S_ORGANIC, m) < ORGANIC_SHARE)] = "organic"

    basket = pd.DataFrame(
        {
            "cust": c[b],
            "secs": secs[b],
            "basket": b,
            "order": line_no,
            "amount": amount,
            "event": "purchase",
            "category": np.array(cats, dtype=object)[cat],
            "sku": np.array(skus, dtype=object)[sku],
            "aisle": aisle,
            "quantity": qty,
            "channel": np.array(CHANNELS, dtype=object)[channel[b]],
            "store": store[b],
        }
    )

    # --- refunds: of an earlier basket, full or of its first line ----------------------------
    refunded = np.flatnonzero(_u(seed, S_REFUND, v) < REFUND_SHARE)
    r_secs = secs[refunded] + 86400 * (1 + np.floor(_u(seed, S_REFDAY, len(refunded)) * 10).astype(np.int64))
    keep = r_secs < days * 86400
    refunded, r_secs = refunded[keep], r_secs[keep]
    first_line = np.cumsum(lines) - lines
    totals = np.add.reduceat(amount, first_line)
    full = _u(seed, S_REFKIND, len(refunded)) < 0.6
    r_amount = -np.where(full, totals[refunded], amount[first_line[refunded]])
    fl = basket.iloc[first_line[refunded]]
    refunds = pd.DataFrame(
        {
            "cust": c[refunded], "secs": r_secs, "basket": refunded, "order": 0, "amount": np.round(r_amount, 2),
            "event": "refund", "category": fl["category"].to_numpy(), "sku": np.where(full, "", fl["sku"].to_numpy()), "aisle": fl["aisle"].to_numpy(),
            "quantity": np.where(full, 0, fl["quantity"].to_numpy()), "channel": fl["channel"].to_numpy(), "store": store[refunded],
        }
    )  # fmt: skip

    # --- referrals: an existing customer brings a friend -------------------------------------
    referrer = np.flatnonzero(_u(seed, S_REFER, n) < REFERRER_SHARE)
    f_secs = (join[referrer] + np.floor(_u(seed, S_REFERDAY, len(referrer)) * span[referrer]).astype(np.int64)) * 86400 + 12 * 3600
    referrals = pd.DataFrame(
        {
            "cust": referrer, "secs": f_secs, "basket": -1, "order": 0, "amount": 0.0, "event": "referral",
            "category": "", "sku": "", "aisle": "", "quantity": 0, "channel": "app", "store": home[referrer],
        }
    )  # fmt: skip

    rows = pd.concat([basket, refunds, referrals], ignore_index=True)
    rows["kind"] = rows["event"].map({"purchase": 0, "refund": 1, "referral": 2})
    rows = rows.sort_values(["cust", "secs", "kind", "basket", "order"], kind="stable").reset_index(drop=True)
    # Transaction ids number baskets in output order; refunds carry the id of the basket they refund.
    is_basket_start = (rows["kind"] == 0) & (rows["order"] == 0)
    rank = np.full(v, -1, dtype=np.int64)
    rank[rows.loc[is_basket_start, "basket"].to_numpy()] = np.arange(1, int(is_basket_start.sum()) + 1)
    tx_num = np.where(rows["basket"].to_numpy() >= 0, rank[rows["basket"].clip(lower=0).to_numpy()], 0)
    tx = pd.Series(tx_num).astype("str").str.zfill(8).radd("T").where(tx_num > 0, "")

    transactions = pd.DataFrame(
        {
            "customer_id": pd.array(ids[rows["cust"].to_numpy()], dtype="str"),
            "timestamp": (t0 + pd.to_timedelta(rows["secs"].to_numpy(), unit="s")).astype("datetime64[ns]"),
            "transaction_id": pd.array(tx.to_numpy(), dtype="str"),
            "event": pd.array(rows["event"].to_numpy(), dtype="str"),
            "amount": rows["amount"].to_numpy(dtype=np.float64),
            "category": pd.array(rows["category"].to_numpy(), dtype="str"),
            "sku": pd.array(rows["sku"].to_numpy(), dtype="str"),
            "aisle": pd.array(rows["aisle"].to_numpy(), dtype="str"),
            "quantity": rows["quantity"].to_numpy(dtype=np.int64),
            "channel": pd.array(rows["channel"].to_numpy(), dtype="str"),
            "store": pd.Series(rows["store"].to_numpy() + 1).astype("str").str.zfill(2).radd("S").astype("str").to_numpy(),
        }
    )
    transactions["store"] = transactions["store"].astype("str")
    people = _customers(seed, ids, t0)
    if pilot is not None:
        people["pilot_group"] = pd.array(np.array(PILOT_ARMS, dtype=object)[arm], dtype="str")
    return transactions, people


def _pilot(seed: int, pilot: Mapping, t0: pd.Timestamp, join, leave, c, day):
    """The pilot's arms (0 out, 1 control, 2 treated, per customer), the baskets' customers and days
    with the treated customers' extra visits in the pilot appended, and whether each basket is a
    treated one in the pilot (its lines are scaled by the spend lift)."""
    first = (pd.Timestamp(pilot["start"]) - t0).days
    last = (pd.Timestamp(pilot["end"]) - t0).days
    pre = first - (last - first + 1)  # the pre-period: as long as the pilot, just before it
    n = len(join)
    # Customers known before the pre-period; whether they stay on is not known, so not asked.
    chosen = (join < pre) & (_u(seed, S_PILOT, n) < float(pilot["share"]))
    arm = np.where(chosen, np.where(_u(seed, S_ARM, n) < 0.5, 2, 1), 0)
    in_pilot = (arm[c] == 2) & (day >= first) & (day <= last)
    # Each treated visit in the pilot brings another with chance `visit_lift`: visits x (1 + visit_lift).
    extra = c[in_pilot & (_u(seed, S_EXTRA, len(c)) < float(pilot["visit_lift"]))]
    lo, hi = np.maximum(first, join[extra]), np.minimum(last + 1, leave[extra])
    extra_day = lo + np.floor(_u(seed, S_EXTRADAY, len(extra)) * (hi - lo)).astype(np.int64)
    lifted = np.concatenate([in_pilot, np.ones(len(extra), dtype=bool)])
    return arm, np.concatenate([c, extra]), np.concatenate([day, extra_day]), lifted


def _customers(seed: int, ids: np.ndarray, t0: pd.Timestamp) -> pd.DataFrame:
    n = len(ids)
    age_days = np.floor((18 + _u(seed, S_BDAY, n) * 52) * 365.25).astype(np.int64)
    birthday = (t0 - pd.to_timedelta(age_days, unit="D")).astype("datetime64[ns]")
    birthday = pd.Series(birthday).where(_u(seed, S_BDAY_MISS, n) >= 0.08)  # some never told us
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="str"),
            "birthday": birthday.to_numpy(),
            "segment": pd.array(np.array([s for s, _ in SEGMENTS], dtype=object)[_pick(_u(seed, S_SEG, n), [w for _, w in SEGMENTS])], dtype="str"),
            "city": pd.array(np.array([s for s, _ in CITIES], dtype=object)[_pick(_u(seed, S_CITY, n), [w for _, w in CITIES])], dtype="str"),
            "gender": pd.array(np.where(_u(seed, S_GENDER, n) < 0.52, "F", "M").astype(object), dtype="str"),
        }
    )


def write(transactions: pd.DataFrame, customers: pd.DataFrame, out_dir: str | Path, fmt: str = "csv") -> tuple[Path, Path]:
    """Write `transactions.<fmt>` and `customers.<fmt>` into `out_dir` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tx_path, cu_path = out / f"transactions.{fmt}", out / f"customers.{fmt}"
    if fmt == "csv":
        # Formula-safe like every CSV the toolkit writes: the generated text never needs it (ids,
        # cities and the like from fixed lists), frames of one's own given to `write` may.
        writers = (
            lambda p: formula_safe(transactions).to_csv(p, index=False, float_format="%.2f", date_format="%Y-%m-%d %H:%M:%S", lineterminator="\n"),
            lambda p: formula_safe(customers).to_csv(p, index=False, date_format="%Y-%m-%d", lineterminator="\n"),
        )
    elif fmt == "parquet":
        writers = (lambda p: transactions.to_parquet(p, index=False, compression="zstd"), lambda p: customers.to_parquet(p, index=False, compression="zstd"))
    else:
        raise ValueError(f"unknown format {fmt!r}; expected csv or parquet")
    # Each file replaced whole: a killed or failed write leaves the old file, never a truncated one.
    for path, write_to in zip((tx_path, cu_path), writers, strict=True):
        with atomic_replace(path) as tmp:
            write_to(tmp)
    return tx_path, cu_path


def bundled_paths() -> tuple[Path, Path]:
    """(transactions, customers) of the sample that ships with the toolkit."""
    return DATA_DIR / BUNDLED_FILES[0], DATA_DIR / BUNDLED_FILES[1]


def regenerate_bundled() -> tuple[Path, Path]:
    """Rewrite the bundled sample from `BUNDLED`."""
    tx, cu = generate(**BUNDLED)
    return write(tx, cu, DATA_DIR, "parquet")


if __name__ == "__main__":
    for p in regenerate_bundled():
        print(p, f"{p.stat().st_size:,} bytes")
