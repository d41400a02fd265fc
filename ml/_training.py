"""Train a churn model with ``xgboost.spark`` and rate it on the latest labelled cutoff.

The split is by time. The latest labelled cutoff is the evaluation cutoff;
the model learns only from cutoffs whose whole horizon had ended by then,
which is all that would have been known on that day. The latest of those is
the validation cutoff: early stopping watches it and the decision threshold
is chosen on it. The other training cutoffs are the rows the trees are fitted
on. The model evaluated is the model saved and scored with: no refit, so the
figures describe exactly the model agents see, and a later challenger can be
compared with it on a later cutoff it has never seen.

Class imbalance is handled by weighting churners by ``scale_pos_weight``
(non-churners / churners of the fitted rows). The weight inflates the odds
the model learns, and boosting many trees on few churners makes its scores
too extreme as well, so the scores are turned back into probabilities by
Platt scaling on the validation cutoff (:class:`Calibration`: a logistic
regression of the label on the score's log-odds, scikit-learn's). Without a
churner there to fit it on, the weight's inflation alone is divided out. The
Brier score and the reliability table on the evaluation cutoff check the
result.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.linear_model import LogisticRegression as PlattScaling
from xgboost.spark import SparkXGBClassifier, SparkXGBClassifierModel

from ml._evaluation import EvaluationReport, choose_threshold, evaluate
from ml._features import LABEL, Marts, feature_columns, model_input

__all__ = [
    "BASELINE_NAME",
    "XGB_NAME",
    "XGB_PARAMS",
    "Calibration",
    "ChurnModel",
    "NotTrained",
    "Split",
    "TrainedChallenger",
    "plan_split",
    "probabilities",
    "task_slots",
    "train_challenger",
    "xgboost_workers",
]

log = logging.getLogger(__name__)

XGB_NAME = "xgboost"
BASELINE_NAME = "logistic regression"
VALIDATION = "is_validation"
WEIGHT = "class_weight"
VECTOR = "features"
RAW = "raw_score"

XGB_PARAMS: dict[str, Any] = {
    "max_depth": 4,
    "n_estimators": 1000,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 2.0,
    "reg_lambda": 1.0,
    "early_stopping_rounds": 30,
    "eval_metric": "logloss",
    "verbosity": 0,
}
BASELINE_PARAMS: dict[str, Any] = {"maxIter": 100, "regParam": 0.01}


@dataclass(frozen=True)
class NotTrained:
    """Why no model could be trained from this data."""

    reason: str


@dataclass(frozen=True)
class Split:
    """Which labelled cutoffs fit, validate and evaluate a model."""

    horizon_days: int
    fit_cutoffs: list[str]
    validation_cutoff: str
    evaluation_cutoff: str
    counts: dict[str, tuple[int, int]]

    def rows(self, cutoffs: list[str]) -> tuple[int, int]:
        """Rows and churners of ``cutoffs``."""
        pairs = [self.counts[cutoff] for cutoff in cutoffs]
        return sum(r for r, _ in pairs), sum(p for _, p in pairs)


@dataclass(frozen=True)
class Calibration:
    """Probability from a raw score: ``sigmoid(slope * logit(raw) + intercept)``."""

    slope: float
    intercept: float
    method: str

    @classmethod
    def for_weight(cls, pos_weight: float) -> Calibration:
        """Divides out the odds inflation of weighting churners by ``pos_weight``."""
        return cls(1.0, -math.log(pos_weight), "class weight")

    @classmethod
    def fit(cls, labels: np.ndarray, raw: np.ndarray, pos_weight: float) -> Calibration:
        """Platt scaling on validation rows; the weight's correction without churners.

        A fit that would reverse or flatten the order of the scores (a slope
        of zero or less, possible with a handful of churners) is not used.
        """
        labels = np.asarray(labels, dtype=int)
        if labels.min(initial=1) == labels.max(initial=0):
            return cls.for_weight(pos_weight)
        logits = _logit(np.asarray(raw, dtype=float)).reshape(-1, 1)
        platt = PlattScaling().fit(logits, labels)
        slope, intercept = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        if slope <= 0:
            return cls.for_weight(pos_weight)
        return cls(slope, intercept, "Platt scaling on the validation cutoff")

    def apply(self, raw: np.ndarray) -> np.ndarray:
        z = self.slope * _logit(np.asarray(raw, dtype=float)) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def column(self, raw: Column) -> Column:
        clipped = F.least(F.greatest(raw, F.lit(_EPSILON)), F.lit(1.0 - _EPSILON))
        z = F.lit(self.slope) * F.log(clipped / (F.lit(1.0) - clipped)) + F.lit(
            self.intercept
        )
        return F.lit(1.0) / (F.lit(1.0) + F.exp(-z))


_EPSILON = 1e-7


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPSILON, 1.0 - _EPSILON)
    return np.log(p / (1.0 - p))


@dataclass
class ChurnModel:
    """A trained model with what is needed to score, explain and defend it."""

    features: list[str]
    threshold: float
    pos_weight: float
    best_iteration: int | None
    horizon_days: int
    fit_cutoffs: list[str]
    validation_cutoff: str
    evaluation_cutoff: str
    train_rows: int
    train_positives: int
    trained_at: str
    params: dict[str, Any]
    evaluation: EvaluationReport
    calibration: Calibration
    baseline: EvaluationReport | None = None
    registry_version: str = ""
    run_id: str = ""
    spark_model: SparkXGBClassifierModel | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def version(self) -> str:
        """``v`` and the MLflow registry version, e.g. ``v3``; empty before."""
        return f"v{self.registry_version}" if self.registry_version else ""

    def to_json(self) -> str:
        record = asdict(self)
        record.pop("spark_model")
        record["evaluation"] = self.evaluation.to_dict()
        record["baseline"] = self.baseline.to_dict() if self.baseline else None
        return json.dumps(record, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ChurnModel:
        record = json.loads(text)
        record["evaluation"] = EvaluationReport.from_dict(record["evaluation"])
        # Records written before calibration was kept only divided out the weight.
        record["calibration"] = (
            Calibration(**record["calibration"])
            if "calibration" in record
            else Calibration.for_weight(record["pos_weight"])
        )
        if record.get("baseline"):
            record["baseline"] = EvaluationReport.from_dict(record["baseline"])
        return cls(**record)

    def can_be_evaluated_on(self, cutoff: str) -> bool:
        """True when every label this model learned from was known by ``cutoff``."""
        known_by = dt.date.fromisoformat(self.validation_cutoff) + dt.timedelta(
            days=self.horizon_days
        )
        return known_by <= dt.date.fromisoformat(cutoff)


@dataclass
class TrainedChallenger:
    """A freshly trained model and the evaluation rows it was rated on."""

    model: ChurnModel
    split: Split
    evaluation_rows: DataFrame


def task_slots(spark: SparkSession) -> int:
    """How many tasks this Spark can run at once (xgboost needs one per worker)."""
    # The count xgboost.spark itself checks num_workers against.
    from xgboost.spark.utils import _get_max_num_concurrent_tasks

    return int(_get_max_num_concurrent_tasks(spark.sparkContext))


def xgboost_workers(spark: SparkSession, num_workers: int | None = None) -> int:
    """How many xgboost workers to train with: one per task slot by default.

    xgboost.spark runs its workers as one barrier stage, all at once, so a
    count above the task slots would wait forever for executors that never
    come; that, and a Spark with no executor yet, is refused with what to do.
    """
    slots = task_slots(spark)
    master = spark.sparkContext.master
    if slots < 1:
        raise ValueError(
            f"the Spark at {master} has no executor to train on (0 task slots): "
            "check that its workers are up and have free cores for this "
            "application (spark.cores.max, spark.executor.cores)"
        )
    if num_workers is None:
        return slots
    if not 1 <= num_workers <= slots:
        raise ValueError(
            f"num_workers (--workers) must be between 1 and the {slots} task "
            f"slot(s) that {master} gives this run, got {num_workers}: xgboost "
            "runs all its workers at once; ask for fewer, or give the run more "
            "executor cores"
        )
    return num_workers


def plan_split(
    counts: dict[str, tuple[int, int]], horizon_days: int, min_churners: int
) -> Split | NotTrained:
    """Fit, validation and evaluation cutoffs from (rows, churners) per cutoff."""
    if not counts:
        return NotTrained(
            "no labelled cutoff yet: the logs must span more than the "
            f"{horizon_days}-day horizon after the first cutoff"
        )
    labelled = sorted(counts)
    all_positives = sum(positives for _, positives in counts.values())
    if all_positives < min_churners:
        return NotTrained(
            f"only {all_positives} churner(s) in the labelled cutoffs "
            f"{labelled[0]} to {labelled[-1]} (at least {min_churners} needed): "
            "more days of logs, or logs with cancellations, would give more"
        )
    evaluation = labelled[-1]
    known = sorted(
        cutoff
        for cutoff in counts
        if dt.date.fromisoformat(cutoff) + dt.timedelta(days=horizon_days)
        <= dt.date.fromisoformat(evaluation)
    )
    if len(known) < 2:
        return NotTrained(
            f"only {len(known)} labelled cutoff(s) end their {horizon_days}-day "
            f"horizon by the evaluation cutoff {evaluation}; two are needed (one "
            "to fit, one to validate on): more days of logs would give them"
        )
    split = Split(horizon_days, known[:-1], known[-1], evaluation, counts)
    _, train_positives = split.rows(known)
    eval_positives = counts[evaluation][1]
    if train_positives < min_churners or eval_positives == 0:
        return NotTrained(
            f"only {train_positives} churner(s) in the training cutoffs "
            f"{known[0]} to {known[-1]} (at least {min_churners} needed) and "
            f"{eval_positives} in the evaluation cutoff {evaluation} (at least "
            "1 needed): more days of logs, or logs with cancellations, would "
            "give more"
        )
    return split


def train_challenger(
    spark: SparkSession,
    *,
    marts: Marts | None = None,
    min_churners: int = 5,
    num_workers: int | None = None,
    seed: int = 42,
    params: dict[str, Any] | None = None,
) -> TrainedChallenger | NotTrained:
    """Fit XGBoost and the baseline on the time split and rate both.

    ``num_workers`` defaults to one xgboost worker per task slot of this
    Spark (:func:`xgboost_workers`); ``params`` override ``XGB_PARAMS``.
    """
    if min_churners < 1:
        raise ValueError(f"min_churners must be at least 1, got {min_churners}")
    marts = marts or Marts()
    num_workers = xgboost_workers(spark, num_workers)
    started = time.monotonic()

    features = spark.table(marts.features)
    names = feature_columns(features)
    labelled = model_input(
        features.join(
            spark.table(marts.labels).select("customer_cutoff_id", LABEL),
            "customer_cutoff_id",
        ),
        names,
    ).withColumn("cutoff", F.col("cutoff_date").cast("string"))
    counts = {
        row.cutoff: (row.rows, row.positives)
        for row in labelled.groupBy("cutoff")
        .agg(F.count("*").alias("rows"), F.sum("label").cast("int").alias("positives"))
        .collect()
    }
    horizon_days = marts.horizon_days(spark)
    split = plan_split(counts, horizon_days, min_churners)
    if isinstance(split, NotTrained):
        return split
    fit_rows, fit_positives = split.rows(split.fit_cutoffs)
    pos_weight = (fit_rows - fit_positives) / max(fit_positives, 1)
    log.info(
        "training churn model: fit on %s (%d rows, %d churners), validate on %s, "
        "evaluate on %s; %d features, %d xgboost workers of %d task slots, "
        "scale_pos_weight %.2f",
        ", ".join(split.fit_cutoffs),
        fit_rows,
        fit_positives,
        split.validation_cutoff,
        split.evaluation_cutoff,
        len(names),
        num_workers,
        task_slots(spark),
        pos_weight,
    )

    training = (
        _assembled(labelled, names)
        .where(F.col("cutoff").isin([*split.fit_cutoffs, split.validation_cutoff]))
        .withColumn(VALIDATION, F.col("cutoff") == split.validation_cutoff)
        .withColumn(WEIGHT, F.when(F.col("label") == 1, pos_weight).otherwise(1.0))
        # One partition per xgboost worker, the rows of each chosen by their
        # key and sorted by it: every engine (local, a cluster, however the
        # mart's files were written) hands each worker the same rows in the
        # same order, so a seed gives the same model everywhere.
        .repartition(num_workers, "customer_cutoff_id")
        .sortWithinPartitions("customer_cutoff_id")
        .cache()
    )
    evaluation_rows = _assembled(labelled, names).where(
        F.col("cutoff") == split.evaluation_cutoff
    )
    evaluation_rows = evaluation_rows.cache()
    chosen = dict(XGB_PARAMS, **(params or {}))
    classifier = SparkXGBClassifier(
        features_col=VECTOR,
        label_col="label",
        validation_indicator_col=VALIDATION,
        num_workers=num_workers,
        random_state=seed,
        scale_pos_weight=pos_weight,
        verbose=False,
        **chosen,
    )
    spark_model = classifier.fit(training)
    best_iteration = _best_iteration(spark_model)

    calibration, threshold = _calibrate(
        raw_scores(spark_model, training.where(VALIDATION), names), split, pos_weight
    )
    model = ChurnModel(
        features=names,
        threshold=threshold,
        pos_weight=pos_weight,
        best_iteration=best_iteration,
        horizon_days=horizon_days,
        fit_cutoffs=split.fit_cutoffs,
        validation_cutoff=split.validation_cutoff,
        evaluation_cutoff=split.evaluation_cutoff,
        train_rows=fit_rows + split.counts[split.validation_cutoff][0],
        train_positives=fit_positives + split.counts[split.validation_cutoff][1],
        trained_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        params=dict(chosen, seed=seed, num_workers=num_workers),
        evaluation=rate(
            XGB_NAME,
            split.evaluation_cutoff,
            probabilities(spark_model, evaluation_rows, names, calibration),
            threshold,
        ),
        calibration=calibration,
        spark_model=spark_model,
    )
    model.baseline = _baseline(training, evaluation_rows, names, split, pos_weight)
    training.unpersist()
    log.info(
        "trained churn model in %.1fs: best iteration %s, evaluation on %s: "
        "PR-AUC %s, ROC-AUC %s, %d churners",
        time.monotonic() - started,
        best_iteration,
        split.evaluation_cutoff,
        model.evaluation.pr_auc,
        model.evaluation.roc_auc,
        model.evaluation.positives,
    )
    return TrainedChallenger(model, split, evaluation_rows)


def rate(
    name: str, cutoff: str, scored: DataFrame, threshold: float
) -> EvaluationReport:
    """:func:`evaluate` on a scored Spark frame with ``label`` and ``probability``."""
    frame = scored.select("label", "probability").toPandas()
    return evaluate(
        name,
        cutoff,
        frame["label"].to_numpy(),
        frame["probability"].to_numpy(),
        threshold,
    )


def _calibrate(
    scored: DataFrame, split: Split, pos_weight: float
) -> tuple[Calibration, float]:
    """Calibration and threshold from the validation rows' raw scores."""
    frame = scored.select("label", RAW).toPandas()
    labels = frame["label"].to_numpy()
    calibration = Calibration.fit(labels, frame[RAW].to_numpy(), pos_weight)
    fit_rows, fit_positives = split.rows(split.fit_cutoffs)
    threshold = choose_threshold(
        labels,
        calibration.apply(frame[RAW].to_numpy()),
        fallback_share=fit_positives / fit_rows,
    )
    return calibration, threshold


