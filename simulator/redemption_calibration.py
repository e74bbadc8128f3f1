"""Redemption behaviour measured from a running program's ledger: how often a member who can afford
a reward redeems on a visit, and which reward they choose.

A ledger holds postings only: a visit on which the member could have redeemed but did not, and
earned nothing, leaves no trace in it. So the visits come from the transactions (a visit is a
purchase basket, as the engine reads one: `rulelang.engine.basket_starts`), and the ledger gives
each visit's balance and tier and whether a reward was redeemed on it.

- *Rewards and prices.* A redemption is the `redeem` postings of one (customer, row, reward) (a
  redemption takes several lots, one posting each); its points are their sum. A reward's price is
  the points most of its redemptions took (a price that changed is noted). Only rewards the ledger
  shows redeemed are known.
- *The balance a visit can spend.* The engine's redemption policy (docs/semantics.md
  "Redemption") decides after the basket's own postings, so a visit's balance is the sum of the
  member's postings at or before its time (earn +, clawback, redeem and expire -, capped and
  shortfall 0) with the redemptions at that very time added back (they are the decision being
  measured). The balance before the visit alone would call a visit whose own points bring the
  member to a reward unaffordable although the member redeemed on it, and bias the estimate
  (measured: docs/simulator.md). Visits are matched to redemptions by (customer, time), not by
  row: a simulated ledger numbers the rows the engine evaluated (members' rows plus enrol rows), a
  program's own ledger its own input's rows, and neither need be the transactions file's rows.
  Baskets of one member at one time are one moment with as many chances as baskets.
- *The probability* of redeeming on an affordable visit (the balance affords the cheapest known
  reward) is redemptions / affordable visits, overall and by tier (the tier of the member's last
  posting at or before the visit: the visit's own postings carry the tier it was made at). Its
  95% interval is Wilson's with the effective number of visits: the visits of one member are not
  independent draws (some members redeem whenever they can, others never), so the variance is the
  cluster-robust one of a ratio estimator (clusters: members), and the Wilson interval uses
  n / design effect visits (Kish's effective sample size). With independent visits the design
  effect is about 1 and this is plain Wilson; Wilson rather than Wald because it stays inside
  [0, 1] and keeps its coverage near 0 or 1.
- *The choice.* For each redemption on a visit where the balance affords two or more known
  rewards: did the member take the cheapest affordable one, the dearest, or another. The scenario's
  policies are compared by likelihood: `random` picks each affordable reward with 1/k; `cheapest`
  and `dearest` are deterministic, so each gets a tremble e (the share of choices it does not
  explain, spread evenly over the other affordable rewards, e fitted by maximum likelihood) and
  pays one parameter (AIC) for it; the best AIC is the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rulelang.engine import basket_starts, event_codes, money_kinds, parse_datetimes, to_minor_units
from rulelang.errors import LoyaltyError
from simulator import io

Z95 = 1.959963984540054
REQUIRED = ("customer_id", "timestamp", "kind", "points", "reward", "row")
# What each kind of posting does to the balance (docs/semantics.md "The ledger").
BALANCE_SIGN = {"earn": 1, "clawback": -1, "redeem": -1, "expire": -1, "capped": 0, "shortfall": 0, "discount": 0}
CHOICES = ("cheapest", "dearest", "random")
SHOWN_ROWS = 10


class RedemptionCalibrationError(LoyaltyError):
    """A ledger (with its transactions) from which redemption behaviour cannot be estimated."""


# --- the ledger ---------------------------------------------------------------------------------


def load_ledger(path_or_df, source: str | None = None) -> pd.DataFrame:
    """The ledger's postings: customer_id (text), timestamp, kind, points (int64 >= 0), reward,
    row (int64), tier ("" when the ledger has no tier column), in the file's order. A Parquet file
    as `loyalty simulate` writes it, or CSV with the same columns. Bad cells are errors naming the
    column and the data rows (counted from 1, the header not counted)."""
    read_from, raw = io.read_table(path_or_df, "ledger")  # the project's one reader: text read as text, bad files named
    source = source or read_from
    raw = raw.rename(columns=str)
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise RedemptionCalibrationError(
            f"{source}: error: the ledger has no column {', '.join('`' + c + '`' for c in missing)}; "
            f"a ledger has {', '.join(REQUIRED)} and tier (docs/semantics.md \"The ledger\"); available: {', '.join(map(str, raw.columns[:30]))}"
        )
    problems: list[str] = []

    def rows_of(bad: np.ndarray) -> str:
        at = np.flatnonzero(bad) + 1
        shown = ", ".join(map(str, at[:SHOWN_ROWS]))
        return f"row {shown}" if len(at) == 1 else f"rows {shown}{', ...' if len(at) > SHOWN_ROWS else ''} ({len(at):,} rows)"

    def text(col: str) -> pd.Series:
        s = raw[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.cat.rename_categories([str(c) for c in s.cat.categories]).astype(object)
        return s.astype(object).where(s.notna(), "").astype(str).str.strip()

    customer = text("customer_id")
    blank_customer = (customer == "").to_numpy()
    if blank_customer.any():
        problems.append(f"column customer_id: blank at {rows_of(blank_customer)}; every posting names its member")
    ts = parse_datetimes(raw["timestamp"])
    bad_ts = ts.isna().to_numpy()
    if bad_ts.any():
        problems.append(f"column timestamp: not a date-time at {rows_of(bad_ts)}; write ISO 8601 like 2026-03-01 14:30")
    kind = text("kind").str.lower()
    bad_kind = ~kind.isin(list(BALANCE_SIGN)).to_numpy()
    if bad_kind.any():
        shown = ", ".join(sorted({repr(k) for k in kind[bad_kind].head(SHOWN_ROWS)}))
        problems.append(f"column kind: {shown} at {rows_of(bad_kind)}; a posting's kind is one of {', '.join(BALANCE_SIGN)}")
    points = _whole(raw["points"])
    bad_points = np.isnan(points) | (points < 0)
    if bad_points.any():
        problems.append(f"column points: not a whole number of 0 or more at {rows_of(bad_points)}")
    row = _whole(raw["row"])
    bad_row = np.isnan(row)
    if bad_row.any():
        problems.append(f"column row: not a whole number at {rows_of(bad_row)}")
    if problems:
        raise RedemptionCalibrationError("\n".join(f"{source}: error: {p}" for p in problems))
    reward = text("reward")
    no_reward = (kind == "redeem").to_numpy() & (reward == "").to_numpy()
    if no_reward.any():
        raise RedemptionCalibrationError(f"{source}: error: column reward: blank on redeem postings at {rows_of(no_reward)}; a redemption names its reward")
    return pd.DataFrame(
        {
            "customer_id": customer.to_numpy(dtype=object),
            "timestamp": ts.to_numpy(dtype="datetime64[ns]"),
            "kind": kind.to_numpy(dtype=object),
            "points": points.astype(np.int64),
            "reward": reward.to_numpy(dtype=object),
            "row": row.astype(np.int64),
            "tier": text("tier").to_numpy(dtype=object) if "tier" in raw.columns else np.full(len(raw), "", dtype=object),
        }
    )


def _whole(values: pd.Series) -> np.ndarray:
    """Whole numbers as float64 (exact below 2**53), NaN where a cell is not one."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    num = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(num) & (num == np.round(num)) & (np.abs(num) < 2.0**53), num, np.nan)


