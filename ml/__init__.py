"""The churn model: training with ``xgboost.spark``, evaluation, MLflow, scoring."""

from ml._evaluation import EvaluationReport, ReliabilityBin, evaluate, format_reports
from ml._explain import (
    Driver,
    describe,
    drivers,
    feature_importance,
    feature_label,
    top_drivers,
)
from ml._features import Marts, feature_columns, model_input
from ml._lifecycle import TrainOutcome, load_champion, train
from ml._registry import Registry, RegistryError, tracking_uri
from ml._rules import DEFAULT_RULES, RULES_ENV, RetentionRules, RulesError, load_rules
from ml._scoring import SCORE_COLUMNS, score_active_customers
from ml._training import (
    Calibration,
    ChurnModel,
    NotTrained,
    plan_split,
    task_slots,
    train_challenger,
    xgboost_workers,
)

__all__ = [
    "DEFAULT_RULES",
    "RULES_ENV",
    "SCORE_COLUMNS",
    "Calibration",
    "ChurnModel",
    "Driver",
    "EvaluationReport",
    "Marts",
    "NotTrained",
    "Registry",
    "RegistryError",
    "ReliabilityBin",
    "RetentionRules",
    "RulesError",
    "TrainOutcome",
    "describe",
    "drivers",
    "evaluate",
    "feature_columns",
    "feature_importance",
    "feature_label",
    "format_reports",
    "load_champion",
    "load_rules",
    "model_input",
    "plan_split",
    "score_active_customers",
    "task_slots",
    "top_drivers",
    "tracking_uri",
    "train",
    "train_challenger",
    "xgboost_workers",
]
