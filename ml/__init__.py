"""The churn model: training with ``xgboost.spark``, evaluation and scoring."""

from ml.scoring import score_active_customers
from ml.training import ChurnModel, HoldoutMetrics, NotTrained, load_champion, train

__all__ = [
    "ChurnModel",
    "HoldoutMetrics",
    "NotTrained",
    "load_champion",
    "score_active_customers",
    "train",
]
