"""The quality gate on the customer feature mart: a real GX checkpoint on Spark."""

from __future__ import annotations

import copy
import logging
from datetime import date
from pathlib import Path

import great_expectations as gx
import pytest
import yaml
from pyspark.sql import DataFrame, SparkSession

from sparkify.config import Workdir
from sparkify.quality import (
    QualityGateError,
    enforce,
    load_reference,
    load_suite,
    save_reference,
    validate_table,
)

# The first validation in a fresh JVM takes longest (25-45s on a busy two-core
# machine); later ones take 5-15s.
pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "expectations" / "customer_features.yml"
MART_YML = REPO / "models" / "marts" / "customer_features.yml"

SCHEMA = """
    customer_cutoff_id string, customer_id string,
    days_since_last_activity int, tenure_days int,
    count_sessions_7d bigint, count_sessions_14d bigint,
    count_sessions_28d bigint,
    count_songs_7d bigint, count_songs_14d bigint, count_songs_28d bigint,
    listening_seconds_7d double, listening_seconds_14d double,
    listening_seconds_28d double,
    count_distinct_artists_7d bigint, count_distinct_artists_14d bigint,
    count_distinct_artists_28d bigint,
    count_active_days_7d bigint, count_active_days_14d bigint,
    count_active_days_28d bigint,
    songs_7d_vs_prev_21d_ratio double, sessions_7d_vs_prev_21d_ratio double,
    count_thumbs_up_28d bigint, count_thumbs_down_28d bigint,
    thumbs_up_per_song_28d double, thumbs_down_per_song_28d double,
    thumbs_down_share_28d double,
    count_friends_added_28d bigint, count_playlist_adds_28d bigint,
    playlist_adds_per_song_28d double,
    count_errors_28d bigint, count_help_visits_28d bigint,
    count_settings_visits_28d bigint, count_downgrade_visits_28d bigint,
    count_adverts_28d bigint, adverts_per_song_28d double,
    is_paid boolean, paid_days_share_28d double,
    count_level_changes bigint, days_since_last_level_change int,
    device_type string, os_family string, browser string, state string,
    batch_id string, cutoff_date date
"""

CUTOFF = date(2018, 11, 1)


def _mart_columns() -> list[str]:
    (model,) = yaml.safe_load(MART_YML.read_text())["models"]
    return [column["name"] for column in model["columns"]]


