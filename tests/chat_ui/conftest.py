"""A small serving database, published the way a run publishes it."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from sparkify.serving import publish, risk_band

SCORED_ID = "39"
UNSCORED_ID = "100012"
CANCELLED_ID = "1042"
_SECONDS = itertools.count()
EVALUATION = {
    "model": "xgboost",
    "cutoff_date": "2018-11-06",
    "rows": 340,
    "positives": 23,
    "base_rate": 0.0676,
    "roc_auc": 0.91,
    "pr_auc": 0.64,
    "threshold": 0.57,
    "flagged": 15,
    "true_positives": 11,
    "precision": 0.733,
    "recall": 0.478,
    "f1": 0.579,
    "top_rows": 34,
    "top_positives": 15,
    "top_lift": 6.5,
    "top_recall": 0.652,
    "brier": 0.038,
    "reliability": [],
}


def _customer(customer_id: str, first_name: str, last_name: str, **profile) -> dict:
    row = {
        "customer_id": customer_id,
        "first_name": first_name,
        "last_name": last_name,
        "gender": "F",
        "location": "Raleigh, NC",
        "state": "NC",
        "level": "paid",
        "registered_at": "2018-09-02T17:04:11",
        "first_event_at": "2018-10-01T00:13:45",
        "last_active_at": "2018-11-30T21:40:02",
        "tenure_days": 89,
        "is_cancelled": False,
        "cancelled_at": None,
    }
    for window in ("7d", "28d", "prev_28d"):
        for measure in (
            "sessions",
            "songs",
            "listening_minutes",
            "thumbs_up",
            "thumbs_down",
            "adverts",
            "errors",
        ):
            row[f"{measure}_{window}"] = 0.0 if measure == "listening_minutes" else 0
    row.update(profile)
    return row


def _score(customer_id: str, probability: float, **reasons) -> dict:
    row = {
        "customer_id": customer_id,
        "churn_probability": probability,
        "risk_band": risk_band(probability),
        "model_version": "xgb-7",
        "cutoff_date": "2018-11-20",
        "reason_1": "a customer for only 20 days",
        "reason_1_log_odds": 0.5,
        "reason_2": None,
        "reason_2_log_odds": None,
        "reason_3": None,
        "reason_3_log_odds": None,
        "action": "Walk them through playlists and recommendations.",
        "action_rule": "new customers",
        "scored_at": "2018-11-21T06:00:00+00:00",
    }
    row.update(reasons)
    return row


def _customers() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _customer(
                SCORED_ID,
                "Colin",
                "Freeman",
                gender="M",
                location="Bakersfield, CA",
                state="CA",
                sessions_7d=3,
                sessions_28d=11,
                sessions_prev_28d=19,
                songs_7d=147,
                songs_28d=612,
                songs_prev_28d=1034,
                listening_minutes_7d=575.6,
                listening_minutes_28d=2431.2,
                listening_minutes_prev_28d=4102.9,
                thumbs_up_7d=4,
                thumbs_up_28d=21,
                thumbs_up_prev_28d=40,
                thumbs_down_7d=2,
                thumbs_down_28d=6,
                thumbs_down_prev_28d=1,
                errors_28d=1,
            ),
            _customer(
                UNSCORED_ID,
                "Lina",
                "Park",
                level="free",
                registered_at="2018-11-25T09:00:00",
                tenure_days=6,
                sessions_7d=2,
                sessions_28d=2,
                adverts_7d=9,
                adverts_28d=9,
            ),
            _customer(
                CANCELLED_ID,
                "Darianna",
                "Carpenter",
                is_cancelled=True,
                cancelled_at="2018-10-31T08:12:00",
                last_active_at="2018-10-31T08:12:00",
                sessions_prev_28d=14,
            ),
            _customer(
                "51",
                "Kaylee",
                "Summers",
                location="Fresno, CA",
                state="CA",
                sessions_28d=20,
                songs_28d=400,
            ),
            _customer(
                "52",
                "Kaylee",
                "Summers",
                level="free",
                location="Austin, TX",
                state="TX",
            ),
            _customer("53", "Kaylee", "Brooks", level="free", state="CA"),
            _customer(
                "77",
                "Ethan",
                "Brooks",
                gender="M",
                location="San Diego, CA",
                state="CA",
                sessions_28d=10,
                songs_28d=200,
            ),
            _customer(
                "200",
                "Marcus",
                "Vaughn",
                gender="M",
                level="free",
                location="Dallas, TX",
                state="TX",
                is_cancelled=True,
                cancelled_at="2018-11-27T10:00:00",
            ),
            _customer(
                "201",
                "Ana",
                "Lima",
                location="Oakland, CA",
                state="CA",
                is_cancelled=True,
                cancelled_at="2018-11-24T00:30:00",
            ),
        ]
    )


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _score(
                SCORED_ID,
                0.73421,
                reason_1=(
                    "listening fell 60% in the last week compared with the three before"
                ),
                reason_1_log_odds=0.91,
                reason_2="2 errors in the last 28 days",
                reason_2_log_odds=0.35,
                action=(
                    "Book a technical-support follow-up about the errors they ran into."
                ),
                action_rule="repeated errors",
            ),
            _score("51", 0.41),
            _score("52", 0.05),
            _score("53", 0.22),
            _score("77", 0.12),
        ]
    )


def _daily_activity() -> pd.DataFrame:
    days = ["2018-11-02", "2018-11-09", "2018-11-23", "2018-11-30"]
    return pd.DataFrame(
        {
            "customer_id": [SCORED_ID] * len(days),
            "activity_date": days,
            "sessions": [2, 3, 1, 1],
            "songs": [60, 90, 20, 12],
            "listening_minutes": [240.5, 350.0, 80.2, 47.9],
            "thumbs_up": [3, 5, 1, 0],
            "thumbs_down": [0, 1, 2, 3],
            "adverts": [0, 0, 0, 0],
        }
    )


def _quality() -> pd.DataFrame:
    common = {"run_id": "run-1", "validated_at": "2018-12-01T06:00:00Z"}
    return pd.DataFrame(
        [
            {
                **common,
                "suite": "events",
                "table_name": "raw.events",
                "expectation": "expect_column_values_to_be_in_set(page)",
                "severity": "critical",
                "success": True,
                "observed": "0 unexpected of 5,120",
                "examples": "[]",
                "why": "The pipeline knows these 22 pages.",
            },
            {
                **common,
                "suite": "customer_features",
                "table_name": "analytics.customer_features",
                "expectation": "expect_column_values_to_be_between(tenure_days)",
                "severity": "warning",
                "success": False,
                "observed": "3 unexpected of 340",
                "examples": '[{"customer_id": "39", "tenure_days": -2}]',
                "why": "Tenure is never negative.",
            },
        ]
    )


@dataclass
class Sample:
    customers: pd.DataFrame = field(default_factory=_customers)
    churn_scores: pd.DataFrame = field(default_factory=_scores)
    daily_activity: pd.DataFrame = field(default_factory=_daily_activity)
    quality: pd.DataFrame = field(default_factory=_quality)
    facts: dict[str, str] = field(
        default_factory=lambda: {
            "as_of": "2018-12-01",
            "built_at": "2024-06-01T10:00:00Z",
            "horizon_days": "14",
            "model_version": "xgb-7",
            "model_status": (
                "Customers who joined after 2018-11-20 are scored next run."
            ),
            "model_trained_at": "2018-11-21T05:40:00+00:00",
            "evaluation_cutoff": "2018-11-06",
            "feature_importance": json.dumps(
                [
                    ["days_since_last_activity", 0.41, "days since last activity"],
                    ["count_errors_28d", 0.2, "errors, last 28 days"],
                    # As published before short names were stored.
                    ["count_thumbs_down_28d", 0.1],
                ]
            ),
            "evaluation": json.dumps([EVALUATION]),
            "promotion_decision": "promoted: the first model",
            "quality_status": "failed",
            "quality_summary": "1 warning: customer_features",
            "quality_checked_at": "2018-12-01T06:00:00+00:00",
            "data_docs": "/tmp/data_docs/index.html",
        }
    )

    def publish(self, url: str) -> str:
        # A new publish is a new database: the app's caches key on built_at.
        self.facts["built_at"] = f"2024-06-01T10:00:{next(_SECONDS):02d}Z"
        publish(
            url,
            self.customers,
            self.churn_scores,
            self.facts,
            quality=self.quality,
            daily_activity=self.daily_activity,
        )
        return url


@pytest.fixture
def sample() -> Sample:
    return Sample()


@pytest.fixture
def serving_path(tmp_path: Path) -> Path:
    return tmp_path / "serving.db"


@pytest.fixture
def serving_url(sample: Sample, serving_path: Path) -> str:
    return sample.publish(f"sqlite:///{serving_path}")
