"""Honest figures for one scored cutoff, with the churners behind every one of them.

The same function rates XGBoost, the logistic-regression baseline and the
champion being defended, so their figures compare like for like.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
)

__all__ = [
    "TOP_SHARE",
    "EvaluationReport",
    "ReliabilityBin",
    "choose_threshold",
    "evaluate",
    "format_reports",
]

# The share of customers a retention team can call: the top 10% of scores.
TOP_SHARE = 0.10
RELIABILITY_BINS = 10


@dataclass(frozen=True)
class ReliabilityBin:
    """One tenth of the customers, by score: mean predicted against observed."""

    rows: int
    positives: int
    min_predicted: float
    max_predicted: float
    mean_predicted: float
    observed_rate: float


@dataclass
class EvaluationReport:
    """Every figure of one model on one cutoff, with the counts behind them."""

    model: str
    cutoff_date: str
    rows: int
    positives: int
    base_rate: float
    roc_auc: float | None
    pr_auc: float | None
    threshold: float
    flagged: int
    true_positives: int
    precision: float
    recall: float
    f1: float
    top_rows: int
    top_positives: int
    top_lift: float | None
    top_recall: float | None
    brier: float
    reliability: list[ReliabilityBin] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, object]) -> EvaluationReport:
        record = dict(record)
        bins = [ReliabilityBin(**item) for item in record.pop("reliability", [])]
        return cls(**record, reliability=bins)

    def metrics(self) -> dict[str, float]:
        """The scalar figures, for MLflow; ``None`` ones are left out."""
        names = (
            "rows", "positives", "base_rate", "roc_auc", "pr_auc", "threshold",
            "flagged", "true_positives", "precision", "recall", "f1", "top_rows",
            "top_positives", "top_lift", "top_recall", "brier",
        )  # fmt: skip
        values = {name: getattr(self, name) for name in names}
        return {name: float(v) for name, v in values.items() if v is not None}


def evaluate(
    model: str,
    cutoff_date: str,
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
) -> EvaluationReport:
    """Rate ``probabilities`` against ``labels`` (1 = churned in the horizon).

    Customers at or above ``threshold`` are flagged. ``top_*`` are about the
    ``TOP_SHARE`` of customers with the highest scores (ties broken by row
    order), ``top_lift`` their churn rate over the base rate.
    """
    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    if labels.shape != probabilities.shape:
        raise ValueError(
            f"labels and probabilities differ in length: {labels.shape} "
            f"against {probabilities.shape}"
        )
    rows = len(labels)
    positives = int(labels.sum())
    both_classes = 0 < positives < rows
    base_rate = positives / rows if rows else 0.0

    flagged = probabilities >= threshold
    true_positives = int((flagged & (labels == 1)).sum())
    precision = true_positives / flagged.sum() if flagged.sum() else 0.0
    recall = true_positives / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    top_rows = max(1, math.ceil(TOP_SHARE * rows)) if rows else 0
    order = np.argsort(-probabilities, kind="stable")
    top_positives = int(labels[order[:top_rows]].sum())
    top_lift = (top_positives / top_rows) / base_rate if base_rate else None
    top_recall = top_positives / positives if positives else None

    return EvaluationReport(
        model=model,
        cutoff_date=cutoff_date,
        rows=rows,
        positives=positives,
        base_rate=base_rate,
        roc_auc=float(roc_auc_score(labels, probabilities)) if both_classes else None,
        pr_auc=(
            float(average_precision_score(labels, probabilities))
            if both_classes
            else None
        ),
        threshold=float(threshold),
        flagged=int(flagged.sum()),
        true_positives=true_positives,
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        top_rows=top_rows,
        top_positives=top_positives,
        top_lift=top_lift,
        top_recall=top_recall,
        brier=float(np.mean((probabilities - labels) ** 2)) if rows else 0.0,
        reliability=_reliability(labels, probabilities[order], order),
    )


def _reliability(
    labels: np.ndarray, sorted_probabilities: np.ndarray, order: np.ndarray
) -> list[ReliabilityBin]:
    """Ten groups of (nearly) equal size, highest scores first.

    Equal-count groups rather than fixed-width ones: most customers score
    under 10%, and fixed bins would put nearly all of them in one row.
    """
    bins = []
    for chunk in np.array_split(np.arange(len(order)), RELIABILITY_BINS):
        if not len(chunk):
            continue
        predicted = sorted_probabilities[chunk]
        observed = labels[order[chunk]]
        bins.append(
            ReliabilityBin(
                rows=int(len(chunk)),
                positives=int(observed.sum()),
                min_predicted=float(predicted.min()),
                max_predicted=float(predicted.max()),
                mean_predicted=float(predicted.mean()),
                observed_rate=float(observed.mean()),
            )
        )
    return bins


def choose_threshold(
    labels: np.ndarray, probabilities: np.ndarray, fallback_share: float
) -> float:
    """The score from which a customer is flagged, chosen on validation rows.

    The threshold with the best churn-class F1 on ``labels``; without any
    churner among them, the score that flags the top ``fallback_share``.
    """
    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    if not len(labels):
        raise ValueError("no validation rows to choose a threshold on")
    if labels.sum() == 0 or labels.sum() == len(labels):
        count = max(1, math.ceil(fallback_share * len(probabilities)))
        return float(np.sort(probabilities)[::-1][count - 1])
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(
            precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0
        )
    # The last precision/recall pair has no threshold.
    return float(thresholds[int(np.argmax(f1[:-1]))])


def format_reports(reports: list[EvaluationReport]) -> str:
    """The reports side by side, every figure next to the churners behind it."""
    if not reports:
        return "no evaluation"
    first = reports[0]
    width = max(22, *(len(report.model) + 2 for report in reports))
    lines = [
        f"evaluation cutoff {first.cutoff_date}: {first.rows:,} customers, "
        f"{first.positives} churned in the horizon (base rate "
        f"{first.base_rate:.3f})",
        f"{'metric':<26}" + "".join(f"{r.model:>{width}}" for r in reports),
    ]

    def row(label: str, cell: object) -> None:
        lines.append(f"{label:<26}" + "".join(f"{cell(r):>{width}}" for r in reports))

    churners = f"{first.positives} churners"
    row("ROC-AUC", lambda r: f"{_num(r.roc_auc)} ({churners})")
    row("PR-AUC", lambda r: f"{_num(r.pr_auc)} ({churners})")
    row("threshold", lambda r: f"{r.threshold:.3f}")
    row(
        "precision at threshold",
        lambda r: f"{r.precision:.3f} ({r.true_positives}/{r.flagged})",
    )
    row(
        "recall at threshold",
        lambda r: f"{r.recall:.3f} ({r.true_positives}/{r.positives})",
    )
    row("F1 at threshold", lambda r: f"{r.f1:.3f} ({r.true_positives} caught)")
    row(
        f"top {TOP_SHARE:.0%} lift",
        lambda r: f"{_num(r.top_lift, 2)} ({r.top_positives}/{r.top_rows})",
    )
    row(
        f"top {TOP_SHARE:.0%} recall",
        lambda r: f"{_num(r.top_recall)} ({r.top_positives}/{r.positives})",
    )
    row("Brier score", lambda r: f"{r.brier:.4f} ({churners})")
    for report in reports:
        lines.append(
            f"reliability, {report.model} (tenths by score: mean predicted / "
            "observed, churners/customers):"
        )
        lines.append(
            "  "
            + "; ".join(
                f"{b.mean_predicted:.3f}/{b.observed_rate:.3f} {b.positives}/{b.rows}"
                for b in report.reliability
            )
        )
    return "\n".join(lines)


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
