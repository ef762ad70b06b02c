"""The lecture's diagnosis rule on constructed losses (pure)."""

import math

import numpy as np
import pytest

from harness.baselines.diagnosis import (BIAS, FINE, OVERFIT, THRESHOLDS, Thresholds, diagnose,
                                         trivial_loss)

REF = math.log(10)   # 10 balanced classes


@pytest.mark.parametrize("train,val,expected", [
    (2.2, 2.25, BIAS),          # barely below the trivial predictor
    (1.5, 3.0, BIAS),           # training loss high decides first
    (0.6, 0.62, BIAS),          # 26% of the reference: not fitted (above 20%)
    (0.01, 0.9, OVERFIT),       # fits training, not validation
    (0.3, 0.8, OVERFIT),        # a gap above 10% of the reference
    (0.002, 0.12, OVERFIT),     # a 256x256 MLP on digits: 60x the training loss
    (0.05, 0.09, FINE),         # validation below twice the training loss
    (0.3, 0.5, FINE),           # a gap below the training loss and below 10% of the reference
    (0.001, 0.03, FINE),        # 30x, but the gap is below the 2% floor: noise
])
def test_diagnosis(train, val, expected):
    assert diagnose(train, val, REF).startswith(expected)


def test_gap_limit_is_the_training_loss_between_a_floor_and_a_cap():
    t = Thresholds()
    assert t.gap_limit(0.1, REF) == pytest.approx(0.1)              # the training loss itself
    assert t.gap_limit(0.001, REF) == pytest.approx(0.02 * REF)     # the floor
    assert t.gap_limit(0.4, REF) == pytest.approx(0.1 * REF)        # the cap
    assert t.gap_is_large(0.1, 0.21, REF) and not t.gap_is_large(0.1, 0.19, REF)
    assert t.gap_is_large(0.1, float("nan"), REF) and t.train_is_high(float("nan"), REF)


def test_the_line_shows_the_numbers_it_was_decided_on():
    line = diagnose(0.002, 0.12, REF)
    assert "gap 0.118" in line and "large above 0.0461" in line and "high above 20%" in line
    strict = Thresholds(high_train=0.0005)
    assert diagnose(0.002, 0.12, REF, thresholds=strict).startswith(BIAS)
    assert THRESHOLDS == Thresholds()


def test_high_and_low_are_relative_to_the_reference():
    assert diagnose(0.4, 0.45, 0.5).startswith(BIAS)       # 80% of a small reference
    assert diagnose(0.4, 0.45, 10.0).startswith(FINE)      # 4% of a large one


def test_not_finite_is_an_optimization_failure():
    assert diagnose(float("nan"), 1.0, REF).startswith(BIAS)


def test_trivial_loss():
    assert trivial_loss(np.arange(10).repeat(5), "multiclass", 10) == pytest.approx(REF)
    assert trivial_loss(np.array([1.0, 3.0]), "regression") == pytest.approx(1.0)
