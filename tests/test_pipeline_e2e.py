"""The whole chain, as a user runs it: ``sparkify generate``, ``run``, ``ask``.

Each run is a subprocess with its own workdir, so each has its own Spark
driver and metastore, exactly as on a user's machine.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from chat_ui import answer
from ml import feature_label
from tests.runs import serving_tables as _tables
from tests.runs import sparkify
from tests.runs import succeeded as _succeeded
from tests.shared_data import EVENTSIM_SMALL, UDACITY, shared_data

pytestmark = pytest.mark.slow


def _user_ids(path: Path, opener=open) -> set[str]:
    with opener(path, "rt", encoding="utf-8") as handle:
        return {json.loads(line)["userId"] for line in handle} - {""}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, Path, str]:
    workdir = tmp_path_factory.mktemp("generated-run")
    logs = tmp_path_factory.mktemp("generated-logs")
    _succeeded(
        sparkify(
            "generate", "--out", str(logs / "events.jsonl"),
            "--users", "150", "--days", "56", "--seed", "3",
        )
    )  # fmt: skip
    (logs / "bad.jsonl").write_text(
        '{"ts": 1538352139000, "userId": "1"\n'
        "\n"
        '{"ts":"soon","userId":"","sessionId":1,"page":"Home","auth":"Guest",'
        '"level":"free"}',
        encoding="utf-8",
    )
    stdout = _succeeded(
        sparkify("run", "--input", str(logs), "--workdir", str(workdir))
    )
    return workdir, logs, stdout


def test_run_on_generated_logs_scores_every_active_customer(generated):
    workdir, logs, stdout = generated
    tables = _tables(workdir)
    customers, scores = tables["customers"], tables["churn_scores"]
    active = customers.loc[~customers["is_cancelled"], "customer_id"]

    assert set(customers["customer_id"]) == _user_ids(logs / "events.jsonl")
    assert customers["is_cancelled"].sum() > 0
    assert sorted(scores["customer_id"]) == sorted(active)
    assert scores["churn_probability"].between(0, 1).all()
    assert set(scores["risk_band"]) <= {"low", "medium", "high"}
    holdout = json.loads(
        tables["metadata"].set_index("key").at["holdout_metrics", "value"]
    )
    assert holdout["positives"] > 0 and holdout["roc_auc"] is not None
    assert "ROC-AUC" in stdout and "PR-AUC" in stdout and "F1" in stdout


def test_rejected_lines_are_counted_and_kept(generated):
    workdir, logs, stdout = generated
    facts = _tables(workdir)["metadata"].set_index("key")["value"]
    events = len((logs / "events.jsonl").read_text(encoding="utf-8").split("\n"))

    assert int(facts["events_read"]) == events + 3
    assert int(facts["events_rejected"]) == 3
    kept = [
        json.loads(line)
        for path in (workdir / "reports" / "rejects").glob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert sorted((Path(r["source_file"]).name, r["line_number"]) for r in kept) == [
        ("bad.jsonl", 1), ("bad.jsonl", 2), ("bad.jsonl", 3)
    ]  # fmt: skip
    assert re.search(r"events rejected\s*│\s*3 \(", stdout), stdout


def test_data_docs_are_written_and_named_in_the_summary(generated):
    workdir, _, stdout = generated
    index = workdir / "reports" / "data_docs" / "index.html"
    assert index.exists() and "customer_features" in index.read_text(encoding="utf-8")
    assert f"data docs: {index}" in stdout.splitlines()


def test_chat_answer_matches_the_serving_database(generated):
    workdir, _, _ = generated
    tables = _tables(workdir)
    scores = tables["churn_scores"].sort_values("churn_probability").iloc[-1]
    customers = tables["customers"].set_index("customer_id")
    customer = customers.loc[scores.customer_id]
    cancelled = customers[customers["is_cancelled"]].iloc[0]
    url = f"sqlite:///{workdir / 'serving.db'}"

    card = answer(f"customer {scores.customer_id} is asking about ads", url)
    gone = answer(cancelled.name, url)

    assert customer.first_name in card and customer.last_name in card
    assert f"{scores.churn_probability:.1%}" in card
    assert f"({scores.risk_band})" in card
    assert f"| {customer.songs_7d:,} |" in card
    assert "Cancelled" in gone and cancelled.cancelled_at[:10] in gone
    assert "Churn risk" not in gone


def test_ask_prints_the_same_answer_in_a_terminal(generated):
    workdir, _, _ = generated
    customer = _tables(workdir)["customers"].iloc[0]

    stdout = _succeeded(
        sparkify("ask", f"customer {customer.customer_id}", "--workdir", str(workdir))
    )

    assert customer.last_name in stdout


def test_run_tracks_the_model_in_mlflow_and_serves_reasons_and_actions(generated):
    workdir, _, stdout = generated
    tables = _tables(workdir)
    scores = tables["churn_scores"]
    facts = tables["metadata"].set_index("key")["value"]

    assert (workdir / "mlflow" / "mlflow.db").is_file()
    assert f"mlflow: sqlite:///{workdir / 'mlflow' / 'mlflow.db'}" in stdout
    assert facts["promotion_decision"].endswith("promoted: it is the first model")
    assert "xgboost" in stdout and "logistic regression" in stdout
    assert set(scores["model_version"]) == {"v1"}
    assert scores["reason_1"].notna().mean() > 0.9 and scores["action"].notna().all()
    assert scores["scored_at"].notna().all()


def test_train_force_promotes_and_score_uses_the_new_champion(generated):
    workdir, _, _ = generated

    trained = _succeeded(sparkify("train", "--force", "--workdir", str(workdir)))
    scored = _succeeded(sparkify("score", "--workdir", str(workdir)))

    decision = " ".join(trained.split())
    assert "challenger v2 PR-AUC" in decision
    assert "champion v1 PR-AUC" in decision and "on the same cutoff" in decision
    assert "--force was" in decision and "; promoted" in decision
    assert "champion v1" in trained and "logistic regression" in trained
    assert "with model v2" in scored
    assert set(_tables(workdir)["churn_scores"]["model_version"]) == {"v2"}


def test_train_with_too_few_churners_says_so_and_keeps_the_champion(generated):
    workdir, _, _ = generated
    before = _tables(workdir)["churn_scores"]

    trained = _succeeded(
        sparkify("train", "--min-churners", "100000", "--workdir", str(workdir))
    )

    said = " ".join(trained.split())
    assert "No new model was trained: only" in said
    assert "(at least 100000 needed)" in said
    assert "The champion v2 stays" in said
    pd.testing.assert_frame_equal(_tables(workdir)["churn_scores"], before)


def test_a_rerun_without_new_logs_keeps_the_champion_without_training(generated):
    workdir, logs, _ = generated

    rerun = _succeeded(sparkify("run", "--input", str(logs), "--workdir", str(workdir)))

    said = " ".join(rerun.split())
    assert "No new logs since v2 was trained" in said
    assert "v2 stays champion" in said
    assert said.count("No new logs since") == 1  # said once, not per summary row
    assert set(_tables(workdir)["churn_scores"]["model_version"]) == {"v2"}
    with sqlite3.connect(workdir / "mlflow" / "mlflow.db") as registry:
        (versions,) = registry.execute("select count(*) from model_versions").fetchone()
    assert versions == 2


def test_a_critical_event_stops_the_next_run_and_keeps_the_served_scores(generated):
    """Runs last among the tests of ``generated``: it adds a run to its workdir."""
    workdir, logs, _ = generated
    before = _tables(workdir)["churn_scores"]
    last = json.loads(
        (logs / "events.jsonl").read_text(encoding="utf-8").splitlines()[-1]
    )
    podcast = {
        **last,
        "page": "Podcast",
        "itemInSession": last["itemInSession"] + 1,
        "ts": last["ts"] + 1000,
        "artist": None,
        "song": None,
        "length": None,
    }
    bad = logs / "podcast.jsonl"
    bad.write_text(json.dumps(podcast) + "\n", encoding="utf-8")
    try:
        stopped = sparkify("run", "--input", str(logs), "--workdir", str(workdir))
        report = sparkify("quality", "--workdir", str(workdir))
    finally:
        bad.unlink()

    assert stopped.returncode == 1, stopped.stdout[-3000:]
    assert "Traceback" not in stopped.stderr
    message = " ".join(stopped.stderr.split())
    assert "quality gate failed: table raw.events" in message
    assert "expect_column_values_to_be_in_set(page)" in message
    assert f"{bad}:1 (page='Podcast')" in message
    pd.testing.assert_frame_equal(_tables(workdir)["churn_scores"], before)
    assert report.returncode == 1, report.stderr
    shown = " ".join(report.stdout.split())
    assert "latest validation: failed" in shown
    assert f"{bad}:1 (page='Podcast')" in shown


def test_run_completes_on_eventsim_small(eventsim_local_run):
    customers = _tables(eventsim_local_run.workdir)["customers"]

    assert set(customers["customer_id"]) == _user_ids(EVENTSIM_SMALL, gzip.open)
    assert customers["is_cancelled"].sum() == 30
    assert "262,958" in eventsim_local_run.stdout


def test_logs_without_cancellations_say_no_model_can_be_trained(tmp_path):
    logs = shared_data(UDACITY)

    stdout = _succeeded(
        sparkify("run", "--input", str(logs), "--workdir", str(tmp_path))
    )

    tables = _tables(tmp_path)
    customer = tables["customers"].iloc[0]
    assert "No new model was trained: only 0 churner(s)" in " ".join(stdout.split())
    assert tables["churn_scores"].empty
    reply = answer(customer.customer_id, f"sqlite:///{tmp_path / 'serving.db'}")
    assert "No churn model has scored this customer yet" in reply


def test_the_app_tabs_read_what_the_run_published(generated):
    from chat_ui._views import customer_view, model_view, overview

    workdir, _, _ = generated
    tables = _tables(workdir)
    daily, facts = tables["daily_activity"], tables["metadata"].set_index("key")
    busiest = daily.groupby("customer_id")["songs"].sum().idxmax()
    url = f"sqlite:///{workdir / 'serving.db'}"

    view = customer_view(url, busiest)
    model = model_view(url)
    top = overview(url).at_risk.iloc[0]

    # The 60 days before as_of, summed per day as the run published them.
    as_of = dt.date.fromisoformat(facts.at["as_of", "value"])
    first = (as_of - dt.timedelta(days=60)).isoformat()
    assert daily["activity_date"].between(first, str(as_of), inclusive="left").all()
    assert sum(view.listening.data[0].y) == pytest.approx(
        daily.loc[daily["customer_id"] == busiest, "listening_minutes"].sum()
    )
    importance = json.loads(facts.at["feature_importance", "value"])
    assert importance and sum(entry[1] for entry in importance) == pytest.approx(
        1, abs=0.01
    )
    assert model.importance.data[0].y[-1] == feature_label(importance[0][0])
    assert model.importance.data[0].y[-1] == importance[0][2]
    trained = dt.datetime.fromisoformat(facts.at["model_trained_at", "value"])
    assert trained.strftime("%Y-%m-%d %H:%M") in model.summary
    scores = tables["churn_scores"].sort_values(
        ["churn_probability", "customer_id"], ascending=[False, True]
    )
    assert top["customer"] == scores.iloc[0]["customer_id"]
    assert scores["reason_1_log_odds"].dropna().gt(0).all()
