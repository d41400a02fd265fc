"""Publishing the serving database: all or nothing, readers never see a mix."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
import sqlalchemy as sa

from sparkify.serving import (
    CUSTOMERS,
    load_quality,
    name_key,
    publish,
    record_quality,
    risk_band,
)


def _customers(*ids: str, level: str = "free") -> pd.DataFrame:
    rows = []
    for customer_id in ids:
        row = {column.name: 0 for column in CUSTOMERS.columns}
        row.update(
            customer_id=customer_id,
            first_name="Ann",
            last_name=f"Lee {customer_id}",
            level=level,
            first_event_at="2018-10-01T00:00:00Z",
            last_active_at="2018-11-30T00:00:00Z",
            is_cancelled=False,
            cancelled_at=None,
            registered_at=None,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _scores(*ids: str, probability: float = 0.25) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": list(ids),
            "churn_probability": [probability] * len(ids),
            "risk_band": [risk_band(probability)] * len(ids),
            "model_version": ["v1"] * len(ids),
            "cutoff_date": ["2018-12-01"] * len(ids),
            "reason_1": ["12 adverts per hour of music in the last 28 days"] * len(ids),
            "reason_1_log_odds": [0.8] * len(ids),
            "reason_2": [None] * len(ids),
            "reason_2_log_odds": [None] * len(ids),
            "reason_3": [None] * len(ids),
            "reason_3_log_odds": [None] * len(ids),
            "action": ["Offer a discounted month of the paid tier."] * len(ids),
            "action_rule": ["adverts on the free tier"] * len(ids),
            "scored_at": ["2018-12-01T06:00:00+00:00"] * len(ids),
        }
    )


def test_publish_swaps_the_sqlite_file_under_open_readers(tmp_path):
    path = tmp_path / "serving.db"
    url = f"sqlite:///{path}"
    publish(url, _customers("1", "2"), _scores("1"), {"as_of": "2018-12-01"})
    reader = sqlite3.connect(path)
    reader.execute("begin")
    before = reader.execute("select count(*) from customers").fetchone()[0]

    publish(url, _customers("1", "2", "3"), _scores("1", "2"), {"as_of": "2018-12-08"})

    during = reader.execute("select count(*) from customers").fetchone()[0]
    reader.close()
    after = sqlite3.connect(path).execute("select count(*) from customers").fetchone()
    assert (before, during, after[0]) == (2, 2, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serving.db"]


def test_publish_by_renaming_tables_replaces_every_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'rename.db'}"
    publish(url, _customers("1"), _scores("1"), {"as_of": "a"}, strategy="rename")

    publish(
        url,
        _customers("7", "8"),
        _scores("8", probability=0.9),
        {"as_of": "b"},
        strategy="rename",
    )

    engine = sa.create_engine(url)
    with engine.connect() as connection:
        ids = connection.execute(sa.text("select customer_id from customers")).scalars()
        scores = connection.execute(sa.text("select * from churn_scores")).all()
        facts = dict(
            connection.execute(sa.text("select key, value from metadata")).all()
        )
        tables = set(sa.inspect(connection).get_table_names())
    assert sorted(ids) == ["7", "8"]
    assert [(s.customer_id, s.risk_band) for s in scores] == [("8", "high")]
    assert facts == {"as_of": "b"}
    assert tables == {
        "customers",
        "churn_scores",
        "daily_activity",
        "metadata",
        "quality_results",
    }


def test_publish_refuses_frames_missing_columns(tmp_path):
    customers = _customers("1").drop(columns=["level"])
    with pytest.raises(ValueError, match=r"customers: missing columns \['level'\]"):
        publish(f"sqlite:///{tmp_path / 'x.db'}", customers, _scores(), {})
    assert not (tmp_path / "x.db").exists()


def test_publish_repairs_mis_encoded_names_and_keys_them_for_look_ups(tmp_path):
    customers = _customers("1", "2", "3")
    customers["first_name"] = ["ZoÃ«", "Zoë", None]
    customers["last_name"] = ["MÃ¼ller", "O'Neil", "Lee"]
    url = f"sqlite:///{tmp_path / 'x.db'}"

    publish(url, customers, _scores("1"), {})

    with sqlite3.connect(tmp_path / "x.db") as connection:
        rows = connection.execute(
            "select first_name, last_name, first_name_key, last_name_key "
            "from customers order by customer_id"
        ).fetchall()
    assert rows == [
        ("Zoë", "Müller", "zoe", "muller"),
        ("Zoë", "O'Neil", "zoe", "o'neil"),
        (None, "Lee", None, "lee"),
    ]


@pytest.mark.parametrize(
    ("name", "key"),
    [("Zoë", "zoe"), ("ZOË", "zoe"), (" Ángel ", "angel"), ("Straße", "strasse")],
)
def test_name_key_ignores_case_accents_and_outer_spaces(name, key):
    assert name_key(name) == key


@pytest.mark.parametrize(
    ("probability", "band"),
    [
        (0.0, "low"),
        (0.0999, "low"),
        (0.1, "medium"),
        (0.2999, "medium"),
        (0.3, "high"),
        (1.0, "high"),
    ],
)
def test_risk_band_edges(probability, band):
    assert risk_band(probability) == band


def test_risk_band_refuses_values_outside_zero_to_one():
    with pytest.raises(ValueError, match="probability must lie in"):
        risk_band(1.2)


def _quality_row(expectation: str, *, success: bool, severity: str = "critical"):
    return {
        "run_id": "r1",
        "validated_at": "2026-12-04T06:00:00+00:00",
        "suite": "churn_scores",
        "table_name": "churn_scores",
        "expectation": expectation,
        "severity": severity,
        "success": success,
        "observed": "1 of 3 rows unexpected",
        "examples": '["7 (churn_probability=None)"]',
        "why": "Every active customer is scored.",
    }


def test_record_quality_keeps_the_last_published_scores(tmp_path):
    url = f"sqlite:///{tmp_path / 'serving.db'}"
    passed = pd.DataFrame([_quality_row("expect_a", success=True)])
    publish(
        url,
        _customers("7"),
        _scores("7"),
        {"as_of": "a", "quality_status": "passed"},
        quality=passed,
    )
    failed = pd.DataFrame(
        [
            _quality_row("expect_b", success=False),
            _quality_row("expect_c", success=True, severity="warning"),
        ]
    )

    record_quality(url, failed, {"quality_status": "failed", "data_docs": "/d.html"})

    facts, results = load_quality(url)
    assert facts == {"quality_status": "failed", "data_docs": "/d.html"}
    assert list(results["expectation"]) == ["expect_b", "expect_c"]
    assert list(results["success"]) == [False, True]
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        scores = connection.execute(sa.text("select customer_id from churn_scores"))
        as_of = connection.execute(
            sa.text("select value from metadata where key = 'as_of'")
        ).scalar_one()
    assert list(scores.scalars()) == ["7"] and as_of == "a"


def test_record_quality_creates_a_database_stopped_before_its_first_publish(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    record_quality(
        url,
        pd.DataFrame([_quality_row("expect_b", success=False)]),
        {"quality_status": "failed"},
    )

    facts, results = load_quality(url)
    assert facts["quality_status"] == "failed" and len(results) == 1


def test_load_quality_says_when_there_is_nothing_yet(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(LookupError, match="no quality results"):
        load_quality(url)
    publish(url, _customers("1"), _scores("1"), {"as_of": "a"})
    with pytest.raises(LookupError, match="no quality results"):
        load_quality(url)
