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
        .drop("batch_id")
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


# ---------------------------------------------------------------- incremental

MODELS = (
    "stg_sparkify__events",
    "int_event_dates",
    "int_customers__daily_activity",
    "int_subscription_changes",
    "int_customers",
    "int_cutoffs",
    "int_customers__activity_windows",
    "customer_features",
    "churn_labels",
    "customer_profiles",
)
# Lineage that differs between two ingestions of the same lines by design.
LINEAGE = {"batch_id", "ingested_at", "source_file", "artist_hashes"}


def _snapshot(spark, schema: str) -> dict[str, pd.DataFrame]:
    tables = {}
    for model in MODELS:
        frame = spark.table(f"{schema}.{model}")
        frame = frame.select(*sorted(set(frame.columns) - LINEAGE)).toPandas()
        tables[model] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables


def _files_by_cutoff(spark, table: str) -> dict[dt.date, set[str]]:
    rows = (
        spark.table(table)
        .selectExpr("cutoff_date", "_metadata.file_path as path")
        .distinct()
        .collect()
    )
    files: dict[dt.date, set[str]] = {}
    for row in rows:
        files.setdefault(row.cutoff_date, set()).add(row.path)
    return files


@pytest.fixture(scope="module")
def incremental(spark, workdir, logs, tmp_path_factory):
    """The logs taken in twice: all but the last day, then the last day."""
    full = logs[0]
    lines = full.read_text(encoding="utf-8").split("\n")
    last_day = max(
        dt.datetime.fromtimestamp(json.loads(line)["ts"] / 1000, dt.UTC).date()
        for line in lines
    )
    split = _millis(last_day)
    inbox = tmp_path_factory.mktemp("inbox")
    (inbox / "1-before-last-day.jsonl").write_text(
        "\n".join(line for line in lines if json.loads(line)["ts"] < split),
        encoding="utf-8",
    )
    held_back = [line for line in lines if json.loads(line)["ts"] >= split]

    name = "incr"
    raw, schema = f"{name}_raw", f"{name}_analytics"
    snapshots, ingests, files = {}, {}, {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SPARKIFY_DBT_SCHEMA", schema)

        def run(step: str) -> None:
            ingests[step] = ingest(
                spark, sorted(inbox.iterdir()), workdir, database=raw
            )
            dbt_build(workdir, variables={"raw_schema": raw})
            snapshots[step] = _snapshot(spark, schema)
            files[step] = _files_by_cutoff(spark, f"{schema}.customer_features")

        run("first")
        run("again")
        (inbox / "2-last-day.jsonl").write_text("\n".join(held_back), "utf-8")
        run("new day")
    return snapshots, ingests, files, len(held_back), last_day


def test_rerunning_on_the_same_input_changes_nothing(incremental):
    snapshots, ingests, _, _, _ = incremental

    assert ingests["again"].lines_read == 0
    for model in MODELS:
        pd.testing.assert_frame_equal(
            snapshots["first"][model], snapshots["again"][model], obj=model
        )


def test_a_new_day_is_read_once_and_gives_the_full_build(spark, incremental, marts):
    snapshots, ingests, _, held_back, _ = incremental
    rebuilt = _snapshot(spark, marts[0])

    assert ingests["new day"].new_files[0].endswith("2-last-day.jsonl")
    assert ingests["new day"].lines_read == held_back > 0
    for model in MODELS:
        pd.testing.assert_frame_equal(
            snapshots["new day"][model], rebuilt[model], obj=model
        )


def test_a_new_day_rewrites_only_the_cutoffs_it_reaches(incremental):
    _, _, files, _, last_day = incremental
    before, after = files["again"], files["new day"]

    # Events of the new day reach only the cutoffs after it.
    untouched = sorted(cutoff for cutoff in before if cutoff <= last_day)
    assert len(untouched) >= 3
    for cutoff in untouched[:-1]:
        assert after[cutoff] == before[cutoff], cutoff
    # The old scoring cutoff was the new day itself; the scoring cutoff
    # moved past it and the old one is gone (it is not on the weekly grid).
    assert max(before) == last_day and (last_day - START).days % 7 != 0
    assert last_day not in after
    assert max(after) == last_day + dt.timedelta(days=1)