def _valid_rows() -> list[dict]:
    """Three customers at one cutoff, every value inside the suite's bounds."""
    rows = []
    for customer_id, songs_28d, is_paid in (("10", 320, True), ("11", 95, False)):
        rows.append(
            {
                "customer_cutoff_id": f"{customer_id}|{CUTOFF}",
                "customer_id": customer_id,
                "cutoff_date": CUTOFF,
                "days_since_last_activity": 2,
                "tenure_days": 41,
                "count_sessions_7d": 3,
                "count_sessions_14d": 6,
                "count_sessions_28d": 11,
                "count_songs_7d": songs_28d // 4,
                "count_songs_14d": songs_28d // 2,
                "count_songs_28d": songs_28d,
                "listening_seconds_7d": songs_28d / 4 * 245.0,
                "listening_seconds_14d": songs_28d / 2 * 245.0,
                "listening_seconds_28d": songs_28d * 245.0,
                "count_distinct_artists_7d": songs_28d // 5,
                "count_distinct_artists_14d": songs_28d // 3,
                "count_distinct_artists_28d": songs_28d // 2,
                "count_active_days_7d": 3,
                "count_active_days_14d": 5,
                "count_active_days_28d": 9,
                "songs_7d_vs_prev_21d_ratio": 1.02,
                "sessions_7d_vs_prev_21d_ratio": 1.13,
                "count_thumbs_up_28d": 14,
                "count_thumbs_down_28d": 2,
                "thumbs_up_per_song_28d": 14 / songs_28d,
                "thumbs_down_per_song_28d": 2 / songs_28d,
                "thumbs_down_share_28d": 0.125,
                "count_friends_added_28d": 1,
                "count_playlist_adds_28d": 6,
                "playlist_adds_per_song_28d": 6 / songs_28d,
                "count_errors_28d": 0,
                "count_help_visits_28d": 1,
                "count_settings_visits_28d": 0,
                "count_downgrade_visits_28d": 1 if is_paid else 0,
                "count_adverts_28d": 0 if is_paid else 12,
                "adverts_per_song_28d": 0.0 if is_paid else 12 / songs_28d,
                "is_paid": is_paid,
                "paid_days_share_28d": 1.0 if is_paid else 0.0,
                "count_level_changes": 1 if is_paid else 0,
                "days_since_last_level_change": 20 if is_paid else 41,
                "device_type": "desktop" if is_paid else "tablet",
                "os_family": "windows" if is_paid else "ios",
                "browser": "chrome" if is_paid else "safari",
                "state": "CA" if is_paid else "NY",
                "batch_id": "20181102T000000000000Z-abc123",
            }
        )
    # A customer who registered yesterday: one session, nothing before it.
    new = copy.deepcopy(rows[1])
    new.update(
        customer_cutoff_id=f"12|{CUTOFF}",
        customer_id="12",
        days_since_last_activity=1,
        tenure_days=0,
        count_sessions_7d=1,
        count_sessions_14d=1,
        count_sessions_28d=1,
        count_songs_7d=95,
        count_songs_14d=95,
        listening_seconds_7d=95 * 245.0,
        listening_seconds_14d=95 * 245.0,
        count_active_days_7d=1,
        count_active_days_14d=1,
        count_active_days_28d=1,
        songs_7d_vs_prev_21d_ratio=96.0,
        sessions_7d_vs_prev_21d_ratio=2.0,
        count_thumbs_up_28d=0,
        count_thumbs_down_28d=0,
        thumbs_up_per_song_28d=0.0,
        thumbs_down_per_song_28d=0.0,
        thumbs_down_share_28d=0.0,
        days_since_last_level_change=0,
    )
    return [*rows, new]


def _frame(spark: SparkSession, rows: list[dict]) -> DataFrame:
    columns = _mart_columns()
    # One partition: GX runs a Spark job per expectation, one task each.
    return spark.createDataFrame(
        [tuple(row[c] for c in columns) for row in rows], SCHEMA
    ).coalesce(1)


@pytest.fixture
def gx_workdir(tmp_path: Path) -> Workdir:
    """A workdir of the test's own: its GX project and Data Docs start empty."""
    return Workdir.at(tmp_path / "work")


def test_suite_and_test_frame_cover_the_columns_of_the_mart(spark):
    columns = _mart_columns()
    table, suite = load_suite(SUITE)

    assert _frame(spark, _valid_rows()).columns == columns
    assert table == "customer_features"
    checked = {e.column for e in suite.expectations if hasattr(e, "column")}
    assert checked <= set(columns)
    assert set(columns) - {"customer_cutoff_id", "customer_id", "cutoff_date"} <= {
        e.column
        for e in suite.expectations
        if e.expectation_type == "expect_column_values_to_not_be_null"
    }


def test_valid_features_pass_and_data_docs_show_the_suite(spark, gx_workdir, capsys):
    features = _frame(spark, _valid_rows())

    report = validate_table(features, SUITE, gx_workdir)

    assert report.success, report.critical_failures
    assert report.suite == "customer_features"
    assert report.table == "customer_features"
    assert not report.critical_failures and not report.warnings
    assert len(report.outcomes) == len(load_suite(SUITE)[1].expectations)
    assert report.outcomes[0].expectation == "expect_table_row_count_to_be_between"
    enforce(report)
    assert report.data_docs_index == gx_workdir.data_docs / "index.html"
    assert "customer_features" in report.data_docs_index.read_text()
    # GX ran on our session, left the frame uncached and drew no progress bars.
    assert SparkSession.getActiveSession() is spark
    assert not features.is_cached
    captured = capsys.readouterr()
    assert "Calculating Metrics" not in captured.out + captured.err