def _best_iteration(spark_model: SparkXGBClassifierModel) -> int | None:
    try:
        return int(spark_model.get_booster().best_iteration)
    except AttributeError:  # no early stopping happened
        return None


def _baseline(
    training: DataFrame,
    evaluation_rows: DataFrame,
    names: list[str],
    split: Split,
    pos_weight: float,
) -> EvaluationReport:
    """Spark ML logistic regression on the same fit rows, threshold and weights."""
    assembler = VectorAssembler(inputCols=names, outputCol="baseline_features")
    fit = assembler.transform(training.where(~F.col(VALIDATION)).na.fill(0.0))
    model = LogisticRegression(
        featuresCol="baseline_features",
        labelCol="label",
        weightCol=WEIGHT,
        **BASELINE_PARAMS,
    ).fit(fit)

    def raw(frame: DataFrame) -> DataFrame:
        out = model.transform(assembler.transform(frame.na.fill(0.0)))
        return out.withColumn(RAW, vector_to_array("probability")[1])

    calibration, threshold = _calibrate(
        raw(training.where(VALIDATION)), split, pos_weight
    )
    scored = raw(evaluation_rows).withColumn(
        "probability", calibration.column(F.col(RAW))
    )
    return rate(BASELINE_NAME, split.evaluation_cutoff, scored, threshold)