# --- the visits ---------------------------------------------------------------------------------


def visit_moments(tx: pd.DataFrame) -> pd.DataFrame:
    """The purchase baskets of loaded transactions (`simulator.io.load_transactions`' frame, sorted
    by customer and time) per (customer_id, timestamp): `baskets` at that moment."""
    n = len(tx)
    codes, names = event_codes(tx["event"] if "event" in tx.columns else None, n)
    purchase_event = codes == names.get_loc("purchase") if "purchase" in names else np.zeros(n, dtype=bool)
    refund_event = codes == names.get_loc("refund") if "refund" in names else np.zeros(n, dtype=bool)
    minor, _, _ = to_minor_units(tx["amount"].to_numpy(dtype=np.float64), 2)
    purchase, _ = money_kinds(purchase_event, refund_event, minor)
    member = pd.factorize(tx["customer_id"])[0]
    ts = tx["timestamp"].to_numpy(dtype="datetime64[ns]")
    starts = basket_starts(member, ts, purchase, tx["transaction_id"] if "transaction_id" in tx.columns else None)
    v = pd.DataFrame({"customer_id": tx["customer_id"].astype(str).to_numpy(dtype=object)[starts], "timestamp": ts[starts]})
    return v.groupby(["customer_id", "timestamp"], sort=True).size().rename("baskets").reset_index()


