"""The whole pipeline on a real Spark standalone cluster, through both targets.

One cluster for the module (a master and two workers on 127.0.0.1, a Hive
metastore and a Spark Thrift Server), started by ``sparkify.cluster`` as
``scripts/cluster.sh`` starts it and always stopped afterwards. Each run
serves what the ``local`` target serves from the same logs: the same
customers, and scores within ``SCORE_TOLERANCE``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from sparkify.cluster import LocalCluster
from tests.runs import CLUSTER_SETTINGS, serving_tables, sparkify, succeeded
from tests.shared_data import EVENTSIM_SMALL, shared_data

pytestmark = pytest.mark.slow

# Training hands each of xgboost.spark's two workers the rows of one hash
# partition of the key, sorted, and the seed is fixed, so every engine grows
# the same trees: the scores agree but for floating-point noise in the
# calibration fit.
SCORE_TOLERANCE = 1e-6


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LocalCluster]:
    if shutil.which("java") is None:
        pytest.skip("Java is not installed: a Spark cluster needs java on PATH")
    local = LocalCluster(
        tmp_path_factory.mktemp("cluster"),
        master_port=_free_port(),
        master_ui_port=_free_port(),
        thrift=True,
        thrift_port=_free_port(),
        metastore_port=_free_port(),
    )
    # Registered before starting, so a start that fails half-way is undone.
    request.addfinalizer(local.stop)
    yield local.start()


def _raw_counts(warehouse: Path) -> dict[str, int]:
    return {
        table: ds.dataset(warehouse / "raw.db" / table, format="parquet").count_rows()
        for table in ("events", "rejected_events", "ingested_files")
    }


def _assert_serves_what_local_serves(workdir: Path, local: Path) -> None:
    ours, theirs = serving_tables(workdir), serving_tables(local)
    customers = [
        tables["customers"].sort_values("customer_id").reset_index(drop=True)
        for tables in (ours, theirs)
    ]
    pd.testing.assert_frame_equal(*customers)
    scores = [
        tables["churn_scores"].set_index("customer_id").sort_index()
        for tables in (ours, theirs)
    ]
    assert list(scores[0].index) == list(scores[1].index)
    difference = (scores[0]["churn_probability"] - scores[1]["churn_probability"]).abs()
    assert difference.max() <= SCORE_TOLERANCE, difference.describe()
    assert set(scores[0]["model_version"]) == {"v1"}


def test_a_wrong_thrift_port_is_named_with_what_to_set(cluster, tmp_path):
    port = _free_port()
    logs = shared_data(EVENTSIM_SMALL)

    result = sparkify(
        "run", "--input", str(logs), "--workdir", str(tmp_path),
        env={**cluster.environment("thrift"), "SPARKIFY_THRIFT_PORT": str(port)},
    )  # fmt: skip

    message = " ".join(result.stderr.split())
    assert result.returncode == 1, result.stderr
    assert f"cannot reach the Spark Thrift Server at 127.0.0.1:{port}" in message
    assert "SPARKIFY_THRIFT_PORT" in message
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(1500)
def test_the_thrift_target_serves_what_the_local_target_serves(
    cluster, eventsim_local_run, tmp_path
):
    logs = shared_data(EVENTSIM_SMALL)
    started = time.monotonic()

    stdout = succeeded(
        sparkify(
            "run", "--input", str(logs), "--workdir", str(tmp_path),
            env=cluster.environment("thrift"),
        )
    )  # fmt: skip

    print(
        f"eventsim_small: local {eventsim_local_run.seconds:.0f} s, thrift target "
        f"on the cluster {time.monotonic() - started:.0f} s"
    )
    assert "262,958" in stdout
    _assert_serves_what_local_serves(tmp_path, eventsim_local_run.workdir)
    assert _raw_counts(Path(cluster.warehouse)) == _raw_counts(
        eventsim_local_run.workdir / "warehouse"
    )


@pytest.mark.timeout(1500)
def test_a_run_whose_cluster_dies_stops_naming_it_and_a_rerun_resumes(
    cluster, eventsim_local_run, tmp_path
):
    logs = shared_data(EVENTSIM_SMALL)
    env = {**cluster.environment("cluster"), "SPARKIFY_CLUSTER_TIMEOUT": "10"}
    command = [sys.executable, "-m", "sparkify", "run", "--input", str(logs)]
    command += ["--workdir", str(tmp_path)]
    log = tmp_path / "logs" / "sparkify.log"
    run = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**_without_cluster_settings(), **env},
    )
    try:
        _wait_for(lambda: "step dbt build: started" in _text(log), 900)
        time.sleep(5)
        cluster.kill("master", "worker-1", "worker-2")
        _, stderr = run.communicate(timeout=300)
    finally:
        run.kill()
    cluster.start()
    started = time.monotonic()
    rerun = succeeded(
        sparkify("run", "--input", str(logs), "--workdir", str(tmp_path), env=env)
    )

    message = " ".join(stderr.split())
    print(f"the killed run said: {message[message.find('error:') :]}")
    assert run.returncode == 1, stderr[-3000:]
    assert (
        f"lost the Spark cluster {cluster.master_url} during step 'dbt build'"
        in (message)
        or f"lost the Spark master {cluster.master_url}" in message
    )
    assert "rerun the same command" in message
    assert "Traceback" not in stderr and "SparkException" not in stderr
    print(f"rerun after the cluster came back: {time.monotonic() - started:.0f} s")
    assert "0 new, 1 already ingested" in rerun
    assert _raw_counts(tmp_path / "warehouse") == _raw_counts(
        eventsim_local_run.workdir / "warehouse"
    )
    _assert_serves_what_local_serves(tmp_path, eventsim_local_run.workdir)


def _without_cluster_settings() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in CLUSTER_SETTINGS}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not seen within {seconds:.0f} s"
        time.sleep(1.0)