def _assembled(frame: DataFrame, names: list[str]) -> DataFrame:
    """``frame`` with the model inputs in one vector column; nulls become NaN.

    xgboost.spark also takes a list of columns (``features_col=names``), but
    then fails with ``KeyError: 'values'`` on a partition that holds only
    training or only validation rows (``create_dmatrix_from_partitions`` in
    xgboost 3.2 looks for the vector column when the list's rows are empty).
    """
    if VECTOR in frame.columns:
        return frame
    return VectorAssembler(
        inputCols=names, outputCol=VECTOR, handleInvalid="keep"
    ).transform(frame)


def raw_scores(
    spark_model: SparkXGBClassifierModel, frame: DataFrame, names: list[str]
) -> DataFrame:
    """``frame`` with XGBoost's uncalibrated churn score in ``raw_score``."""
    scored = spark_model.transform(_assembled(frame, names))
    return scored.withColumn(RAW, vector_to_array("probability")[1])


def probabilities(
    spark_model: SparkXGBClassifierModel,
    frame: DataFrame,
    names: list[str],
    calibration: Calibration,
) -> DataFrame:
    """``frame`` with a ``probability`` column: P(churn within the horizon)."""
    scored = raw_scores(spark_model, frame, names)
    return scored.withColumn("probability", calibration.column(F.col(RAW)))
