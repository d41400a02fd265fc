"""Challenger against champion: train on new data, promote only what is as good.

A trained challenger is logged to MLflow and registered. The champion is then
rated on the challenger's evaluation cutoff, the latest labelled one, which
it has never learned from; the challenger becomes the champion only when its
PR-AUC there is at least the champion's. ``force`` promotes it anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ml._evaluation import EvaluationReport
from ml._features import LABEL, Marts, model_input, source_column
from ml._registry import Registry, RegistryError
from ml._training import (
    ChurnModel,
    NotTrained,
    TrainedChallenger,
    probabilities,
    rate,
    train_challenger,
)
from sparkify.config import Workdir

__all__ = ["TrainOutcome", "load_champion", "train"]

log = logging.getLogger(__name__)

NO_CHAMPION = "there is no champion yet"


@dataclass
class TrainOutcome:
    """What ``train`` did, and the model to score with afterwards."""

    challenger: ChurnModel | None
    champion: ChurnModel | None
    promoted: bool
    decision: str
    tracking_uri: str
    reports: list[EvaluationReport] = field(default_factory=list)
    not_trained: str = ""


def load_champion(
    workdir: Workdir, tracking_uri: str | None = None, *, load: bool = True
) -> ChurnModel | None:
    """The champion in the MLflow registry, or ``None`` before the first one."""
    return Registry.at(workdir, tracking_uri).champion(load=load)


def train(
    spark: SparkSession,
    workdir: Workdir,
    *,
    marts: Marts | None = None,
    min_churners: int = 5,
    force: bool = False,
    tracking_uri: str | None = None,
    num_workers: int | None = None,
    seed: int = 42,
    params: dict[str, Any] | None = None,
) -> TrainOutcome:
    """Train a challenger, log it, and promote it if it is at least as good."""
    marts = marts or Marts()
    registry = Registry.at(workdir, tracking_uri)
    try:
        previous, unreadable = registry.champion(), ""
    except RegistryError as exc:
        # A champion that cannot be loaded cannot score either: replace it.
        previous, unreadable = None, str(exc)
        log.warning("%s", exc)
    trained = train_challenger(
        spark,
        marts=marts,
        min_churners=min_churners,
        num_workers=num_workers,
        seed=seed,
        params=params,
    )
    if isinstance(trained, NotTrained):
        decision = f"No new model was trained: {trained.reason}." + (
            f" The champion {previous.version} stays and scores the customers."
            if previous
            else " No champion exists yet, so customers are not scored."
        )
        log.warning("%s", decision)
        return TrainOutcome(
            None, previous, False, decision, registry.uri, not_trained=trained.reason
        )

    challenger = registry.log_challenger(trained.model)
    reports = [challenger.evaluation]
    if challenger.baseline:
        reports.append(challenger.baseline)
    defended, why_not = _defend(spark, marts, previous, trained)
    why_not = unreadable or why_not
    if defended:
        reports.append(defended)
    promoted, decision = _decide(challenger, previous, defended, why_not, force)
    registry.record_decision(challenger, decision, promoted)
    if promoted:
        registry.promote(challenger)
    log.info("promotion decision: %s", decision)
    return TrainOutcome(
        challenger,
        challenger if promoted else previous,
        promoted,
        decision,
        registry.uri,
        reports,
    )


def _defend(
    spark: SparkSession,
    marts: Marts,
    champion: ChurnModel | None,
    trained: TrainedChallenger,
) -> tuple[EvaluationReport | None, str]:
    """The champion's figures on the challenger's evaluation cutoff, or why not."""
    if champion is None:
        return None, NO_CHAMPION
    cutoff = trained.split.evaluation_cutoff
    if not champion.can_be_evaluated_on(cutoff):
        return None, (
            f"the champion {champion.version} learned from labels up to "
            f"{champion.validation_cutoff} + {champion.horizon_days} days, after "
            f"the evaluation cutoff {cutoff}, so it cannot be rated there fairly"
        )
    features = spark.table(marts.features)
    missing = sorted(
        {source_column(n) for n in champion.features} - set(features.columns)
    )
    if missing:
        return None, (
            f"the champion {champion.version} needs features the mart no longer "
            f"has ({', '.join(missing)})"
        )
    rows = model_input(
        features.where(F.col("cutoff_date") == F.lit(cutoff).cast("date")).join(
            spark.table(marts.labels).select("customer_cutoff_id", LABEL),
            "customer_cutoff_id",
        ),
        champion.features,
    )
    scored = probabilities(
        champion.spark_model, rows, champion.features, champion.calibration
    )
    return rate(f"champion {champion.version}", cutoff, scored, champion.threshold), ""


def _decide(
    challenger: ChurnModel,
    champion: ChurnModel | None,
    defended: EvaluationReport | None,
    why_not: str,
    force: bool,
) -> tuple[bool, str]:
    ours = challenger.evaluation
    said = (
        f"challenger {challenger.version} PR-AUC {_pr(ours.pr_auc)} on "
        f"{ours.cutoff_date} ({ours.positives} churners of {ours.rows:,})"
    )
    if champion is None:
        if why_not != NO_CHAMPION:
            return True, f"{said}; promoted: {why_not}"
        return True, f"{said}; promoted: it is the first model"
    if defended is None:
        if force:
            return True, f"{said}; promoted because --force was given ({why_not})"
        if "no longer has" in why_not:
            return True, f"{said}; promoted: {why_not}, so it cannot score any more"
        return False, (
            f"{said}; not promoted: {why_not}. The champion {champion.version} "
            "stays; `sparkify train --force` promotes the challenger anyway"
        )
    said += (
        f", champion {champion.version} PR-AUC {_pr(defended.pr_auc)} on the "
        "same cutoff"
    )
    at_least_as_good = (ours.pr_auc or 0.0) >= (defended.pr_auc or 0.0)
    if at_least_as_good:
        needless = " (--force was not needed)" if force else ""
        return True, f"{said}; promoted: at least as good as the champion{needless}"
    if force:
        return True, (
            f"{said}; promoted because --force was given, although it is worse "
            "than the champion"
        )
    return False, (
        f"{said}; not promoted: worse than the champion, which stays "
        "(`sparkify train --force` promotes it anyway)"
    )


def _pr(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
