"""Figures that must not change: `python benchmarks/figures.py [--out FILE] [--check FILE]`.

A refactor of the engine (one door, the kernel's interface, tiers computed once) must leave every
figure as it was. This runs three simulations through the public API and prints, for each, the
sha256 of the bytes finance reads — summary.json, monthly.csv, rewards.csv — and of run 0's
ledger as a table of its columns before the refactor (new columns may be added; the old ones must
hold the same values):

- coffee:      programs/coffee.loyalty on the bundled sample, 20 runs, seed 5;
- supermarket: programs/supermarket.loyalty over a generated basket history of 1,000,000 lines
               (aisles, SKUs, channels, fuel, multi-line baskets), 3 runs, seed 11;
- tiered:      programs/fashion_vip.loyalty (four tiers over a calendar year) over 18 months of
               `loyalty sample-data` (3,000 customers), 10 runs, seed 7.

Paths under the checkout are written as `<repo>` before hashing (summary.json records where its
inputs were), so two checkouts of the same code agree. Run it on the code before a change with `--out before.json`, then on the code after it with
`--check before.json`: it exits 1 naming every figure that differs. Histories are generated
deterministically into benchmarks/data/ (kept out of git) on first use.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import simulator  # noqa: E402
from simulator import sample_data  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
# Run 0's ledger columns before the engine refactor; columns added later are left out of its hash.
LEDGER_COLUMNS = ("customer_id", "timestamp", "kind", "rule", "reward", "points", "cost", "partner", "partner_share", "expires")
SUPERMARKET_LINES = 1_000_000
AISLES = np.array(["fresh", "organic", "bakery", "dairy", "frozen", "household", "drinks", "fuel"])
SKUS = np.array(["CEREAL-500G", "MILK-1L", "BREAD-800G", "EGGS-12", "APPLES-1KG", "FUEL-UNL", "COFFEE-250G", "RICE-2KG"])


def supermarket_history(lines: int = SUPERMARKET_LINES, seed: int = 2027) -> tuple[Path, Path]:
    """Basket lines of a supermarket's year: baskets of 1-30 lines sharing a transaction_id."""
    tx_path, cu_path = DATA / f"supermarket_{lines}.parquet", DATA / f"supermarket_customers_{lines}.parquet"
    if tx_path.exists() and cu_path.exists():
        return tx_path, cu_path
    rng = np.random.default_rng(seed)
    customers = max(1, lines // 40)
    sizes = np.minimum(rng.geometric(0.12, size=lines), 30)
    sizes = sizes[np.cumsum(sizes) <= lines]
    sizes = np.append(sizes, lines - sizes.sum()) if sizes.sum() < lines else sizes
    baskets = len(sizes)
    basket_customer = np.sort(rng.integers(0, customers, size=baskets))
    start = np.datetime64("2026-01-01T07:00:00", "s")
    # Each customer's baskets in time order: the day is drawn, then sorted within the customer.
    seconds = rng.integers(0, 365 * 86400, size=baskets)
    order = np.lexsort((seconds, basket_customer))
    basket_customer, seconds = basket_customer[order], seconds[order]
    line_basket = np.repeat(np.arange(baskets), sizes)
    aisle = rng.integers(0, len(AISLES), size=lines)
    sku = rng.integers(0, len(SKUS), size=lines)
    tx = pd.DataFrame(
        {
            "customer_id": np.char.add("S", basket_customer[line_basket].astype(str)),
            "timestamp": start + seconds[line_basket].astype("timedelta64[s]"),
            "amount": np.round(rng.lognormal(1.2, 0.8, size=lines), 2),
            "transaction_id": np.char.add("B", line_basket.astype(str)),
            "quantity": rng.integers(1, 4, size=lines),
            "channel": np.where(rng.random(lines) < 0.8, "store", "online"),
            "category": np.where(AISLES[aisle] == "fuel", "fuel", "grocery"),
            "aisle": AISLES[aisle],
            "sku": SKUS[sku],
        }
    )
    cu = pd.DataFrame({"customer_id": np.char.add("S", np.arange(customers).astype(str))}).sort_values("customer_id")
    DATA.mkdir(parents=True, exist_ok=True)
    tx.to_parquet(tx_path, index=False)
    cu.to_parquet(cu_path, index=False)
    return tx_path, cu_path


def tiered_history(customers: int = 3000, months: int = 18, seed: int = 7) -> tuple[Path, Path]:
    """18 months of the sample-data generator (dates across two calendar years of tiers)."""
    folder = DATA / f"tiered_{customers}_{months}_{seed}"
    tx_path, cu_path = folder / "transactions.parquet", folder / "customers.parquet"
    if not (tx_path.exists() and cu_path.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        tx, cu = sample_data.generate(customers, months, seed, "2026-01-01")
        sample_data.write(tx, cu, folder, "parquet")
    return tx_path, cu_path


def cases() -> dict:
    bundled_tx, bundled_cu = sample_data.bundled_paths()
    return {
        "coffee": (ROOT / "programs" / "coffee.loyalty", lambda: (bundled_tx, bundled_cu), {"runs": 20, "seed": 5}),
        "supermarket": (ROOT / "programs" / "supermarket.loyalty", supermarket_history, {"runs": 3, "seed": 11}),
        "tiered": (ROOT / "programs" / "fashion_vip.loyalty", tiered_history, {"runs": 10, "seed": 7}),
    }


def _located(data: bytes) -> bytes:
    """The output with this checkout's folder written as `<repo>`: summary.json records its inputs'
    absolute paths, which differ between two checkouts of the same code."""
    return data.replace(json.dumps(str(ROOT))[1:-1].encode("utf-8"), b"<repo>")


# summary.json's keys that say what the figures rest on, not figures (issue 19's first screen):
# left out of its hash, so that adding them changed no hash.
NOT_FIGURES = ("span", "assumption_sources", "warnings")


def _figures_of(summary: bytes) -> bytes:
    """summary.json without `NOT_FIGURES`, written as `SimulationResult.summary_json` writes it."""
    doc = {k: v for k, v in json.loads(summary).items() if k not in NOT_FIGURES}
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def figures(names=None) -> dict:
    """{case: {file: sha256}} of the outputs finance reads."""
    out = {}
    for name, (program, data, scenario) in cases().items():
        if names and name not in names:
            continue
        tx, cu = data()
        result = simulator.simulate(str(program), str(tx), str(cu), scenario)
        with tempfile.TemporaryDirectory() as tmp:
            folder = result.write(Path(tmp) / "out")
            digest = {f: _sha(_located((folder / f).read_bytes())) for f in ("monthly.csv", "rewards.csv")}
            digest["summary.json"] = _sha(_located(_figures_of((folder / "summary.json").read_bytes())))
        ledger = result.read_ledger()
        buffer = io.BytesIO()
        ledger[[c for c in LEDGER_COLUMNS if c in ledger.columns]].to_csv(buffer, index=False)
        digest["ledger (columns before the refactor)"] = _sha(buffer.getvalue())
        out[name] = digest
        print(f"{name}: {len(ledger):,} postings", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the figures' hashes to this JSON file")
    ap.add_argument("--check", type=Path, help="compare with hashes written before; exit 1 on any difference")
    ap.add_argument("--case", action="append", choices=list(cases()), help="only this case (repeatable)")
    args = ap.parse_args()
    now = figures(args.case)
    text = json.dumps(now, indent=2, sort_keys=True)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    if args.check:
        before = json.loads(args.check.read_text(encoding="utf-8"))
        differ = [f"{case}/{f}" for case, files in now.items() for f, h in files.items() if before.get(case, {}).get(f) != h]
        for d in differ:
            print(f"DIFFERS: {d}", file=sys.stderr)
        print("identical" if not differ else f"{len(differ)} figure(s) differ", file=sys.stderr)
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
