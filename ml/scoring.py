"""Score every active customer at the scoring cutoff with the champion model."""

from __future__ import annotations

import logging
import time

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ml.training import (
    CUTOFFS_TABLE,
    FEATURES_TABLE,
    ChurnModel,
    model_input,
    probabilities,
)
from sparkify.serving import risk_band

__all__ = ["score_active_customers"]

log = logging.getLogger(__name__)


def score_active_customers(spark: SparkSession, model: ChurnModel) -> pd.DataFrame:
    """One row per customer not cancelled by the scoring cutoff.

    Columns: ``customer_id``, ``churn_probability``, ``risk_band``,
    ``model_version``, ``cutoff_date``.
    """
    started = time.monotonic()
    scoring_cutoff = (
        spark.table(CUTOFFS_TABLE).where("is_scoring_cutoff").select("cutoff_date")
    )
    features = spark.table(FEATURES_TABLE).join(scoring_cutoff, "cutoff_date")
    needed = {name.partition("=")[0] for name in model.features}
    missing = sorted(needed - set(features.columns))
    if missing:
        raise ValueError(
            f"model {model.version} needs features the mart no longer has: "
            f"{missing}; retrain with `sparkify run`"
        )
    scored = probabilities(model.load(), model_input(features, model.features))
    frame = scored.select(
        "customer_id",
        F.col("probability").alias("churn_probability"),
        F.col("cutoff_date").cast("string").alias("cutoff_date"),
    ).toPandas()
    frame["churn_probability"] = frame["churn_probability"].astype(float).clip(0, 1)
    frame["risk_band"] = frame["churn_probability"].map(risk_band)
    frame["model_version"] = model.version
    log.info(
        "scored %d active customers with model %s in %.1fs",
        len(frame),
        model.version,
        time.monotonic() - started,
    )
    return frame
