"""The whole run: ingest, dbt build, quality gate, train, score, publish.

All steps share one process and one SparkSession: the embedded Derby
metastore admits one process at a time. On a cluster (``Engine``) the same
steps run against its master; dbt's ``thrift`` target sends the models to a
Spark Thrift Server that shares the run's external metastore and warehouse.

Four quality gates guard a run: the new events before they are appended,
the feature mart and the labels after dbt, and the scores before they are
published. A failed critical expectation stops the run there; the serving
database then keeps the last accepted customers and scores and gets only the
failed results.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkify.config import Workdir
from sparkify.engine import ClusterWatch, Engine, watched
from sparkify.ingest import (
    RAW_DATABASE,
    IngestResult,
    LogFile,
    ingest,
    is_uri,
    resolve_inputs,
)
from sparkify.quality import (
    QualityGateError,
    enforce,
    load_reference,
    save_reference,
    summary_rows,
    validate_table,
)
from sparkify.serving import (
    ACTIVITY_DAYS,
    CHURN_SCORES,
    DAILY_ACTIVITY,
    publish,
    record_quality,
)
from sparkify.transform import PROJECT_DIR, DbtOutcome, dbt_build

if TYPE_CHECKING:
    from ml import ChurnModel, EvaluationReport, RetentionRules
    from sparkify.quality import QualityReport

__all__ = ["STEPS", "RunSummary", "run_pipeline", "run_scoring", "run_training"]

log = logging.getLogger(__name__)

STEPS = (
    "ingest",
    "dbt build",
    "quality",
    "train",
    "score",
    "publish",
)
SUITES_DIR = PROJECT_DIR / "expectations"
_ACTIVITY = {
    "count_sessions": "sessions",
    "count_songs": "songs",
    "listening_seconds": "listening_minutes",
    "count_thumbs_up": "thumbs_up",
    "count_thumbs_down": "thumbs_down",
    "count_adverts": "adverts",
    "count_errors": "errors",
}


@dataclass
class RunSummary:
    """What a run read, built and published; printed at the end of a run."""

    workdir: Path
    ingest: IngestResult | None = None
    dbt: DbtOutcome | None = None
    customers: int = 0
    cancelled: int = 0
    active: int = 0
    scored: int = 0
    as_of: str | None = None
    model_version: str | None = None
    model_status: str = ""
    holdout: dict[str, object] | None = None
    holdout_note: str = ""
    decision: str = ""
    evaluation: str = ""
    tracking_uri: str = ""
    quality: str = ""
    quality_warnings: list[str] = field(default_factory=list)
    quality_reports: list[QualityReport] = field(default_factory=list)
    data_docs: Path | None = None
    serving_url: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def run_pipeline(
    input_spec: str,
    workdir: Workdir,
    *,
    spark: SparkSession | None = None,
    master: str | None = None,
    target: str | None = None,
    min_positives: int = 5,
    full_refresh: bool = False,
    force: bool = False,
    tracking_uri: str | None = None,
    on_step: Callable[[str], None] | None = None,
) -> RunSummary:
    """Run every step on the logs named by ``input_spec``.

    ``master`` and ``target`` (the dbt target) default to the environment's
    settings (``Engine.from_settings``). Raises ``IngestError``,
    ``TransformError``, ``QualityGateError`` or ``ClusterError`` (the cluster
    does not answer, or went away mid-run) with a message meant for the
    person running it; nothing reaches the serving database unless every
    critical check passed.
    """
    engine = Engine.from_settings(workdir, target=target, master=master)
    # Local paths are checked before Spark starts; URIs need it to be listed.
    files = None if is_uri(input_spec) else resolve_inputs(input_spec)
    spark = spark or _start_spark(workdir, engine)
    with watched(engine, spark) as watch:
        return _run_steps(
            spark,
            engine,
            files or resolve_inputs(input_spec, spark),
            workdir,
            watch,
            min_positives=min_positives,
            full_refresh=full_refresh,
            force=force,
            tracking_uri=tracking_uri,
            on_step=on_step,
        )


def _start_spark(workdir: Workdir, engine: Engine) -> SparkSession:
    """The run's SparkSession, once what ``engine`` names answers."""
    from sparkify.spark import spark_session

    engine.check()
    return spark_session(workdir, engine=engine)


