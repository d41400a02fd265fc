"""Wall time of ``sparkify run`` on one set of logs: local, cluster and thrift targets.

Starts the loopback cluster of ``scripts/cluster.sh start --thrift`` (a
master and two workers on 127.0.0.1, a Hive metastore and a Spark Thrift
Server) on free ports in a scratch folder, then runs the pipeline three
times, each in a fresh workdir and a process of its own, the way a user
does: the ``local`` target, the ``cluster`` target and the ``thrift``
target. Prints each run's wall time and its seconds per step, the load
average before each, and whether the three serving databases hold the same
customers and scores; the cluster is stopped at the end. Record figures in
BENCHMARKS.md with the command that made them.

    .venv/bin/python benchmarks/cluster_targets.py \
        --input ../shared/data/eventsim_small.jsonl.gz
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from sparkify.cluster import LocalCluster
from sparkify.engine import CLUSTER_SETTINGS


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(logs: Path, workdir: Path, settings: dict[str, str]) -> float:
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_SETTINGS} | settings
    command = [sys.executable, "-m", "sparkify", "run", "--input", str(logs)]
    started = time.monotonic()
    finished = subprocess.run(
        [*command, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.monotonic() - started
    if finished.returncode:
        sys.exit(f"run in {workdir} failed:\n{finished.stderr[-3000:]}")
    return seconds


def _steps(workdir: Path) -> str:
    text = (workdir / "logs" / "sparkify.log").read_text(encoding="utf-8")
    found = re.findall(r"step (.+?): done after ([0-9.]+)s", text)
    return ", ".join(f"{name} {float(secs):.0f}" for name, secs in found)


def _served(workdir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    engine = sa.create_engine(f"sqlite:///{workdir / 'serving.db'}")
    with engine.connect() as connection:
        customers = pd.read_sql_table("customers", connection)
        scores = pd.read_sql_table("churn_scores", connection)
    return (
        customers.sort_values("customer_id").reset_index(drop=True),
        scores.set_index("customer_id").sort_index()["churn_probability"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="event logs")
    parser.add_argument("--scratch", type=Path, default=None, help="where to work")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    parser.add_argument(
        "--targets", default="local,cluster,thrift", help="comma-separated subset"
    )
    args = parser.parse_args()
    chosen = args.targets.split(",")

    folder = Path(tempfile.mkdtemp(prefix="sparkify-cluster-bench-", dir=args.scratch))
    cluster = LocalCluster(
        folder / "cluster",
        master_port=_free_port(),
        master_ui_port=_free_port(),
        thrift=True,
        thrift_port=_free_port(),
        metastore_port=_free_port(),
    )
    runs = {
        "local": {},
        "cluster": cluster.environment("cluster"),
        "thrift": cluster.environment("thrift"),
    }
    runs = {target: settings for target, settings in runs.items() if target in chosen}
    results: dict[str, tuple[float, float]] = {}
    # The runs' workdirs stay apart from the cluster's own folder.
    try:
        started = time.monotonic()
        cluster.start()
        print(f"cluster up in {time.monotonic() - started:.0f} s", flush=True)
        for target, settings in runs.items():
            load = os.getloadavg()[0]
            seconds = _run(args.input, folder / "runs" / target, settings)
            results[target] = (seconds, load)
            print(
                f"{target:8} {seconds:6.0f} s (load {load:.2f} before): "
                f"{_steps(folder / 'runs' / target)}",
                flush=True,
            )
    finally:
        cluster.stop()

    if "local" in results:
        customers, scores = _served(folder / "runs" / "local")
        for target in [t for t in ("cluster", "thrift") if t in results]:
            theirs, their_scores = _served(folder / "runs" / target)
            same = customers.equals(theirs)
            gap = (scores - their_scores).abs().max()
            print(
                f"{target} vs local: customers {'equal' if same else 'DIFFERENT'}, "
                f"largest score difference {gap:.2e}"
            )
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
