"""Score every active customer at the scoring cutoff, with reasons and a suggestion."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ml._explain import DRIVERS, drivers, top_drivers
from ml._features import Marts, model_input, source_column
from ml._rules import RetentionRules, load_rules
from ml._training import ChurnModel, probabilities
from sparkify.serving import risk_band

__all__ = ["SCORE_COLUMNS", "score_active_customers"]

log = logging.getLogger(__name__)

SCORE_COLUMNS = [
    "customer_id",
    "churn_probability",
    "risk_band",
    "model_version",
    "cutoff_date",
    *(
        column
        for i in range(1, DRIVERS + 1)
        for column in (f"reason_{i}", f"reason_{i}_log_odds")
    ),
    "action",
    "action_rule",
    "scored_at",
]


def score_active_customers(
    spark: SparkSession,
    model: ChurnModel,
    *,
    marts: Marts | None = None,
    rules: RetentionRules | None = None,
    scored_at: str | None = None,
) -> pd.DataFrame:
    """One row per customer not cancelled by the scoring cutoff (``SCORE_COLUMNS``).

    ``reason_1`` to ``reason_3`` say the drivers, strongest first (fewer when
    fewer features raise the risk), ``reason_1_log_odds`` to
    ``reason_3_log_odds`` how much each adds to the score's log-odds;
    ``action`` is the rules' suggestion for
    them, ``action_rule`` the rule that gave it.
    """
    if model.spark_model is None:
        raise ValueError(f"model {model.version} is not loaded; load it to score")
    marts = marts or Marts()
    rules = rules or load_rules()
    scored_at = scored_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    started = time.monotonic()

    scoring_cutoff = (
        spark.table(marts.cutoffs).where("is_scoring_cutoff").select("cutoff_date")
    )
    features = spark.table(marts.features).join(scoring_cutoff, "cutoff_date")
    needed = {source_column(name) for name in model.features}
    missing = sorted(needed - set(features.columns))
    if missing:
        raise ValueError(
            f"model {model.version} needs features the mart no longer has: "
            f"{missing}; train a new one with `sparkify train --force`"
        )
    inputs = model_input(features, model.features).cache()
    scored = (
        probabilities(model.spark_model, inputs, model.features, model.calibration)
        .select("customer_cutoff_id", F.col("probability").alias("churn_probability"))
        .toPandas()
    )
    frame = inputs.toPandas().merge(scored, on="customer_cutoff_id")
    inputs.unpersist()
    raw = (
        features.toPandas()
        .set_index("customer_cutoff_id")
        .loc[frame["customer_cutoff_id"]]
        .reset_index()
    )

    contributions, columns = drivers(
        model.spark_model.get_booster(), frame[model.features], model.best_iteration
    )
    found = top_drivers(contributions, columns, raw)
    for i in range(DRIVERS):
        frame[f"reason_{i + 1}"] = [
            d[i].sentence if len(d) > i else None for d in found
        ]
        frame[f"reason_{i + 1}_log_odds"] = [
            d[i].contribution if len(d) > i else None for d in found
        ]
    suggestions = [
        rules.suggest(d, row)
        for d, row in zip(found, raw.to_dict("records"), strict=True)
    ]
    frame["action_rule"] = [rule for rule, _ in suggestions]
    frame["action"] = [action for _, action in suggestions]
    frame["churn_probability"] = frame["churn_probability"].astype(float).clip(0, 1)
    frame["risk_band"] = frame["churn_probability"].map(risk_band)
    frame["model_version"] = model.version
    frame["cutoff_date"] = frame["cutoff_date"].astype(str)
    frame["scored_at"] = scored_at
    log.info(
        "scored %d active customers with model %s in %.1fs",
        len(frame),
        model.version,
        time.monotonic() - started,
    )
    return frame[SCORE_COLUMNS]
