"""Drivers: XGBoost's feature contributions, said in the customer's own figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost
import yaml

from ml import describe, drivers, feature_importance, feature_label, top_drivers
from ml._explain import KNOWN_COLUMNS

MART_YML = Path(__file__).parents[2] / "models" / "marts" / "customer_features.yml"


def test_listening_trend_is_said_as_a_change_against_the_three_weeks_before():
    # 40 songs in the last week; 340 in 28 days leaves 300 for the 21 before,
    # 100 a week: a 60% fall.
    row = {"count_songs_7d": 40, "count_songs_28d": 340}

    sentence = describe("songs_7d_vs_prev_21d_ratio", row)

    assert sentence == (
        "listening fell 60% in the last week compared with the three before"
    )


def test_adverts_are_said_per_hour_of_music():
    row = {"count_adverts_28d": 30, "listening_seconds_28d": 2.5 * 3600}

    assert describe("adverts_per_song_28d", row) == (
        "12 adverts per hour of music in the last 28 days"
    )


@pytest.mark.parametrize(
    ("column", "row", "sentence"),
    [
        ("days_since_last_activity", {"days_since_last_activity": 9},
         "last active 9 days before the scoring date"),
        ("count_errors_28d", {"count_errors_28d": 1}, "1 error in the last 28 days"),
        ("count_songs_7d", {"count_songs_7d": 3}, "3 songs played in the last 7 days"),
        ("is_paid", {"is_paid": 0}, "on the free tier, with adverts"),
        ("tenure_days", {"tenure_days": 20}, "a customer for only 20 days"),
        ("os_family", {"os_family": "ios"}, "uses iOS"),
        ("browser", {"browser": "firefox"}, "listens in Firefox"),
        ("songs_7d_vs_prev_21d_ratio", {"count_songs_7d": 0, "count_songs_28d": 90},
         "no listening in the last week, after 30 songs a week in the three before"),
        ("adverts_per_song_28d",
         {"count_adverts_28d": 2, "listening_seconds_28d": 5400},
         "1.3 adverts per hour of music in the last 28 days"),
    ],
)  # fmt: skip
def test_each_driver_reads_as_a_sentence_with_the_customers_figure(
    column, row, sentence
):
    assert describe(column, row) == sentence


def test_every_feature_of_the_mart_has_a_sentence():
    (model,) = yaml.safe_load(MART_YML.read_text())["models"]
    not_features = {"customer_cutoff_id", "customer_id", "cutoff_date", "batch_id"}
    columns = {column["name"] for column in model["columns"]} - not_features

    assert columns - KNOWN_COLUMNS == set()


@pytest.mark.parametrize(
    ("column", "label"),
    [
        ("count_songs_7d", "songs, last 7 days"),
        ("listening_seconds_28d", "listening time, last 28 days"),
        ("count_level_changes", "level changes"),
        ("days_since_last_activity", "days since last activity"),
        ("tenure_days", "days since sign-up"),
        ("songs_7d_vs_prev_21d_ratio", "songs: last week vs the three before"),
    ],
)
def test_a_feature_is_named_in_words_for_charts(column, label):
    assert feature_label(column) == label


def test_every_feature_has_its_own_short_name():
    labels = {feature_label(column) for column in KNOWN_COLUMNS}

    assert len(labels) == len(KNOWN_COLUMNS)
    assert not [label for label in labels if "_" in label]


def _booster() -> tuple[xgboost.Booster, pd.DataFrame]:
    """Churn rises with errors; the two phone indicators make one column."""
    rng = np.random.default_rng(0)
    errors = rng.integers(0, 10, 400).astype(float)
    phone = rng.integers(0, 2, 400).astype(float)
    inputs = pd.DataFrame(
        {
            "count_errors_28d": errors,
            "device_type=phone": phone,
            "device_type=desktop": 1 - phone,
            "tenure_days": rng.integers(1, 400, 400).astype(float),
        }
    )
    labels = (errors + rng.normal(0, 1, 400) > 6).astype(int)
    booster = xgboost.train(
        {"max_depth": 3, "objective": "binary:logistic", "verbosity": 0},
        xgboost.DMatrix(inputs.to_numpy(), label=labels),
        num_boost_round=30,
    )
    return booster, inputs


def test_contributions_are_summed_per_mart_column_and_add_up_to_the_margin():
    booster, inputs = _booster()

    contributions, columns = drivers(booster, inputs)

    assert columns == ["count_errors_28d", "device_type", "tenure_days"]
    margin = booster.predict(xgboost.DMatrix(inputs.to_numpy()), output_margin=True)
    bias = margin - contributions.sum(axis=1)
    np.testing.assert_allclose(bias, bias[0], atol=1e-4)


def test_the_strongest_positive_driver_of_a_customer_with_many_errors_is_errors():
    booster, inputs = _booster()
    contributions, columns = drivers(booster, inputs)
    raw = pd.DataFrame(
        {
            "count_errors_28d": inputs["count_errors_28d"],
            "device_type": np.where(inputs["device_type=phone"] == 1, "phone", "pc"),
            "tenure_days": inputs["tenure_days"],
        }
    )
    many = int(inputs["count_errors_28d"].idxmax())

    found = top_drivers(contributions, columns, raw)

    assert found[many][0].column == "count_errors_28d"
    assert found[many][0].sentence == "9 errors in the last 28 days"
    assert all(len(row) <= 3 for row in found)
    assert all(d.contribution > 0 for row in found for d in row)


def test_feature_importance_sums_indicators_into_their_column_as_shares():
    booster, inputs = _booster()

    importance = feature_importance(booster, list(inputs.columns))

    columns = [column for column, _ in importance]
    assert columns[0] == "count_errors_28d"
    assert set(columns) <= {"count_errors_28d", "device_type", "tenure_days"}
    assert sum(share for _, share in importance) == pytest.approx(1.0)
    shares = [share for _, share in importance]
    assert shares == sorted(shares, reverse=True)
