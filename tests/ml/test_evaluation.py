"""The evaluation report: scikit-learn's figures, the top decile, calibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ml import EvaluationReport, evaluate, format_reports
from ml._evaluation import choose_threshold

# 20 customers, 4 churners; scores fall with the index.
LABELS = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
SCORES = np.linspace(0.95, 0.0, len(LABELS))


def test_evaluate_gives_roc_and_pr_auc_of_scikit_learn():
    report = evaluate("m", "2018-11-12", LABELS, SCORES, threshold=0.5)

    assert report.roc_auc == pytest.approx(roc_auc_score(LABELS, SCORES))
    assert report.pr_auc == pytest.approx(average_precision_score(LABELS, SCORES))
    assert (report.rows, report.positives, report.base_rate) == (20, 4, 0.2)


def test_evaluate_counts_churners_flagged_at_the_threshold():
    # Scores >= 0.5 are the first 10 rows: churners at 0, 2 and 5.
    report = evaluate("m", "2018-11-12", LABELS, SCORES, threshold=0.5)

    assert (report.flagged, report.true_positives) == (10, 3)
    assert report.precision == pytest.approx(0.3)
    assert report.recall == pytest.approx(0.75)
    assert report.f1 == pytest.approx(2 * 0.3 * 0.75 / 1.05)


def test_top_decile_lift_is_the_churn_rate_of_the_top_tenth_over_the_base_rate():
    report = evaluate("m", "2018-11-12", LABELS, SCORES, threshold=0.5)

    # The top 2 of 20 hold one churner: rate 0.5 against a base rate of 0.2.
    assert (report.top_rows, report.top_positives) == (2, 1)
    assert report.top_lift == pytest.approx(2.5)
    assert report.top_recall == pytest.approx(0.25)


def test_brier_score_and_reliability_table_describe_calibration():
    report = evaluate("m", "2018-11-12", LABELS, SCORES, threshold=0.5)

    assert report.brier == pytest.approx(np.mean((SCORES - LABELS) ** 2))
    assert len(report.reliability) == 10
    assert [b.rows for b in report.reliability] == [2] * 10
    assert sum(b.positives for b in report.reliability) == 4
    top = report.reliability[0]
    assert top.mean_predicted == pytest.approx(SCORES[:2].mean())
    assert top.observed_rate == 0.5


def test_a_cutoff_without_churners_has_no_auc_rather_than_a_made_up_one():
    report = evaluate("m", "2018-11-12", np.zeros(5), np.full(5, 0.1), 0.5)

    assert report.roc_auc is None and report.pr_auc is None
    assert report.top_lift is None and report.positives == 0


def test_report_survives_a_round_trip_through_a_dict():
    report = evaluate("m", "2018-11-12", LABELS, SCORES, threshold=0.5)

    assert EvaluationReport.from_dict(report.to_dict()) == report
    assert "roc_auc" in report.metrics() and "reliability" not in report.metrics()


def test_threshold_is_the_best_f1_on_the_validation_rows():
    labels = np.array([1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.2, 0.1, 0.05])

    assert choose_threshold(labels, scores, fallback_share=0.5) == pytest.approx(0.8)


def test_threshold_without_churners_flags_the_training_churn_share():
    scores = np.array([0.9, 0.8, 0.3, 0.2])

    assert choose_threshold(np.zeros(4), scores, fallback_share=0.25) == 0.9


def test_formatted_report_shows_both_models_and_the_churners_behind_each_figure():
    xgb = evaluate("xgboost", "2018-11-12", LABELS, SCORES, threshold=0.5)
    baseline = evaluate("logistic regression", "2018-11-12", LABELS, SCORES[::-1], 0.5)

    text = format_reports([xgb, baseline])

    assert "20 customers, 4 churned" in text
    assert "xgboost" in text and "logistic regression" in text
    for metric in ("ROC-AUC", "PR-AUC", "top 10% lift", "top 10% recall", "Brier"):
        line = next(line for line in text.splitlines() if line.startswith(metric))
        assert line.count("4 churners") == 2 or "/4)" in line or "/2)" in line
    assert "precision at threshold" in text and "recall at threshold" in text
    assert text.count("reliability, ") == 2