# --- the estimate -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proportion:
    """Redemptions on affordable visits: the share, its 95% interval (Wilson on the effective number
    of visits) and the design effect of clustering by member."""

    redemptions: int
    visits: int
    members: int
    estimate: float
    low: float
    high: float
    design_effect: float


@dataclass(frozen=True)
class Estimate:
    """What `loyalty calibrate --ledger` reports."""

    overall: Proportion
    by_tier: dict[str, Proportion]
    prices: dict[str, int]  # reward -> points, cheapest first
    choice: str  # the policy that fits best
    choice_counts: dict[str, int]  # cheapest, dearest, other: redemptions where 2+ rewards were affordable
    single_choice: int  # redemptions on a visit that afforded one known reward only (they tell nothing of the choice)
    log_likelihood: dict[str, float]  # per policy, at its fitted tremble
    aic: dict[str, float]
    tremble: dict[str, float]  # cheapest, dearest: the fitted share of choices the policy does not explain
    visits: int  # purchase baskets in the ledger's span
    visits_affordable: int
    visits_outside: int  # baskets before the day of the ledger's first posting or after the day of its last (not used)
    members: int  # customers in the ledger
    redemptions: int  # in the ledger
    redemptions_off_visit: int  # at no visit's time (e.g. redeem rows on their own): prices only
    redemptions_unaffordable: int  # on a visit whose computed balance did not cover them (counted as affordable)
    price_changes: dict[str, int] = field(default_factory=dict)  # reward -> redemptions at another price than its own