def _refresh_tables(spark: SparkSession, database: str) -> None:
    """Forget what this session cached of tables another engine (re)wrote."""
    for table in spark.catalog.listTables(database):
        spark.catalog.refreshTable(f"{database}.{table.name}")


def _run_steps(
    spark: SparkSession,
    engine: Engine,
    files: list[LogFile],
    workdir: Workdir,
    watch: ClusterWatch,
    *,
    min_positives: int,
    full_refresh: bool,
    force: bool,
    tracking_uri: str | None,
    on_step: Callable[[str], None] | None,
) -> RunSummary:
    from ml import score_active_customers

    summary = RunSummary(workdir=workdir.root, serving_url=workdir.serving_url)
    clock = _StepClock(summary, on_step, watch)
    gate = _Gates(workdir, summary)

    with clock("ingest"):
        summary.ingest = ingest(
            spark, files, workdir, validate=lambda batch: gate(batch, "events")
        )

    with clock("dbt build"):
        summary.dbt = dbt_build(
            workdir, target=engine.target, full_refresh=full_refresh
        )
        if engine.target == "thrift":
            _refresh_tables(spark, "analytics")

    with clock("quality"):
        gate(
            _rebuilt_cutoffs(spark.table("analytics.customer_features")),
            "customer_features",
        )
        labels = spark.table("analytics.churn_labels")
        gate(
            labels.withColumn("churned", F.col("is_churned_in_horizon").cast("int")),
            "churn_labels",
        )

    with clock("train"):
        model = None
        if not (summary.ingest.new_files or full_refresh or force):
            model = _keep_champion(spark, workdir, summary, tracking_uri)
        if model is None:
            model = _train(
                spark,
                workdir,
                summary,
                min_churners=min_positives,
                force=force,
                tracking_uri=tracking_uri,
            )

    with clock("score"):
        scores = (
            score_active_customers(spark, model)
            if model
            else pd.DataFrame(columns=[c.name for c in CHURN_SCORES.columns])
        )
        summary.model_version = model.version if model else None
        summary.scored = len(scores)
        if model:
            gate(_scores_of_active_customers(spark, scores), "churn_scores")

    with clock("publish"):
        customers = _serving_customers(spark)
        summary.customers = len(customers)
        summary.cancelled = int(customers["is_cancelled"].sum())
        summary.active = summary.customers - summary.cancelled
        summary.as_of = str(customers["as_of"].iloc[0]) if len(customers) else None
        publish(
            workdir.serving_url,
            customers,
            scores,
            {**_facts(summary, model), **gate.facts(passed=True)},
            quality=gate.results(),
            daily_activity=_serving_daily_activity(spark),
        )
        gate.accept()
    return summary


class _Gates:
    """The run's quality gates: validate, remember each report, stop on critical.

    The drift reference is the last accepted run's; ``accept`` makes this
    run's observations the next run's reference.
    """

    def __init__(self, workdir: Workdir, summary: RunSummary) -> None:
        self.workdir = workdir
        self.summary = summary
        self.reference = load_reference(workdir)

    def __call__(self, frame: DataFrame, suite: str) -> None:
        report = validate_table(
            frame, SUITES_DIR / f"{suite}.yml", self.workdir, reference=self.reference
        )
        summary = self.summary
        summary.quality_reports.append(report)
        summary.data_docs = report.data_docs_index
        summary.quality_warnings.extend(
            f"{w.table}: {w.expectation}: {w.observed}" for w in report.warnings
        )
        summary.quality = self.headline()
        try:
            enforce(report)
        except QualityGateError:
            # The customers and scores stay as the last accepted run left
            # them; the app learns why they are not newer.
            record_quality(
                self.workdir.serving_url, self.results(), self.facts(passed=False)
            )
            raise

    def headline(self) -> str:
        reports = self.summary.quality_reports
        outcomes = [o for r in reports for o in r.outcomes]
        critical = sum(len(r.critical_failures) for r in reports)
        warnings = sum(len(r.warnings) for r in reports)
        return (
            f"{sum(o.success for o in outcomes)} of {len(outcomes)} expectations "
            f"passed on {', '.join(r.table for r in reports)} "
            f"({critical} critical failed, {warnings} warnings)"
        )

    def results(self) -> pd.DataFrame:
        return pd.DataFrame(summary_rows(self.summary.quality_reports))

    def facts(self, *, passed: bool) -> dict[str, str]:
        reports = self.summary.quality_reports
        return {
            "quality_status": "passed" if passed else "failed",
            "quality_checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "quality_summary": self.headline(),
            "data_docs": str(self.summary.data_docs or ""),
            "quality_runs": json.dumps([r.run_id for r in reports]),
        }

    def accept(self) -> None:
        save_reference(self.workdir, self.summary.quality_reports)


