"""A small serving database, published the way a run publishes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from sparkify.serving import publish

SCORED_ID = "39"
UNSCORED_ID = "100012"
CANCELLED_ID = "1042"


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


@dataclass
class Sample:
    customers: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
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
            ]
        )
    )
    churn_scores: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {
                "customer_id": [SCORED_ID],
                "churn_probability": [0.73421],
                "risk_band": ["high"],
                "model_version": ["xgb-7"],
                "cutoff_date": ["2018-11-20"],
                "reason_1": [
                    "listening fell 60% in the last week compared with the three before"
                ],
                "reason_1_log_odds": [0.91],
                "reason_2": ["2 errors in the last 28 days"],
                "reason_2_log_odds": [0.35],
                "reason_3": [None],
                "reason_3_log_odds": [None],
                "action": [
                    "Book a technical-support follow-up about the errors they ran into."
                ],
                "action_rule": ["repeated errors"],
                "scored_at": ["2018-11-21T06:00:00+00:00"],
            }
        )
    )
    facts: dict[str, str] = field(
        default_factory=lambda: {
            "as_of": "2018-12-01",
            "built_at": "2024-06-01T10:00:00Z",
            "horizon_days": "28",
            "model_version": "xgb-7",
            "model_status": (
                "Customers who joined after 2018-11-20 are scored next run."
            ),
        }
    )

    def publish(self, url: str) -> str:
        publish(url, self.customers, self.churn_scores, self.facts)
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
