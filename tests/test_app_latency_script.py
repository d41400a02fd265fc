"""benchmarks/app_latency.py: its database and a whole run at a tiny size."""

from __future__ import annotations

import importlib.util
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "app_latency.py"


def _script():
    spec = importlib.util.spec_from_file_location("app_latency", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_benchmark_database_is_consistent_like_a_published_run(tmp_path):
    path = tmp_path / "serving.db"

    built = _script().build_serving(path, customers=3000, daily_days=8, seed=7)

    with sqlite3.connect(path) as db:
        one = db.execute
        assert built.customers == one("select count(*) from customers").fetchone()[0]
        cancelled, free = one(
            "select avg(is_cancelled), avg(level = 'free') from customers"
        ).fetchone()
        assert 0.17 < cancelled < 0.23 and 0.74 < free < 0.82
        assert one(
            "select count(*) from customers c left join churn_scores s"
            " using (customer_id) where (s.customer_id is null) != c.is_cancelled"
        ).fetchone() == (0,)
        assert one(
            "select count(*) from customers where sessions_7d > sessions_28d"
            " or songs_7d > songs_28d or adverts_7d > adverts_28d"
            " or listening_minutes_7d > listening_minutes_28d"
            " or last_active_at < first_event_at"
            " or (is_cancelled and cancelled_at is null)"
            " or location not like '%, ' || state"
            " or registered_at not like '____-__-__T__:__:__Z'"
        ).fetchone() == (0,)
        names = one("select count(distinct last_name) from customers").fetchone()[0]
        assert 100 < names < 3000  # names repeat
        assert one(
            "select count(*) from daily_activity"
            " where activity_date >= '2018-12-01' or activity_date < '2018-10-02'"
        ).fetchone() == (0,)
        assert one(
            "select count(*) from churn_scores where reason_1 is null"
            " or action is null or risk_band not in ('low', 'medium', 'high')"
        ).fetchone() == (0,)
        indexes = {row[0] for row in one("select name from sqlite_master")}
        assert {"ix_customers_name", "ix_churn_scores_probability"} <= indexes


@pytest.mark.parametrize("mix", ["id=1,ads=1,fax=1", "id=0", "id=x"])
def test_benchmark_mix_rejects_unknown_kinds_and_bad_weights(mix):
    with pytest.raises(ValueError, match="--mix"):
        _script().parse_mix(mix)


@pytest.mark.timeout(120)
def test_benchmark_run_prints_percentiles_and_verdict_with_no_failures():
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--customers=2000",
            "--seconds=3",
            "--warmup=1",
            "--concurrency=4",
            "--mix=id=4,ads=4,unknown=1,name=1",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        env=dict(os.environ, GRADIO_ANALYTICS_ENABLED="False"),
    )
    out = result.stdout

    assert result.returncode == 0, f"{out}\n{result.stderr}"
    assert re.search(r"^kind +requests +failures +answers/s +p50 ms +p95 ms", out, re.M)
    for kind in ("id", "ads", "unknown", "name", r"customer answer \(id\+ads\)"):
        row = re.search(rf"^{kind} +([\d,]+) +(\d+) +[\d.]+( +\d+){{4}}$", out, re.M)
        assert row, f"no figures for {kind}:\n{out}"
        assert int(row[1].replace(",", "")) > 0 and row[2] == "0", row[0]
    assert re.search(
        r"^customer answer p95 \d+ ms \(target < 150 ms with 20 concurrent agents;"
        r" measured with 4\): (met|not met)$",
        out,
        re.M,
    )
    scratch = re.search(r"into (\S+)/serving\.db", out)[1]
    assert not Path(scratch).exists()