def _rebuilt_cutoffs(features: DataFrame) -> DataFrame:
    """The rows of the feature mart that the latest ``dbt build`` (re)wrote.

    dbt stamps the cutoffs it rebuilds with the newest ingestion batch, so
    validating those alone keeps the gate's cost to what changed; the other
    cutoffs passed the gate of the run that wrote them.
    """
    newest = features.agg(F.max("batch_id")).first()[0]
    if newest is None:  # unstamped rows: the suite's not-null check says so
        return features
    return features.where(F.col("batch_id") == newest)


def _scores_of_active_customers(spark: SparkSession, scores: pd.DataFrame) -> DataFrame:
    """Every customer at the scoring cutoff, with their score where they have one.

    A customer the model skipped gets nulls and one scored twice appears twice,
    so the churn_scores suite can tell both.
    """
    active = (
        spark.table("analytics.customer_features")
        .join(
            spark.table("analytics.int_cutoffs").where("is_scoring_cutoff"),
            "cutoff_date",
        )
        .select("customer_id")
    )
    types = {
        "customer_id": "string",
        "churn_probability": "double",
        "risk_band": "string",
        "model_version": "string",
        "cutoff_date": "string",
        "scored_at": "string",
        "reason_1": "string",
        "action": "string",
    }
    columns = list(types)
    rows = scores[columns].astype(object).where(scores[columns].notna(), None)
    scored = spark.createDataFrame(
        rows.values.tolist(),
        ", ".join(f"{name} {kind}" for name, kind in types.items()),
    )
    return active.join(scored, "customer_id", "left")


class _StepClock:
    """Times each step into the summary and tells ``on_step`` (and the cluster
    watch, whose messages name the step) it started."""

    def __init__(
        self,
        summary: RunSummary,
        on_step: Callable[[str], None] | None,
        watch: ClusterWatch | None = None,
    ):
        self.summary = summary
        self.on_step = on_step or (lambda name: None)
        self.watch = watch
        self.name = ""
        self.started = 0.0

    def __call__(self, name: str) -> _StepClock:
        self.name = name
        return self

    def __enter__(self) -> None:
        if self.watch is not None:
            self.watch.step = self.name
        self.on_step(self.name)
        log.info("step %s: started", self.name)
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        seconds = time.monotonic() - self.started
        self.summary.seconds[self.name] = round(seconds, 1)
        log.info(
            "step %s: %s after %.1fs",
            self.name,
            "failed" if exc[0] else "done",
            seconds,
        )


def _serving_customers(spark: SparkSession) -> pd.DataFrame:
    """``analytics.customer_profiles`` in the shape of the ``customers`` table."""
    profiles = spark.table("analytics.customer_profiles").toPandas()
    frame = profiles.rename(
        columns={
            f"{measure}_{window}": f"{name}_{window}"
            for measure, name in _ACTIVITY.items()
            for window in ("7d", "28d", "prev_28d")
        }
    )
    for window in ("7d", "28d", "prev_28d"):
        column = f"listening_minutes_{window}"
        frame[column] = (frame[column].astype(float) / 60).round(1)
    for column in ("registered_at", "first_event_at", "last_active_at", "cancelled_at"):
        frame[column] = frame[column].map(_iso)
    frame["is_cancelled"] = frame["is_cancelled"].astype(bool)
    frame["as_of"] = frame["as_of_date"].astype(str)
    return frame


def _serving_daily_activity(spark: SparkSession) -> pd.DataFrame:
    """The customers' active days before the scoring cutoff, ``daily_activity``."""
    scoring = (
        spark.table("analytics.int_cutoffs")
        .where("is_scoring_cutoff")
        .select(F.col("cutoff_date").alias("as_of_date"))
    )
    daily = (
        spark.table("analytics.int_customers__daily_activity")
        .join(scoring, F.lit(True))
        .where(
            (F.col("activity_date") < F.col("as_of_date"))
            & (F.col("activity_date") >= F.date_sub("as_of_date", ACTIVITY_DAYS))
        )
        .select(
            "customer_id",
            F.date_format("activity_date", "yyyy-MM-dd").alias("activity_date"),
            *[
                F.col(measure).alias(name)
                for measure, name in _ACTIVITY.items()
                if name in DAILY_ACTIVITY.c
            ],
        )
        .toPandas()
    )
    daily["listening_minutes"] = (daily["listening_minutes"].astype(float) / 60).round(
        1
    )
    return daily


