"""The Dask executor (simulator.cluster) gives the bytes of a run in one process and of the sliced
replay, on a LocalCluster of two worker processes and a dataset of three or more files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import distributed
import pandas as pd
import pytest
from click.testing import CliRunner

from rulelang.errors import LoyaltyError
from simulator import partition
from simulator.api import simulate
from simulator.cli import main
from simulator.cluster import ClusterError
from simulator.sample_data import bundled_paths

ROOT = Path(__file__).resolve().parents[2]
COFFEE = ROOT / "programs" / "coffee.loyalty"
SUPERMARKET = ROOT / "programs" / "supermarket.loyalty"
COFFEE_BUDGET = ROOT / "benchmarks" / "programs" / "coffee_budget.loyalty"  # budgets: a global step before the tasks
COMPARED = ("summary.json", "monthly.csv", "rewards.csv")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each, shared by the tests (its scheduler's tcp:// address)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The bundled sample (2,000 customers, a year) as four files hash-partitioned by customer."""
    tx, cu = bundled_paths()
    d = tmp_path_factory.mktemp("cluster") / "ds"
    partition.write(tx, d, 4)
    return d, cu


def _bytes(result, out: Path) -> dict[str, bytes]:
    result.write(out)
    return {n: (out / n).read_bytes() for n in (*COMPARED, "segments.csv") if (out / n).exists()}


def _postings(folder: Path) -> pd.DataFrame:
    """A ledger's postings in one order (the row numbers count a file's path rows on a cluster)."""
    led = pd.read_parquet(folder).drop(columns=["row"]).astype(str)
    return led.sort_values(list(led.columns)).reset_index(drop=True)


@pytest.mark.parametrize(
    "program, scenario",
    [
        (COFFEE, {"runs": 3, "seed": 11, "redemption": {"probability": 0.4, "choice": "random"}, "response": {"visit_uplift": 0.05}}),
        (SUPERMARKET, {"runs": 2, "seed": 5, "enrollment": {"share": 0.3, "pick": "top_spenders"}}),
        # Segments scored over every customer before any task: they steer who joins and the response.
        (COFFEE, {"runs": 2, "seed": 3, "period": "2026-07-01 to 2026-12-31",
                  "enrollment": {"share": 0.6, "pick": "segment", "segments": ["At risk", "Champions", "Loyal", "Lost"]},
                  "response": {"spend_uplift": {"At risk": 0.05, "Champions": 0.01}}}),
        (COFFEE_BUDGET, {"runs": 2, "seed": 5, "enrollment": {"share": 0.4, "pick": "top_spenders"}, "redemption": {"probability": 0.4, "choice": "random"}}),
    ],
    ids=["coffee", "top_spenders", "segments", "budget_top_spenders"],
)
def test_a_cluster_gives_the_bytes_of_one_process_and_of_slices(cluster, sample, program, scenario, tmp_path):
    ds, cu = sample
    one = simulate(program, ds, cu, scenario, workers=1)
    want = _bytes(one, tmp_path / "one")
    assert "segments.csv" in want  # (compared too: the breakdown by segment, stage and tier)
    if program == COFFEE_BUDGET:  # the budgets run out in every run: the global step decides something
        assert all(b["runs_ran_out"] == scenario["runs"] for b in one.summary["budgets"].values())
    sliced = simulate(program, ds, cu, scenario, workers=1, slice_rows=30_000)
    assert _bytes(sliced, tmp_path / "sliced") == want
    told = []
    on_dask = simulate(program, ds, cu, scenario, cluster=cluster.scheduler_address, told=lambda link, n: told.append((link, n)))
    assert _bytes(on_dask, tmp_path / "dask") == want
    assert told and told[0][1] == 4 and told[0][0].startswith("http")
    # Run 0's ledger: a dataset of a file per task, the same postings as the one process's.
    files = sorted(p.name for p in (tmp_path / "dask" / "ledger.parquet").iterdir())
    assert files == [f"part-{k:05d}.parquet" for k in range(4)]
    pd.testing.assert_frame_equal(_postings(tmp_path / "dask" / "ledger.parquet"), _postings(tmp_path / "one" / "ledger.parquet"))
    # And the figures of the single file the dataset was written from.
    single = json.loads(simulate(program, bundled_paths()[0], cu, scenario, workers=1).summary_json())
    dask_summary = json.loads(want["summary.json"])
    single.pop("sources"), dask_summary.pop("sources")
    assert dask_summary == single


