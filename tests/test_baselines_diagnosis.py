"""The lecture's diagnosis rule on constructed losses (pure)."""

import math

import numpy as np
import pytest

from harness.baselines.diagnosis import BIAS, FINE, OVERFIT, diagnose, trivial_loss

REF = math.log(10)   # 10 balanced classes


@pytest.mark.parametrize("train,val,expected", [
    (2.2, 2.25, BIAS),          # barely below the trivial predictor
    (1.5, 3.0, BIAS),           # training loss high decides first
    (0.01, 0.9, OVERFIT),       # fits training, not validation
    (0.3, 0.8, OVERFIT),
    (0.05, 0.12, FINE),
    (0.3, 0.5, FINE),           # a gap below 15% of the reference
])
def test_diagnosis(train, val, expected):
    assert diagnose(train, val, REF).startswith(expected)


def test_high_and_low_are_relative_to_the_reference():
    assert diagnose(0.4, 0.45, 0.5).startswith(BIAS)       # 80% of a small reference
    assert diagnose(0.4, 0.45, 10.0).startswith(FINE)      # 4% of a large one


def test_not_finite_is_an_optimization_failure():
    assert diagnose(float("nan"), 1.0, REF).startswith(BIAS)


def test_trivial_loss():
    assert trivial_loss(np.arange(10).repeat(5), "multiclass", 10) == pytest.approx(REF)
    assert trivial_loss(np.array([1.0, 3.0]), "regression") == pytest.approx(1.0)
