"""Train the churn model with ``xgboost.spark`` and evaluate it on a later cutoff.

The split is by time. The latest labelled cutoff is the holdout; the model is
trained on the earlier cutoffs whose whole horizon had ended by the holdout
cutoff, which is all that would have been known on that day. Once evaluated,
the model is fitted again on every labelled cutoff and that fit is the one
saved for scoring.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from xgboost.spark import SparkXGBClassifier, SparkXGBClassifierModel

from sparkify.config import Workdir

__all__ = [
    "KEY_COLUMNS",
    "LABEL",
    "ChurnModel",
    "HoldoutMetrics",
    "NotTrained",
    "feature_columns",
    "flag_top_share",
    "holdout_metrics",
    "load_champion",
    "model_input",
    "probabilities",
    "train",
]

log = logging.getLogger(__name__)

FEATURES_TABLE = "analytics.customer_features"
LABELS_TABLE = "analytics.churn_labels"
CUTOFFS_TABLE = "analytics.int_cutoffs"
KEY_COLUMNS = ("customer_cutoff_id", "customer_id", "cutoff_date")
# Columns of the feature mart that describe a row but are not inputs.
NOT_FEATURES = frozenset({"batch_id"})
MAX_CATEGORY_VALUES = 30
_IS = "="
LABEL = "is_churned_in_horizon"
_CHAMPION = "champion.json"

XGB_PARAMS: dict[str, object] = {
    "max_depth": 4,
    "n_estimators": 300,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 2.0,
    "reg_lambda": 1.0,
    "verbosity": 0,
}


@dataclass(frozen=True)
class NotTrained:
    """Why no model could be trained from this data."""

    reason: str


@dataclass
class HoldoutMetrics:
    """Scores of the model on the holdout cutoff, with the counts behind them."""

    cutoff_date: str
    rows: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None
    base_rate: float
    flag_rate: float
    precision: float
    recall: float
    f1: float


@dataclass
class ChurnModel:
    """A trained model with everything needed to score and to explain it."""

    version: str
    path: Path
    features: list[str]
    trained_at: str
    train_cutoffs: list[str]
    train_rows: int
    train_positives: int
    horizon_days: int
    holdout: HoldoutMetrics | None
    holdout_note: str = ""
    params: dict[str, object] = field(default_factory=dict)

    def load(self) -> SparkXGBClassifierModel:
        return SparkXGBClassifierModel.load(str(self.path / "spark_model"))

    def to_json(self) -> str:
        record = asdict(self)
        record["path"] = str(self.path)
        return json.dumps(record, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ChurnModel:
        record = json.loads(text)
        record["path"] = Path(record["path"])
        holdout = record.pop("holdout")
        return cls(**record, holdout=HoldoutMetrics(**holdout) if holdout else None)


def feature_columns(features: DataFrame) -> list[str]:
    """The model's inputs: every numeric or boolean column of the feature mart
    except its keys, and one ``column=value`` indicator per value of each text
    column (device, OS, browser, state), the most frequent
    ``MAX_CATEGORY_VALUES`` of them.
    """
    names: list[str] = []
    for column in features.schema.fields:
        if column.name in KEY_COLUMNS or column.name in NOT_FEATURES:
            continue
        if isinstance(column.dataType, T.StringType):
            counts = features.groupBy(column.name).count()
            top = counts.orderBy(F.desc("count"), column.name).limit(
                MAX_CATEGORY_VALUES
            )
            values = sorted(row[0] for row in top.collect() if row[0] is not None)
            names += [f"{column.name}{_IS}{value}" for value in values]
        else:
            names.append(column.name)
    return names


def load_champion(workdir: Workdir) -> ChurnModel | None:
    """The model currently used for scoring, if one was ever trained here."""
    pointer = workdir.models / _CHAMPION
    if not pointer.exists():
        return None
    return ChurnModel.from_json(pointer.read_text())


def train(
    spark: SparkSession,
    workdir: Workdir,
    *,
    min_positives: int = 5,
    seed: int = 42,
) -> ChurnModel | NotTrained:
    """Train, evaluate on the holdout cutoff, refit on all labels and save.

    The new model becomes the champion. With fewer than ``min_positives``
    churners among the labelled rows nothing is trained and the reason is
    returned instead.
    """
    if min_positives < 1:
        raise ValueError(f"min_positives must be at least 1, got {min_positives}")
    started = time.monotonic()

    features = spark.table(FEATURES_TABLE)
    names = feature_columns(features)
    labelled = model_input(
        features.join(
            spark.table(LABELS_TABLE).select("customer_cutoff_id", LABEL),
            "customer_cutoff_id",
        ),
        names,
    ).cache()
    horizon_days = _horizon_days(spark)
    counts = {
        row.cutoff_date.isoformat(): (row.rows, row.positives)
        for row in labelled.groupBy("cutoff_date")
        .agg(F.count("*").alias("rows"), F.sum("label").cast("int").alias("positives"))
        .collect()
    }
    total_positives = sum(positives for _, positives in counts.values())
    log.info(
        "training churn model: %d labelled cutoffs, %d rows, %d churners, "
        "%d features, horizon %d days",
        len(counts),
        sum(rows for rows, _ in counts.values()),
        total_positives,
        len(names),
        horizon_days,
    )
    if total_positives < min_positives:
        labelled.unpersist()
        return NotTrained(
            f"only {total_positives} churner(s) in {len(counts)} labelled "
            f"cutoff(s); at least {min_positives} are needed to train a model "
            "(more days of logs, or logs with cancellations, would give more)"
        )

    holdout, holdout_note = _evaluate_on_holdout(
        labelled, names, counts, horizon_days, min_positives, seed
    )

    final = _classifier(spark, names, seed).fit(labelled)
    labelled.unpersist()
    version = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = workdir.models / version
    final.write().overwrite().save(str(path / "spark_model"))
    model = ChurnModel(
        version=version,
        path=path,
        features=names,
        trained_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        train_cutoffs=sorted(counts),
        train_rows=sum(rows for rows, _ in counts.values()),
        train_positives=total_positives,
        horizon_days=horizon_days,
        holdout=holdout,
        holdout_note=holdout_note,
        params=dict(XGB_PARAMS, seed=seed),
    )
    (path / "model.json").write_text(model.to_json())
    (workdir.models / _CHAMPION).write_text(model.to_json())
    log.info(
        "trained churn model %s in %.1fs: holdout %s",
        version,
        time.monotonic() - started,
        holdout_note or asdict(holdout),
    )
    return model


def model_input(frame: DataFrame, names: list[str]) -> DataFrame:
    """The feature mart rows cast the way the model sees them, with ``label``.

    A ``column=value`` name is 1.0 where the text column holds that value.
    """
    columns = []
    for name in names:
        source, _, value = name.partition(_IS)
        if value:
            indicator = (F.col(source) == F.lit(value)).cast("double")
            columns.append(F.coalesce(indicator, F.lit(0.0)).alias(name))
        else:
            columns.append(F.col(name).cast("double").alias(name))
    if LABEL in frame.columns:
        columns.append(F.col(LABEL).cast("int").alias("label"))
    return frame.select(*KEY_COLUMNS, *columns)


def _horizon_days(spark: SparkSession) -> int:
    row = (
        spark.table(CUTOFFS_TABLE)
        .select(F.datediff("horizon_end_date", "cutoff_date").alias("days"))
        .first()
    )
    return int(row.days)


def _classifier(spark: SparkSession, names: list[str], seed: int) -> SparkXGBClassifier:
    # One xgboost worker per task slot, never more: barrier stages need all
    # workers running at once.
    workers = max(1, min(spark.sparkContext.defaultParallelism, 8))
    return SparkXGBClassifier(
        features_col=names,
        label_col="label",
        num_workers=workers,
        random_state=seed,
        verbose=False,
        **XGB_PARAMS,
    )


def _evaluate_on_holdout(
    labelled: DataFrame,
    names: list[str],
    counts: dict[str, tuple[int, int]],
    horizon_days: int,
    min_positives: int,
    seed: int,
) -> tuple[HoldoutMetrics | None, str]:
    """Metrics on the latest labelled cutoff, or why there are none."""
    holdout_cutoff = max(counts)
    known_by_then = [
        cutoff
        for cutoff in counts
        if dt.date.fromisoformat(cutoff) + dt.timedelta(days=horizon_days)
        <= dt.date.fromisoformat(holdout_cutoff)
    ]
    train_positives = sum(counts[c][1] for c in known_by_then)
    if train_positives < min_positives or counts[holdout_cutoff][1] == 0:
        note = (
            f"not evaluated: {train_positives} churner(s) known before the "
            f"holdout cutoff {holdout_cutoff} (at least {min_positives} needed) "
            f"and {counts[holdout_cutoff][1]} in it (at least 1 needed)"
        )
        log.warning("holdout %s", note)
        return None, note

    cutoff = F.col("cutoff_date").cast("string")
    train_rows = labelled.where(cutoff.isin(known_by_then))
    holdout_rows = labelled.where(cutoff == holdout_cutoff)
    model = _classifier(labelled.sparkSession, names, seed).fit(train_rows)
    scored = probabilities(model, holdout_rows).select("label", "probability")
    frame = scored.toPandas()

    base_rate = train_rows.agg(F.avg("label")).first()[0]
    metrics = holdout_metrics(
        holdout_cutoff,
        frame["label"].to_numpy(),
        frame["probability"].to_numpy(),
        base_rate,
    )
    return metrics, ""


def holdout_metrics(
    cutoff: str, labels: np.ndarray, probabilities: np.ndarray, base_rate: float
) -> HoldoutMetrics:
    """Ranking and decision metrics for one scored cutoff.

    Customers are flagged as churners when their score is in the top
    ``base_rate`` share of the cutoff, the share that churned in training:
    the rule needs no labels of the cutoff it is applied to.
    """
    flagged = flag_top_share(probabilities, base_rate)
    both_classes = 0 < labels.sum() < len(labels)
    return HoldoutMetrics(
        cutoff_date=cutoff,
        rows=int(len(labels)),
        positives=int(labels.sum()),
        roc_auc=float(roc_auc_score(labels, probabilities)) if both_classes else None,
        pr_auc=(
            float(average_precision_score(labels, probabilities))
            if both_classes
            else None
        ),
        base_rate=float(base_rate),
        flag_rate=float(flagged.mean()) if len(flagged) else 0.0,
        precision=float(precision_score(labels, flagged, zero_division=0)),
        recall=float(recall_score(labels, flagged, zero_division=0)),
        f1=float(f1_score(labels, flagged, pos_label=1, zero_division=0)),
    )


def flag_top_share(probabilities: np.ndarray, share: float) -> np.ndarray:
    """1 for the ``share`` of highest probabilities (at least one row), else 0."""
    if len(probabilities) == 0:
        return np.zeros(0, dtype=int)
    count = max(1, math.ceil(share * len(probabilities)))
    order = np.argsort(-probabilities, kind="stable")
    flags = np.zeros(len(probabilities), dtype=int)
    flags[order[:count]] = 1
    return flags


def probabilities(model: SparkXGBClassifierModel, frame: DataFrame) -> DataFrame:
    """``frame`` with a ``probability`` column: P(churn within the horizon)."""
    return model.transform(frame).withColumn(
        "probability", vector_to_array("probability")[1]
    )