def estimate(
    ledger: pd.DataFrame, tx: pd.DataFrame, catalog: dict[str, int] | None = None, source: str = "<ledger>", tx_source: str = "<transactions>"
) -> Estimate:
    """The estimate from a ledger (`load_ledger`) and the transactions it came from (loaded).
    `catalog` (reward -> points, the program's rewards) gives every reward's price, those never
    redeemed too; without it only the rewards the ledger shows redeemed are known, priced by
    their redemptions."""
    if len(ledger) == 0:
        raise RedemptionCalibrationError(f"{source}: error: the ledger has no postings; nothing to estimate")
    tx_customers = pd.Index(pd.unique(tx["customer_id"].astype(str).to_numpy(dtype=object)))
    ledger_customers = pd.Index(pd.unique(ledger["customer_id"].to_numpy(dtype=object)))
    absent = ledger_customers.difference(tx_customers)
    if len(absent):
        shown = ", ".join(map(str, absent[:5]))
        raise RedemptionCalibrationError(
            f"{source}: error: {len(absent):,} of the ledger's {len(ledger_customers):,} members have no rows in {tx_source} (e.g. {shown}); "
            "give the transactions the ledger was made from (the same period, the same customer ids; map columns with --scenario)"
        )
    red = redemptions(ledger)
    if len(red) == 0:
        raise RedemptionCalibrationError(f"{source}: error: the ledger has no redeem postings; nothing to estimate (a redemption rate needs redemptions)")
    if catalog is None:
        prices, changes = reward_prices(red)
    else:
        prices, changes = _catalog_prices(red, catalog, source)

    # The ledger's span, in whole days: visits outside it would be read against balances the ledger
    # does not show (an extract that starts or ends inside the transactions' period).
    lo = ledger["timestamp"].min().floor("D")
    hi = ledger["timestamp"].max().floor("D") + pd.Timedelta(days=1)
    moments = visit_moments(tx)
    inside = ((moments["timestamp"] >= lo) & (moments["timestamp"] < hi)).to_numpy()
    outside = int(moments["baskets"].to_numpy()[~inside].sum())
    moments = moments[inside].reset_index(drop=True)
    moments = _with_balance(moments, ledger)

    # The redemptions on each moment (matched by customer and time).
    at = red.groupby(["customer_id", "timestamp"], sort=False).size().rename("redeemed")
    moments = moments.join(at, on=["customer_id", "timestamp"])
    moments["redeemed"] = moments["redeemed"].fillna(0).astype(np.int64)
    on_visit = int(np.minimum(moments["redeemed"], moments["baskets"]).sum())
    off_visit = len(red) - on_visit
    moments["redeemed"] = np.minimum(moments["redeemed"], moments["baskets"])
    cheapest = min(prices.values())
    affordable = (moments["balance"] >= cheapest).to_numpy()
    unaffordable_redeemed = int(moments["redeemed"].to_numpy()[~affordable].sum())
    used = moments[affordable | (moments["redeemed"] > 0).to_numpy()]

    if len(used) == 0:
        raise RedemptionCalibrationError(
            f"{source}: error: none of the {int(moments['baskets'].sum()):,} visits in {tx_source} within the ledger's span ({lo.date()} to "
            f"{(hi - pd.Timedelta(days=1)).date()}; {outside:,} visits outside it) had a balance of {cheapest:,} points (the cheapest reward) "
            "or a redemption; nothing to estimate: give the transactions the ledger was made from"
        )
    overall = proportion(used["redeemed"].to_numpy(), used["baskets"].to_numpy(), used["customer_id"].to_numpy())
    by_tier = {}
    tiers = used["tier"].to_numpy(dtype=object)
    names = sorted(pd.unique(tiers))  # (each distinct tier once, not a Python set of every visit)
    if names != [""]:
        for t in names:
            m = tiers == t
            by_tier[t] = proportion(used["redeemed"].to_numpy()[m], used["baskets"].to_numpy()[m], used["customer_id"].to_numpy()[m])

    # The choice: each redemption on a visit, against the rewards that visit's balance affords.
    r = red.merge(moments[["customer_id", "timestamp", "balance"]], on=["customer_id", "timestamp"], how="inner")
    counts, single, loglik, aic, tremble, best = choice_fit(r["reward"].to_numpy(dtype=object), r["balance"].to_numpy(), prices)
    return Estimate(
        overall=overall,
        by_tier=by_tier,
        prices=prices,
        choice=best,
        choice_counts=counts,
        single_choice=single,
        log_likelihood=loglik,
        aic=aic,
        tremble=tremble,
        visits=int(moments["baskets"].sum()),
        visits_affordable=int(moments["baskets"].to_numpy()[affordable].sum()),
        visits_outside=outside,
        members=len(ledger_customers),
        redemptions=len(red),
        redemptions_off_visit=off_visit,
        redemptions_unaffordable=unaffordable_redeemed,
        price_changes=changes,
    )


def redemptions(ledger: pd.DataFrame) -> pd.DataFrame:
    """One row per redemption: customer_id, row, reward, timestamp (its first posting's), points
    (summed over its postings), tier (its first posting's)."""
    red = ledger[ledger["kind"].to_numpy() == "redeem"]
    g = red.groupby(["customer_id", "row", "reward"], sort=False)
    return g.agg(timestamp=("timestamp", "first"), points=("points", "sum"), tier=("tier", "first")).reset_index()