def test_duplicate_key_fails_the_gate_naming_the_key_and_table(spark, gx_workdir):
    rows = _valid_rows()
    rows[1]["customer_cutoff_id"] = rows[0]["customer_cutoff_id"]

    report = validate_table(_frame(spark, rows), SUITE, gx_workdir)

    assert not report.success
    assert [o.expectation for o in report.critical_failures] == [
        "expect_column_values_to_be_unique(customer_cutoff_id)"
    ]
    (failure,) = report.critical_failures
    assert failure.observed == "2 of 3 rows unexpected"
    assert failure.examples == [f"10|{CUTOFF}", f"10|{CUTOFF}"]
    with pytest.raises(QualityGateError) as raised:
        enforce(report)
    message = str(raised.value)
    assert "customer_cutoff_id" in message and "customer_features" in message
    assert f"10|{CUTOFF}" in message
    assert raised.value.report is report


def test_null_feature_and_share_above_one_fail_critical(spark, gx_workdir):
    rows = _valid_rows()
    rows[0]["count_songs_7d"] = None
    rows[2]["paid_days_share_28d"] = 1.5

    report = validate_table(_frame(spark, rows), SUITE, gx_workdir)

    assert not report.success
    failed = {o.expectation: o for o in report.critical_failures}
    null = failed.pop("expect_column_values_to_not_be_null(count_songs_7d)")
    share = failed.pop("expect_column_values_to_be_between(paid_days_share_28d)")
    assert not failed
    assert null.observed == "1 of 3 rows unexpected"
    assert share.observed == "1 of 3 rows unexpected" and share.examples == [1.5]


def test_failed_warning_keeps_success_and_is_logged(spark, gx_workdir, caplog):
    # Silent for the whole lookback: allowed (recency caps at 29), but a
    # mart where most customers are silent is worth a reviewer's look.
    rows = _valid_rows()
    for row in rows:
        row["days_since_last_activity"] = 29

    report = validate_table(_frame(spark, rows), SUITE, gx_workdir)
    with caplog.at_level(logging.WARNING, logger="sparkify.quality"):
        enforce(report)

    assert report.success
    assert [(o.expectation, o.severity) for o in report.warnings] == [
        ("expect_column_values_to_be_between(days_since_last_activity)", "warning")
    ]
    assert "days_since_last_activity" in caplog.text


def test_missing_column_fails_critical_with_the_gx_error(spark, gx_workdir):
    features = _frame(spark, _valid_rows()).drop("is_paid")

    report = validate_table(features, SUITE, gx_workdir)

    assert not report.success
    (failure,) = report.critical_failures
    assert failure.expectation == "expect_column_values_to_not_be_null(is_paid)"
    assert failure.observed.startswith("error: ")
    assert '"is_paid"' in failure.observed and "does not exist" in failure.observed


def test_second_run_in_the_same_workdir_keeps_both_results(spark, gx_workdir):
    features = _frame(spark, _valid_rows())

    first = validate_table(features, SUITE, gx_workdir)
    second = validate_table(features, SUITE, gx_workdir)

    assert first.success and second.success
    assert first.run_id != second.run_id
    context = gx.get_context(mode="file", project_root_dir=gx_workdir.gx_project)
    assert len(context.validation_results_store.list_keys()) == 2
    assert [c.name for c in context.checkpoints.all()] == ["customer_features"]


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        (
            {"type": "expect_column_values_to_be_tasty", "severity": "critical"},
            "unknown expectation type 'expect_column_values_to_be_tasty'",
        ),
        (
            {"type": "expect_table_row_count_to_be_between", "severity": "fatal"},
            "severity 'fatal' is not one of critical, warning",
        ),
    ],
)
def test_bad_suite_entry_is_named_with_its_file(tmp_path, entry, complaint):
    suite_file = tmp_path / "broken.yml"
    good = {
        "type": "expect_table_row_count_to_be_between",
        "kwargs": {"min_value": 1},
        "severity": "critical",
        "why": "Not empty.",
    }
    entry = {"kwargs": {}, "why": "Testing.", **entry}
    suite_file.write_text(yaml.safe_dump({"table": "t", "expectations": [good, entry]}))

    with pytest.raises(ValueError) as raised:
        load_suite(suite_file)

    message = str(raised.value)
    assert str(suite_file) in message
    assert f"expectations[1] ({entry['type']})" in message
    assert complaint in message