def test_a_task_failing_on_bad_data_says_what_a_local_run_says(cluster, tmp_path):
    tx, cu = bundled_paths()
    frame = pd.read_parquet(tx)
    rows = frame.index[frame["customer_id"] == "C000007"]
    frame.loc[rows[4], "transaction_id"] = frame.loc[rows[0], "transaction_id"]  # one basket's lines apart
    bad = tmp_path / "bad.parquet"
    frame.to_parquet(bad)
    partition.write(bad, tmp_path / "ds", 3)
    with pytest.raises(LoyaltyError) as local:
        simulate(COFFEE, tmp_path / "ds", cu, {"runs": 2}, workers=1)
    with pytest.raises(LoyaltyError) as remote:
        simulate(COFFEE, tmp_path / "ds", cu, {"runs": 2}, cluster=cluster.scheduler_address)
    assert str(remote.value) == str(local.value) and "names lines that are not together" in str(local.value)
    assert type(remote.value) is type(local.value)


def test_a_dataset_not_partitioned_by_customer_is_refused(cluster, tmp_path):
    tx, cu = bundled_paths()
    frame = pd.read_parquet(tx)
    (tmp_path / "ds").mkdir()
    half = len(frame) // 2  # a customer's rows on both sides of the cut
    frame.iloc[:half].to_parquet(tmp_path / "ds" / "a.parquet")
    frame.iloc[half:].to_parquet(tmp_path / "ds" / "b.parquet")
    with pytest.raises(ClusterError, match=r"has rows in more than one file of the dataset; .*`loyalty partition HISTORY --out DATASET --partitions N`"):
        simulate(COFFEE, tmp_path / "ds", cu, {"runs": 1}, cluster=cluster.scheduler_address)