def reward_prices(red: pd.DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    """Each redeemed reward's price (the points most of its redemptions took; ties: the fewer),
    cheapest first (ties by name), and per reward the redemptions at another price."""
    counts = red.groupby(["reward", "points"], sort=True).size().rename("n").reset_index()
    counts = counts.sort_values(["reward", "n", "points"], ascending=[True, False, True], kind="stable")
    top = counts.drop_duplicates("reward")
    prices = {str(k): int(v) for k, v in zip(top["reward"], top["points"], strict=True)}
    total = red.groupby("reward", sort=True).size()
    changes = {str(k): int(total[k] - n) for k, n in zip(top["reward"], top["n"], strict=True) if total[k] > n}
    return dict(sorted(prices.items(), key=lambda kv: (kv[1], kv[0]))), changes


def _catalog_prices(red: pd.DataFrame, catalog: dict[str, int], source: str) -> tuple[dict[str, int], dict[str, int]]:
    """The program's prices, cheapest first (ties by name); a redeemed reward the program lacks is an
    error (the ledger is another program's), and per reward the redemptions at another price."""
    unknown = sorted(set(red["reward"]) - set(catalog))
    if unknown:
        raise RedemptionCalibrationError(
            f"{source}: error: the ledger redeems {', '.join(map(repr, unknown[:5]))}, which the program does not offer "
            f"(its rewards: {', '.join(catalog)}); give the program the ledger was made with"
        )
    other = red[red["points"].to_numpy() != red["reward"].map(catalog).to_numpy()]
    changes = {str(k): int(v) for k, v in other.groupby("reward", sort=True).size().items() if v}
    return dict(sorted(catalog.items(), key=lambda kv: (kv[1], kv[0]))), changes


def _with_balance(moments: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """Each moment with `balance` (the member's postings at or before it, its own redemptions added
    back) and `tier` (of the member's last posting at or before it; "" with none)."""
    kinds = ledger["kind"].to_numpy(dtype=object)
    sign = pd.Series(kinds).map(BALANCE_SIGN).to_numpy(dtype=np.int64)
    pts = ledger["points"].to_numpy(dtype=np.int64)
    post = pd.DataFrame(
        {
            "customer_id": ledger["customer_id"].to_numpy(dtype=object),
            "timestamp": ledger["timestamp"].to_numpy(),
            "delta": sign * pts,
            "redeemed_points": np.where(kinds == "redeem", pts, 0),
            "tier": ledger["tier"].to_numpy(dtype=object),
            "order": np.arange(len(ledger)),
        }
    )
    # Per member and time: the net change, the redemptions, and the tier of the last posting (ledger order).
    post = post.sort_values(["customer_id", "timestamp", "order"], kind="stable")
    per = post.groupby(["customer_id", "timestamp"], sort=False).agg(
        delta=("delta", "sum"), redeemed_points=("redeemed_points", "sum"), tier=("tier", "last")
    ).reset_index()
    per["cum"] = per.groupby("customer_id", sort=False)["delta"].cumsum()
    per = per.rename(columns={"timestamp": "posted_at"})
    m = moments.sort_values("timestamp", kind="stable").reset_index(drop=True)
    # (One resolution on both sides: merge_asof refuses to compare nanoseconds with microseconds.)
    m["timestamp"] = m["timestamp"].astype("datetime64[ns]")
    per["posted_at"] = per["posted_at"].astype("datetime64[ns]")
    joined = pd.merge_asof(
        m, per.sort_values("posted_at", kind="stable"), left_on="timestamp", right_on="posted_at", by="customer_id", direction="backward"
    )
    same = (joined["posted_at"] == joined["timestamp"]).to_numpy()
    cum = joined["cum"].fillna(0).to_numpy(dtype=np.float64)
    back = np.where(same, joined["redeemed_points"].fillna(0).to_numpy(dtype=np.float64), 0.0)
    joined["balance"] = (cum + back).astype(np.int64)
    joined["tier"] = joined["tier"].astype(object).where(joined["tier"].notna(), "")
    out = joined[["customer_id", "timestamp", "baskets", "balance", "tier"]]
    return out.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)


def proportion(redeemed: np.ndarray, chances: np.ndarray, members: np.ndarray) -> Proportion:
    """Σ redeemed / Σ chances with its 95% interval: Wilson's, on the effective number of chances
    (the total over the design effect of clustering by member; see the module's docstring)."""
    y = np.asarray(redeemed, dtype=np.float64)
    n = np.asarray(chances, dtype=np.float64)
    total_n, total_y = float(n.sum()), float(y.sum())
    codes, uniques = pd.factorize(pd.Series(members, dtype=object))
    g = len(uniques)
    if total_n == 0:
        return Proportion(0, 0, 0, float("nan"), float("nan"), float("nan"), float("nan"))
    p = total_y / total_n
    binomial = p * (1 - p) / total_n
    deff = 1.0
    if g > 1 and binomial > 0:
        resid = np.bincount(codes, weights=y - p * n, minlength=g)
        clustered = g / (g - 1) * float(resid @ resid) / total_n**2
        deff = clustered / binomial
    n_eff = total_n / deff if deff > 0 else total_n
    low, high = wilson(p, n_eff)
    return Proportion(int(total_y), int(total_n), g, p, low, high, deff)


def wilson(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a share p of n (n may be fractional: an effective size)."""
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def choice_fit(chosen: np.ndarray, balance: np.ndarray, prices: dict[str, int]):
    """Counts of cheapest / dearest / other among the redemptions where two or more known rewards
    were affordable, how many had one only, and per policy its log-likelihood, AIC and tremble;
    the policy with the lowest AIC (ties: cheapest, dearest, random, the order of CHOICES)."""
    price = np.array(list(prices.values()), dtype=np.float64)
    chosen_price = pd.Series(chosen, dtype=object).map(prices).to_numpy(dtype=np.float64)
    balance = np.maximum(np.asarray(balance, dtype=np.float64), chosen_price)  # the chosen reward was affordable
    afford = price[None, :] <= balance[:, None]
    k = afford.sum(axis=1)
    lo = np.where(afford, price[None, :], np.inf).min(axis=1)
    hi = np.where(afford, price[None, :], -np.inf).max(axis=1)
    informative = k >= 2
    is_cheapest = informative & (chosen_price == lo)
    is_dearest = informative & (chosen_price == hi)
    counts = {
        "cheapest": int(is_cheapest.sum()),
        "dearest": int(is_dearest.sum()),
        "other": int((informative & ~is_cheapest & ~is_dearest).sum()),
    }
    kk = k[informative].astype(np.float64)
    n = len(kk)
    loglik = {"random": float(-np.log(kk).sum()) + 0.0}  # (+ 0.0: never -0.0)
    aic = {"random": -2 * loglik["random"]}
    tremble = {}
    for name, hit in (("cheapest", is_cheapest[informative]), ("dearest", is_dearest[informative])):
        miss = int(n - hit.sum())
        e = miss / n if n else 0.0
        ll = (n - miss) * math.log1p(-e) if e < 1 else 0.0
        if miss:
            ll += miss * math.log(e) - float(np.log(kk[~hit] - 1).sum())
        loglik[name], tremble[name] = float(ll) + 0.0, e
        aic[name] = 2 - 2 * ll
    best = min(CHOICES, key=lambda c: (aic[c], CHOICES.index(c)))
    return counts, int((k == 1).sum()), loglik, aic, tremble, best


def catalog_of(program) -> dict[str, int]:
    """A program's rewards (a `rulelang` Program) as reward -> points, in declaration order."""
    return {r.name: int(r.points) for r in program.model.rewards}
