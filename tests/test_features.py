"""The feature mart is honest: no feature sees the cutoff day or anything later."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from sparkify.generate import generate
from sparkify.ingest import ingest
from sparkify.transform import dbt_build

START = dt.date(2018, 10, 1)
CUTOFF = dt.date(2018, 10, 29)  # on the weekly grid: START + 14 + 2 * 7 days
HORIZON_DAYS = 14


def _millis(day: dt.date) -> int:
    return (
        int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1000
    )


def _build(spark, workdir, monkeypatch, source: Path, name: str) -> str:
    ingest(spark, [source], workdir, database=f"{name}_raw")
    monkeypatch.setenv("SPARKIFY_DBT_SCHEMA", f"{name}_analytics")
    dbt_build(workdir, variables={"raw_schema": f"{name}_raw"})
    return f"{name}_analytics"


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("leak")
    full = generate(folder / "full.jsonl", users=80, days=42, start=START, seed=7).path
    lines = full.read_text(encoding="utf-8").split("\n")
    before = [line for line in lines if json.loads(line)["ts"] < _millis(CUTOFF)]
    truncated = folder / "before-cutoff.jsonl"
    truncated.write_text("\n".join(before), encoding="utf-8")
    return full, truncated


@pytest.fixture(scope="module")
def marts(spark, workdir, logs) -> tuple[str, str]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        full = _build(spark, workdir, monkeypatch, logs[0], "leak_full")
        cut = _build(spark, workdir, monkeypatch, logs[1], "leak_cut")
    return full, cut


def _features_at(spark, schema: str, cutoff: dt.date) -> pd.DataFrame:
    frame = (
        spark.table(f"{schema}.customer_features")
        .where(f"cutoff_date = date'{cutoff}'")
        .toPandas()
    )
    return frame.sort_values("customer_cutoff_id").reset_index(drop=True)


def test_features_exclude_events_at_or_after_the_cutoff(spark, marts):
    full, cut = marts

    with_future = _features_at(spark, full, CUTOFF)
    without_future = _features_at(spark, cut, CUTOFF)

    assert len(with_future) > 50
    pd.testing.assert_frame_equal(with_future, without_future)


def test_labels_are_cancellations_inside_the_horizon(spark, marts, logs):
    full, _ = marts
    cancelled_at: dict[str, int] = {}
    for line in logs[0].read_text(encoding="utf-8").split("\n"):
        event = json.loads(line)
        if event["page"] == "Cancellation Confirmation":
            cancelled_at[event["userId"]] = event["ts"]

    labels = spark.table(f"{full}.churn_labels").toPandas()

    assert labels["is_churned_in_horizon"].sum() > 0
    for row in labels.itertuples():
        start = _millis(row.cutoff_date)
        end = _millis(row.cutoff_date + dt.timedelta(days=HORIZON_DAYS))
        expected = start <= cancelled_at.get(row.customer_id, -1) < end
        assert row.is_churned_in_horizon == expected, row


def test_customers_cancelled_before_a_cutoff_are_not_in_it(spark, marts, logs):
    full, _ = marts
    features = spark.table(f"{full}.customer_features").toPandas()
    cancelled = {
        json.loads(line)["userId"]: json.loads(line)["ts"]
        for line in logs[0].read_text(encoding="utf-8").split("\n")
        if '"Cancellation Confirmation"' in line
    }

    stale = [
        row.customer_cutoff_id
        for row in features.itertuples()
        if cancelled.get(row.customer_id, float("inf")) < _millis(row.cutoff_date)
    ]

    assert cancelled and not stale