def _iso(value: object) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _facts(summary: RunSummary, model: ChurnModel | None) -> dict[str, str]:
    facts = {
        "as_of": summary.as_of or "",
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model_status": summary.model_status,
        "model_version": summary.model_version or "",
        "events_read": str(summary.ingest.lines_read if summary.ingest else 0),
        "events_rejected": str(summary.ingest.rejected if summary.ingest else 0),
    }
    if model is not None:
        facts |= _model_facts(summary, model)
    return facts


def _model_facts(summary: RunSummary, model: ChurnModel) -> dict[str, str]:
    """What the app and a reader of the database learn of the scoring model."""
    reports = _reports(model)
    return {
        "horizon_days": str(model.horizon_days),
        "model_version": model.version,
        "holdout_metrics": json.dumps(model.evaluation.to_dict()),
        "evaluation": json.dumps([report.to_dict() for report in reports]),
        "model_trained_at": model.trained_at,
        "evaluation_cutoff": model.evaluation_cutoff,
        "feature_importance": json.dumps(_importance(model)),
        "promotion_decision": summary.decision,
        "mlflow_run_id": model.run_id,
        "tracking_uri": summary.tracking_uri,
    }


def _reports(model: ChurnModel) -> list[EvaluationReport]:
    """The model's evaluation, and its baseline's when it has one."""
    return [model.evaluation, *([model.baseline] if model.baseline else [])]


def _importance(model: ChurnModel) -> list[list[str | float]]:
    from ml import feature_importance, feature_label

    if model.spark_model is None:
        return []
    return [
        [column, round(share, 4), feature_label(column)]
        for column, share in feature_importance(
            model.spark_model.get_booster(), model.features
        )
    ]


def _train(
    spark: SparkSession,
    workdir: Workdir,
    summary: RunSummary,
    *,
    min_churners: int,
    force: bool,
    tracking_uri: str | None,
    num_workers: int | None = None,
) -> ChurnModel | None:
    """Train a challenger, decide on it; the champion afterwards, if any."""
    from ml import format_reports, train

    outcome = train(
        spark,
        workdir,
        min_churners=min_churners,
        force=force,
        tracking_uri=tracking_uri,
        num_workers=num_workers,
    )
    summary.tracking_uri = _safe_uri(outcome.tracking_uri)
    summary.decision = outcome.decision
    summary.evaluation = format_reports(outcome.reports) if outcome.reports else ""
    model = outcome.champion
    if outcome.not_trained:
        summary.model_status = outcome.decision
    elif outcome.promoted:
        summary.model_status = f"Model {model.version} trained on this data."
    else:
        summary.model_status = (
            f"Model {outcome.challenger.version} was trained on this data but "
            f"the champion {model.version} stays."
        )
    if model is not None:
        summary.holdout = model.evaluation.to_dict()
    return model


def _keep_champion(
    spark: SparkSession,
    workdir: Workdir,
    summary: RunSummary,
    tracking_uri: str | None,
) -> ChurnModel | None:
    """The champion, when it was trained after the last batch was ingested.

    A run that takes in no new files would otherwise train a challenger on
    the very data the champion learned from, register it and, as good as
    the champion, promote it: a new version for nothing.
    """
    from ml import Registry, RegistryError, format_reports

    registry = Registry.at(workdir, tracking_uri)
    try:
        champion = registry.champion(load=False)
    except RegistryError:
        return None
    if champion is None:
        return None

    last_batch = (
        spark.table(f"{RAW_DATABASE}.ingested_files")
        .agg(F.max(F.unix_timestamp("ingested_at")))
        .first()[0]
    )
    trained = dt.datetime.fromisoformat(champion.trained_at).timestamp()
    if last_batch is None or trained <= last_batch:
        return None

    model = registry.champion()
    summary.tracking_uri = _safe_uri(registry.uri)
    summary.decision = (
        f"No new logs since {model.version} was trained "
        f"({champion.trained_at[:16].replace('T', ' ')} UTC), so no challenger "
        f"was trained; {model.version} stays champion (`sparkify train` trains "
        "one anyway)."
    )
    summary.model_status = summary.decision
    summary.evaluation = format_reports(_reports(model))
    summary.holdout = model.evaluation.to_dict()
    log.info("%s", summary.decision)
    return model


