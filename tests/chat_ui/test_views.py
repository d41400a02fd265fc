"""The tabs' views: figures and tables built from a real SQLite serving database."""

from __future__ import annotations

import pandas as pd
import pytest

from chat_ui._views import (
    at_risk_csv,
    customer_view,
    model_view,
    overview,
    quality_view,
)


def test_customer_view_has_the_card_and_four_figures_for_a_scored_customer(
    serving_url,
):
    view = customer_view(serving_url, " 39 ")

    assert "Colin Freeman · customer 39" in view.card
    listening = view.listening.data[0]
    # 60 days up to the day before as_of, quiet days at zero.
    assert len(listening.x) == 60
    assert str(listening.x[0])[:10] == "2018-10-02"
    assert str(listening.x[-1])[:10] == "2018-11-30"
    assert sum(listening.y) == pytest.approx(240.5 + 350.0 + 80.2 + 47.9)
    up, down = view.thumbs.data
    assert sum(up.y) == 9 and sum(down.y) == -6
    assert view.gauge.data[0].value == pytest.approx(73.4)
    reasons = view.reasons.data[0]
    assert list(reasons.x) == [0.35, 0.91]  # strongest drawn on top
    assert reasons.y[1].startswith("listening fell 60% in the last week")


def test_customer_view_of_a_cancelled_customer_has_no_gauge_or_reasons(serving_url):
    view = customer_view(serving_url, "1042")

    assert "**Cancelled** on 2018-10-31" in view.card
    assert view.gauge is None and view.reasons is None
    assert sum(view.listening.data[0].y) == 0


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("", "Type a customer ID"),
        ("39; drop table customers", "is not one"),
        ("555", "`555` was not found"),
    ],
)
def test_customer_view_explains_an_id_it_cannot_show(serving_url, typed, said):
    view = customer_view(serving_url, typed)

    assert said in view.card and view.listening is None


def test_overview_figures_add_up_to_the_customers(serving_url):
    view = overview(serving_url)

    # Active: 39, 100012, 51, 52, 53, 77; paid among them: 39, 51, 77.
    assert "| **6** | **50.0%** | **2** | **1.5** | **5** |" in view.headline
    weeks = view.cancellations.data[0]
    assert sum(weeks.y) == 3 and str(weeks.x[-1])[:10] == "2018-11-24"
    assert sum(view.distribution.data[0].y) == 5
    assert list(view.by_level.data[0].x) == ["paid", "free"]
    assert list(view.at_risk["customer"]) == ["39", "51", "53", "77", "52"]
    assert view.levels == ["free", "paid"] and view.states == ["CA", "NC", "TX"]


def test_overview_filters_the_table_and_the_csv_alike(serving_url):
    view = overview(serving_url, level="paid", state="CA", min_probability=0.2)
    path = at_risk_csv(serving_url, level="paid", state="CA", min_probability=0.2)

    assert list(view.at_risk["customer"]) == ["39", "51"]
    assert view.at_risk_total == 2
    csv = pd.read_csv(path, dtype={"customer": str})
    assert list(csv["customer"]) == ["39", "51"]
    assert list(csv["churn risk (%)"]) == [73.4, 41.0]


def test_overview_hides_names_when_masked(serving_url):
    view = overview(serving_url, masked=True)
    path = at_risk_csv(serving_url, masked=True)

    assert set(view.at_risk["name"]) == {"name hidden"}
    assert "Colin" not in path.read_text() and "39," in path.read_text()
    assert "Colin" in at_risk_csv(serving_url).read_text()


def test_overview_rejects_an_unknown_band(serving_url):
    with pytest.raises(ValueError, match="band must be one of"):
        overview(serving_url, band="extreme")


def test_quality_view_lists_suites_and_failed_expectations(serving_url):
    view = quality_view(serving_url)

    assert view.summary.startswith("**Latest validation: FAILED**")
    assert "1 of 2 expectations met" in view.summary
    assert list(view.suites["suite"]) == ["events", "customer_features"]
    assert list(view.suites["warnings"]) == [0, 1]
    assert list(view.failed["why"]) == ["Tenure is never negative."]
    assert str(view.data_docs) == "/tmp/data_docs/index.html"


def test_model_view_shows_the_champion_its_figures_and_features(serving_url):
    view = model_view(serving_url)

    assert "**Champion model xgb-7**, trained 2018-11-21 05:40 UTC" in view.summary
    assert "cutoff 2018-11-06" in view.summary
    figures = dict(
        zip(view.evaluation["metric"], view.evaluation["xgboost"], strict=True)
    )
    assert figures["PR-AUC"] == "0.640" and figures["churners among them"] == "23"
    bars = view.importance.data[0]
    assert list(bars.y) == [
        "count_thumbs_down_28d",
        "errors, last 28 days",
        "days since last activity",
    ]
    assert list(bars.x) == pytest.approx([10, 20, 41])
    assert list(bars.customdata) == [
        "count_thumbs_down_28d",
        "count_errors_28d",
        "days_since_last_activity",
    ]


def test_views_without_a_database_say_to_run_sparkify(tmp_path):
    url = f"sqlite:///{tmp_path / 'none.db'}"

    assert "Run `sparkify run`" in overview(url).headline
    assert "Run `sparkify run`" in quality_view(url).summary
    assert "Run `sparkify run`" in model_view(url).summary
    assert "Run `sparkify run`" in customer_view(url, "39").card


def test_the_at_risk_csv_follows_a_republished_database(sample, serving_url):
    before = at_risk_csv(serving_url).read_text()

    sample.churn_scores = sample.churn_scores[
        sample.churn_scores["customer_id"] != "39"
    ]
    sample.publish(serving_url)

    after = at_risk_csv(serving_url).read_text()
    assert "Colin Freeman" in before and "Colin Freeman" not in after