def test_suite_file_that_is_not_yaml_is_named(tmp_path):
    suite_file = tmp_path / "broken.yml"
    suite_file.write_text("table: t\nexpectations: [\n")

    with pytest.raises(ValueError, match="not valid YAML") as raised:
        load_suite(suite_file)

    assert str(suite_file) in str(raised.value)


SCORES_SUITE = REPO / "expectations" / "churn_scores.yml"


def _scores(spark: SparkSession, probabilities: list[float | None]) -> DataFrame:
    """Active customers "1", "2", ... with these scores (None: not scored)."""
    rows = [
        (str(number), probability)
        + (
            (None,) * 6
            if probability is None
            else (
                "low",
                "v1",
                "2018-12-01",
                "2018-12-02T06:00:00+00:00",
                "2 errors in the last 28 days",
                "Book a technical-support follow-up.",
            )
        )
        for number, probability in enumerate(probabilities, start=1)
    ]
    return spark.createDataFrame(
        rows,
        "customer_id string, churn_probability double, risk_band string, "
        "model_version string, cutoff_date string, scored_at string, "
        "reason_1 string, action string",
    )


def test_drift_is_measured_against_the_last_accepted_run(spark, gx_workdir):
    scores = _scores(spark, [0.5, 0.5, 0.6, 0.4])
    mean = "expect_column_mean_to_be_between(churn_probability)"

    first = validate_table(scores, SCORES_SUITE, gx_workdir, reference={})
    save_reference(gx_workdir, [first])
    reference = load_reference(gx_workdir)
    steady = validate_table(scores, SCORES_SUITE, gx_workdir, reference=reference)
    moved = validate_table(
        scores, SCORES_SUITE, gx_workdir, reference={"score_mean": 0.2}
    )

    assert first.success and not first.warnings
    assert reference == {"score_mean": pytest.approx(0.5), "score_median": 0.5}
    assert steady.success and not steady.warnings
    # A jump of 0.3 against a tolerance of 0.05 warns without stopping.
    assert moved.success
    assert [w.expectation for w in moved.warnings] == [mean]
    assert moved.drift["score_mean"] == pytest.approx(0.5)


def test_a_customer_left_unscored_stops_the_gate_naming_the_customer(spark, gx_workdir):
    scores = _scores(spark, [0.1, None, 0.3])

    report = validate_table(scores, SCORES_SUITE, gx_workdir, reference={})
    with pytest.raises(QualityGateError) as raised:
        enforce(report)

    message = str(raised.value)
    assert "table churn_scores" in message
    assert "expect_column_values_to_not_be_null(churn_probability)" in message
    assert "\n      2 (churn_probability=None)" in message


def test_an_edited_suite_file_replaces_the_stored_checkpoint(
    spark, gx_workdir, tmp_path
):
    suite_file = tmp_path / "tiny.yml"
    entry = {
        "type": "expect_table_row_count_to_be_between",
        "kwargs": {"min_value": 1},
        "severity": "critical",
        "why": "Not empty.",
    }
    suite_file.write_text(yaml.safe_dump({"table": "t", "expectations": [entry]}))
    features = _frame(spark, _valid_rows())

    before = validate_table(features, suite_file, gx_workdir)
    again = validate_table(features, suite_file, gx_workdir)
    entry["kwargs"] = {"min_value": 100}
    suite_file.write_text(yaml.safe_dump({"table": "t", "expectations": [entry]}))
    after = validate_table(features, suite_file, gx_workdir)

    assert before.success and again.success
    assert not after.success
    assert after.critical_failures[0].observed == "observed 3"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (4.333333333333333, "observed 4.333"),
        (0.000123456, "observed 0.0001235"),
        (3, "observed 3"),
        ("paid", "observed 'paid'"),
        (None, "no rows to observe"),
    ],
)
def test_an_observed_value_is_said_briefly(value, said):
    from sparkify.quality import _observed

    assert _observed({"observed_value": value}, None) == said