def _safe_uri(uri: str) -> str:
    # A tracking server URI may carry a password.
    from sqlalchemy.engine import make_url

    try:
        return make_url(uri).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a database URL: an http(s) URI or a path
        return uri.split("@")[-1] if "@" in uri else uri


def run_training(
    workdir: Workdir,
    *,
    spark: SparkSession | None = None,
    master: str | None = None,
    min_churners: int = 5,
    force: bool = False,
    tracking_uri: str | None = None,
    num_workers: int | None = None,
) -> RunSummary:
    """``sparkify train``: a challenger from the tables the last run built.

    Prints nothing and publishes nothing: the summary holds the decision and
    the figures; ``run_scoring`` then scores with whichever model is champion.
    """
    engine = Engine.from_settings(workdir, master=master)
    summary = RunSummary(workdir=workdir.root, serving_url=workdir.serving_url)
    spark = spark or _start_spark(workdir, engine)
    _require_marts(spark)
    with watched(engine, spark) as watch, _StepClock(summary, None, watch)("train"):
        model = _train(
            spark,
            workdir,
            summary,
            min_churners=min_churners,
            force=force,
            tracking_uri=tracking_uri,
            num_workers=num_workers,
        )
    summary.model_version = model.version if model else None
    return summary


def run_scoring(
    workdir: Workdir,
    *,
    spark: SparkSession | None = None,
    master: str | None = None,
    tracking_uri: str | None = None,
    rules_path: Path | None = None,
) -> RunSummary:
    """``sparkify score``: score the active customers with the champion.

    Replaces the scores in the serving database and leaves the rest as the
    last run published it (a database not yet published is published whole).
    """
    from ml import load_rules

    engine = Engine.from_settings(workdir, master=master)
    rules = load_rules(rules_path)
    summary = RunSummary(workdir=workdir.root, serving_url=workdir.serving_url)
    spark = spark or _start_spark(workdir, engine)
    _require_marts(spark)
    with watched(engine, spark) as watch:
        _score_and_publish(spark, workdir, summary, watch, tracking_uri, rules)
    return summary


def _score_and_publish(
    spark: SparkSession,
    workdir: Workdir,
    summary: RunSummary,
    watch: ClusterWatch,
    tracking_uri: str | None,
    rules: RetentionRules,
) -> None:
    from ml import load_champion, score_active_customers
    from sparkify.serving import replace_scores

    clock = _StepClock(summary, None, watch)
    gate = _Gates(workdir, summary)
    with clock("score"):
        model = load_champion(workdir, tracking_uri)
        if model is None:
            raise ValueError(
                "no champion model to score with yet; train one with "
                "`sparkify train` (or `sparkify run`)"
            )
        scores = score_active_customers(spark, model, rules=rules)
        summary.model_version = model.version
        summary.scored = len(scores)
        summary.model_status = f"Model {model.version} scored this data."
        summary.holdout = model.evaluation.to_dict()
        summary.tracking_uri = _safe_uri(_tracking_uri_of(workdir, tracking_uri))
        gate(_scores_of_active_customers(spark, scores), "churn_scores")
    with clock("publish"):
        facts = {
            "model_status": summary.model_status,
            "scored_at": str(scores["scored_at"].iloc[0]) if len(scores) else "",
            **_model_facts(summary, model),
        }
        facts.pop("promotion_decision")
        published = replace_scores(workdir.serving_url, scores, facts)
        if not published:
            customers = _serving_customers(spark)
            summary.customers = len(customers)
            summary.as_of = str(customers["as_of"].iloc[0]) if len(customers) else None
            publish(
                workdir.serving_url,
                customers,
                scores,
                {"as_of": summary.as_of or "", **facts},
                daily_activity=_serving_daily_activity(spark),
            )
        gate.accept()


def _tracking_uri_of(workdir: Workdir, uri: str | None) -> str:
    from ml import tracking_uri

    return tracking_uri(workdir, uri)


def _require_marts(spark: SparkSession) -> None:
    for table in ("analytics.customer_features", "analytics.churn_labels"):
        if not spark.catalog.tableExists(table):
            raise ValueError(
                f"{table} does not exist in this workdir yet; build it with "
                "`sparkify run --input LOGS` first"
            )
