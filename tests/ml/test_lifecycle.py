"""Champion and challenger: MLflow runs, promotion on the latest cutoff, scoring.

Two warehouses are built from the same generated logs: ``early`` from their
first 49 days and ``full`` from all 63, the second standing for the same
customers after new logs arrived. Models go to a real MLflow store (SQLite
and artifact files) in a temporary folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ml import Marts, load_rules, score_active_customers, train
from ml._registry import CHAMPION_ALIAS, REGISTERED_MODEL
from sparkify.config import Workdir
from sparkify.generate import generate
from sparkify.ingest import ingest
from sparkify.transform import dbt_build

START = dt.date(2018, 10, 1)
EARLY_DAYS = 49


def _millis(day: dt.date) -> int:
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return int(midnight.timestamp()) * 1000


@pytest.fixture(scope="module")
def marts(spark, workdir, tmp_path_factory) -> dict[str, Marts]:
    folder = tmp_path_factory.mktemp("lifecycle-logs")
    full = generate(folder / "full.jsonl", users=200, days=63, start=START, seed=5)
    end = _millis(START + dt.timedelta(days=EARLY_DAYS))
    lines = full.path.read_text(encoding="utf-8").split("\n")
    early = folder / "early.jsonl"
    early.write_text(
        "\n".join(line for line in lines if json.loads(line)["ts"] < end),
        encoding="utf-8",
    )
    built = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, path in (("early", early), ("full", full.path)):
            ingest(spark, [path], workdir, database=f"life_{name}_raw")
            monkeypatch.setenv("SPARKIFY_DBT_SCHEMA", f"life_{name}_analytics")
            dbt_build(workdir, variables={"raw_schema": f"life_{name}_raw"})
            built[name] = Marts(f"life_{name}_analytics")
    return built


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Workdir:
    return Workdir.at(tmp_path_factory.mktemp("lifecycle-mlflow"))


@pytest.fixture(scope="module")
def first(spark, marts, registry):
    return train(spark, registry, marts=marts["early"])


@pytest.fixture(scope="module")
def after_new_logs(spark, marts, registry, first):
    return train(spark, registry, marts=marts["full"])


@pytest.fixture(scope="module")
def worse(spark, marts, registry, after_new_logs):
    # A learning rate of 0 gives every customer the same score: PR-AUC is then
    # the base rate, below any champion that learned something.
    return train(spark, registry, marts=marts["full"], params={"learning_rate": 0.0})


@pytest.fixture(scope="module")
def forced(spark, marts, registry, worse):
    return train(
        spark, registry, marts=marts["full"], params={"learning_rate": 0.0}, force=True
    )


def _client(registry: Workdir) -> MlflowClient:
    uri = f"sqlite:///{registry.root / 'mlflow' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champion_version(registry: Workdir) -> str:
    alias = _client(registry).get_model_version_by_alias(
        REGISTERED_MODEL, CHAMPION_ALIAS
    )
    return str(alias.version)


def test_the_first_model_is_evaluated_on_a_cutoff_it_never_learned_from(first):
    model = first.challenger
    known_by = dt.date.fromisoformat(model.validation_cutoff) + dt.timedelta(
        days=model.horizon_days
    )

    assert first.promoted and "it is the first model" in first.decision
    assert known_by <= dt.date.fromisoformat(model.evaluation_cutoff)
    assert max(model.fit_cutoffs) < model.validation_cutoff
    assert model.evaluation.positives > 0 and model.evaluation.pr_auc is not None
    assert model.baseline.cutoff_date == model.evaluation_cutoff
    assert model.baseline.rows == model.evaluation.rows
    assert model.params["num_workers"] == 2  # local[2]: two task slots
    assert model.best_iteration is not None
    assert model.best_iteration < model.params["n_estimators"] - 1


def test_a_run_logs_params_metrics_features_report_and_model_to_mlflow(first, registry):
    client = _client(registry)
    run = client.get_run(first.challenger.run_id)
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    model_files = {
        Path(item.path).name for item in client.list_artifacts(run.info.run_id, "model")
    }

    assert run.data.params["xgb_max_depth"] == "4"
    assert run.data.params["evaluation_cutoff"] == first.challenger.evaluation_cutoff
    assert run.data.metrics["xgb_pr_auc"] == pytest.approx(
        first.challenger.evaluation.pr_auc
    )
    assert "baseline_pr_auc" in run.data.metrics
    assert run.data.metrics["xgb_positives"] == first.challenger.evaluation.positives
    assert {"features.json", "evaluation.json", "evaluation.txt", "model"} <= artifacts
    assert {"spark_model", "churn_model.json"} <= model_files
    assert run.data.tags["promoted"] == "true"
    features = json.loads(
        Path(
            client.download_artifacts(
                run.info.run_id, "features.json", str(registry.root)
            )
        ).read_text()
    )
    assert features["features"] == first.challenger.features


def test_after_new_logs_both_models_are_rated_on_the_latest_cutoff(
    first, after_new_logs
):
    challenger = after_new_logs.challenger
    champion_report = after_new_logs.reports[-1]

    assert challenger.evaluation_cutoff > first.challenger.evaluation_cutoff
    assert champion_report.model == f"champion {first.challenger.version}"
    assert champion_report.cutoff_date == challenger.evaluation_cutoff
    assert champion_report.rows == challenger.evaluation.rows
    assert f"PR-AUC {challenger.evaluation.pr_auc:.3f}" in after_new_logs.decision
    assert f"PR-AUC {champion_report.pr_auc:.3f}" in after_new_logs.decision
    as_good = challenger.evaluation.pr_auc >= champion_report.pr_auc
    assert after_new_logs.promoted == as_good


def test_a_worse_challenger_leaves_the_champion_in_place(
    after_new_logs, worse, registry
):
    assert not worse.promoted
    assert "not promoted: worse than the champion" in worse.decision
    assert worse.champion.version == after_new_logs.champion.version
    assert worse.challenger.evaluation.pr_auc < worse.reports[-1].pr_auc
    tags = _client(registry).get_run(worse.challenger.run_id).data.tags
    assert tags["promoted"] == "false"
    assert tags["promotion_decision"] == worse.decision


def test_force_promotes_a_worse_challenger_and_says_so(forced, registry):
    assert forced.promoted
    assert "promoted because --force was given, although it is worse" in (
        forced.decision
    )
    assert _champion_version(registry) == forced.challenger.registry_version


def test_too_few_churners_trains_nothing_and_keeps_the_champion(
    spark, marts, registry, forced
):
    outcome = train(spark, registry, marts=marts["full"], min_churners=100_000)

    assert outcome.challenger is None and not outcome.promoted
    assert "(at least 100000 needed)" in outcome.decision
    assert f"The champion {forced.challenger.version} stays" in outcome.decision
    assert _champion_version(registry) == forced.challenger.registry_version


def test_scores_come_with_reasons_and_a_suggestion_for_every_customer(
    spark, marts, after_new_logs
):
    model = after_new_logs.champion
    rules = load_rules()

    scores = score_active_customers(
        spark, model, marts=marts["full"], rules=rules, scored_at="2018-12-04T06:00"
    )

    active = (
        spark.table(marts["full"].features)
        .join(
            spark.table(marts["full"].cutoffs).where("is_scoring_cutoff"), "cutoff_date"
        )
        .count()
    )
    assert len(scores) == active and scores["customer_id"].is_unique
    assert scores["churn_probability"].between(0, 1).all()
    assert (scores["model_version"] == model.version).all()
    assert (scores["scored_at"] == "2018-12-04T06:00").all()
    assert scores["reason_1"].notna().mean() > 0.95
    assert scores["action"].notna().all()
    actions = {rule.name: rule.action for rule in rules.rules} | {
        "default": rules.default
    }
    assert (scores["action"] == scores["action_rule"].map(actions)).all()
    riskiest = scores.sort_values("churn_probability").iloc[-1]
    assert riskiest["reason_1"] and riskiest["reason_1"][0].isalnum()
    assert riskiest["reason_1"] != riskiest["reason_2"]


def test_a_tracking_uri_puts_runs_and_models_elsewhere(
    spark, marts, tmp_path, monkeypatch
):
    elsewhere = tmp_path / "shared-store" / "tracking.db"
    uri = f"sqlite:///{elsewhere}"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    outcome = train(
        spark, Workdir.at(tmp_path / "work"), marts=marts["early"], tracking_uri=uri
    )

    assert outcome.promoted and outcome.tracking_uri == uri
    assert elsewhere.is_file() and (elsewhere.parent / "artifacts").is_dir()
    assert not (tmp_path / "work" / "mlflow").exists()
    # Nor does it leak into this process's environment, and so into commands
    # it starts, as mlflow.set_tracking_uri would.
    assert "MLFLOW_TRACKING_URI" not in os.environ
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.get_run(outcome.challenger.run_id).data.metrics["xgb_pr_auc"] == (
        pytest.approx(outcome.challenger.evaluation.pr_auc)
    )


def test_xgboost_trains_with_one_worker_per_task_slot_and_refuses_more(spark):
    from ml import xgboost_workers

    with pytest.raises(ValueError) as refused:
        xgboost_workers(spark, 3)

    assert xgboost_workers(spark) == 2  # local[2]
    assert xgboost_workers(spark, 1) == 1
    message = str(refused.value)
    assert "num_workers (--workers) must be between 1 and the 2 task slot(s)" in message
    assert "local[2]" in message and "got 3" in message