def test_the_command_runs_on_a_local_cluster(sample, tmp_path):
    ds, cu = sample
    args = ["simulate", str(COFFEE), "--transactions", str(ds), "--customers", str(cu), "--runs", "2", "--seed", "3"]
    local = CliRunner().invoke(main, [*args, "--quiet", "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    r = CliRunner().invoke(main, [*args, "--cluster", "local:2", "--out", str(tmp_path / "dask")])
    assert r.exit_code == 0, r.output
    import importlib.util

    served = importlib.util.find_spec("bokeh") is not None  # (the dashboard needs bokeh: the `dask` extra has it)
    assert "Dask: 4 task(s)" in r.output
    assert ("dashboard: http" if served else "dashboard: none (install bokeh for it: pip install 'loyalty-toolkit[dask]')") in r.output
    for name in COMPARED:
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dask.ledger-")]  # the workers' folder, linked in and gone


def test_a_bad_address_is_refused_before_any_work(sample, tmp_path):
    ds, cu = sample
    r = CliRunner().invoke(main, ["simulate", str(COFFEE), "--transactions", str(ds), "--cluster", "somewhere", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "expected `local:N`" in r.output
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"program: {COFFEE}\ncluster: local:zero\n")
    r = CliRunner().invoke(main, ["simulate", str(scenario), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "cluster" in r.output and "expected `local:N`" in r.output
    assert not (tmp_path / "o").exists()


def test_without_dask_the_cluster_is_refused_with_the_install_command(sample, tmp_path, monkeypatch):
    ds, cu = sample
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails as if not installed
    with pytest.raises(ClusterError, match=r"needs Dask, which is not installed; install it with: pip install 'loyalty-toolkit\[dask\]'"):
        simulate(COFFEE, ds, cu, {"runs": 1}, cluster="local:2")
    r = CliRunner().invoke(main, ["simulate", str(COFFEE), "--transactions", str(ds), "--customers", str(cu), "--cluster", "local:2", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "pip install 'loyalty-toolkit[dask]'" in r.output and "Traceback" not in r.output


def test_the_simulator_imports_and_runs_without_dask(tmp_path):
    code = (
        "import sys\n"
        "class NoDask:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('dask', 'distributed'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoDask())\n"
        "import simulator.api, simulator.cli, simulator.cluster, simulator.partition\n"
        "from simulator.api import simulate\n"
        "r = simulate('programs/coffee.loyalty', None, None, {'runs': 1}, workers=1)\n"
        "assert 'dask' not in sys.modules and 'distributed' not in sys.modules\n"
        "print(r.summary['members']['mean'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code.replace("None, None", "*__import__('simulator.sample_data').sample_data.bundled_paths()")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(float(done.stdout.strip())) > 0


@pytest.mark.slow
def test_a_worker_killed_mid_run_costs_a_retry_not_the_simulation(sample, tmp_path):
    import os
    import signal
    import threading
    import time

    ds, cu = sample
    scenario = {"runs": 4, "seed": 2}
    want = _bytes(simulate(COFFEE, ds, cu, scenario, workers=1), tmp_path / "one")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c, distributed.Client(c) as watcher:
        pids = watcher.run(os.getpid)
        got: dict = {}
        run = threading.Thread(target=lambda: got.update(result=simulate(COFFEE, ds, cu, scenario, cluster=c.scheduler_address)))
        run.start()
        killed = None
        deadline = time.monotonic() + 120
        while killed is None and run.is_alive() and time.monotonic() < deadline:
            running = watcher.run(lambda dask_worker: [str(t.key) for t in dask_worker.state.executing])
            for worker, keys in running.items():
                if any(k.startswith("loyalty-file-") for k in keys):
                    os.kill(pids[worker], signal.SIGKILL)  # the worker process dies in the middle of a task
                    killed = worker
                    break
            time.sleep(0.05)
        run.join(300)
    assert killed is not None, "no task was seen running: the kill did not happen"
    assert _bytes(got["result"], tmp_path / "dask") == want


def test_the_cluster_key_is_how_not_what(tmp_path):
    from simulator.scenario import Scenario, load_scenario

    base = {"runs": 3, "seed": 4}
    plain, on_dask = Scenario.from_dict(base), Scenario.from_dict({**base, "cluster": "tcp://scheduler.internal:8786"})
    assert on_dask.cluster == "tcp://scheduler.internal:8786" and plain.cluster is None
    # Not an assumption: summary.json's assumptions and their sources are the same.
    assert on_dask.to_dict() == plain.to_dict() and dict(on_dask.typed) == dict(plain.typed)
    assert on_dask.with_overrides(runs=5).cluster == on_dask.cluster  # kept through command-line values
    f = tmp_path / "s.yaml"
    f.write_text("runs: 2\ncluster: local:0\n")
    with pytest.raises(LoyaltyError, match=r"s\.yaml:2:\d+: error: cluster: expected `local:N`"):
        load_scenario(f)


def test_a_csv_history_is_refused_with_the_partition_command(tmp_path):
    tx = ROOT / "examples" / "transactions.csv"
    with pytest.raises(ClusterError, match=r"the Dask executor reads Parquet; .*`loyalty partition .*transactions\.csv --out DATASET --partitions N`"):
        simulate(ROOT / "examples" / "bean_club.loyalty", tx, None, {"runs": 1}, cluster="local:1")


def test_rejected_rows_and_counts_are_those_of_a_local_run(cluster, tmp_path):
    tx, cu = bundled_paths()
    frame = pd.read_parquet(tx)
    frame.loc[[3, 500], "customer_id"] = ""  # rejected: empty id
    frame.loc[[40, 9000], "amount"] = float("nan")  # rejected: no amount
    frame.to_parquet(tmp_path / "bad.parquet")
    partition.write(tmp_path / "bad.parquet", tmp_path / "ds", 3)
    local = simulate(COFFEE, tmp_path / "ds", cu, {"runs": 2}, workers=1, rejects=tmp_path / "local.csv")
    remote = simulate(COFFEE, tmp_path / "ds", cu, {"runs": 2}, cluster=cluster.scheduler_address, rejects=tmp_path / "dask.csv")
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert len(pd.read_csv(tmp_path / "dask.csv")) == 4
    assert remote.summary_json() == local.summary_json() and remote.loads[0].report() == local.loads[0].report()
