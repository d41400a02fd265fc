"""The parts of training that need no Spark: the time split and calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml import Calibration, NotTrained, plan_split

HORIZON = 14
# Weekly cutoffs: (rows, churners).
COUNTS = {
    "2018-10-15": (300, 12),
    "2018-10-22": (310, 14),
    "2018-10-29": (320, 15),
    "2018-11-05": (330, 16),
    "2018-11-12": (340, 17),
}


def test_split_evaluates_on_the_latest_cutoff_and_learns_only_what_was_known():
    split = plan_split(COUNTS, HORIZON, min_churners=5)

    assert split.evaluation_cutoff == "2018-11-12"
    # 2018-11-05's horizon ends after 2018-11-12: not known on that day.
    assert split.validation_cutoff == "2018-10-29"
    assert split.fit_cutoffs == ["2018-10-15", "2018-10-22"]


def test_split_says_how_many_churners_were_missing():
    result = plan_split(COUNTS, HORIZON, min_churners=50)

    assert isinstance(result, NotTrained)
    assert "only 41 churner(s) in the training cutoffs" in result.reason
    assert "(at least 50 needed)" in result.reason


def test_logs_without_cancellations_are_told_so_before_anything_else():
    no_churners = {cutoff: (rows, 0) for cutoff, (rows, _) in COUNTS.items()}

    result = plan_split(dict(list(no_churners.items())[-1:]), HORIZON, 5)

    assert isinstance(result, NotTrained)
    assert result.reason.startswith(
        "only 0 churner(s) in the labelled cutoffs 2018-11-12 to 2018-11-12 "
        "(at least 5 needed)"
    )


def test_split_needs_two_known_cutoffs_before_the_evaluation_cutoff():
    result = plan_split(dict(list(COUNTS.items())[-3:]), HORIZON, min_churners=1)

    assert isinstance(result, NotTrained)
    assert "only 1 labelled cutoff(s)" in result.reason


def test_platt_scaling_turns_overconfident_scores_into_probabilities():
    rng = np.random.default_rng(1)
    truth = rng.uniform(0.01, 0.5, 20_000)
    labels = (rng.uniform(size=truth.size) < truth).astype(int)
    # Scores on a stretched log-odds scale, as a weighted, overfitted model gives.
    raw = 1 / (1 + np.exp(-(3 * np.log(truth / (1 - truth)) + 2)))

    calibration = Calibration.fit(labels, raw, pos_weight=9.0)

    assert calibration.method.startswith("Platt")
    assert calibration.slope == pytest.approx(1 / 3, abs=0.03)
    calibrated = calibration.apply(raw)
    assert np.mean((calibrated - labels) ** 2) < np.mean((raw - labels) ** 2)
    assert np.all(np.diff(calibrated[np.argsort(raw)]) >= 0)


def test_without_churners_to_fit_on_only_the_class_weight_is_divided_out():
    calibration = Calibration.fit(np.zeros(50), np.linspace(0.1, 0.9, 50), 9.0)

    assert calibration.method == "class weight"
    # Odds of 1 at a weight of 9 are odds of 1/9: a probability of 0.1.
    assert calibration.apply(np.array([0.5]))[0] == pytest.approx(0.1)
    assert calibration.intercept == pytest.approx(-math.log(9))
