"""Metrics on hand-computed accuracy matrices."""
import math

import numpy as np
import pytest

from forgetlab import metrics

R = [[0.9, 0.1, 0.2],
     [0.5, 0.8, 0.1],
     [0.3, 0.6, 0.7]]
R0 = [0.1, 0.05, 0.0]


def test_average_accuracy():
    assert metrics.average_accuracy(R) == pytest.approx((0.3 + 0.6 + 0.7) / 3)


def test_forgetting_uses_the_best_earlier_accuracy():
    # task 0: best 0.9, final 0.3 -> 0.6; task 1: best 0.8, final 0.6 -> 0.2
    assert metrics.average_forgetting(R) == pytest.approx(0.4)


def test_backward_transfer():
    assert metrics.backward_transfer(R) == pytest.approx(((0.3 - 0.9) + (0.6 - 0.8)) / 2)


def test_forward_transfer_against_untrained_network():
    assert metrics.forward_transfer(R, R0) == pytest.approx(((0.1 - 0.05) + (0.1 - 0.0)) / 2)


def test_stability_gap_from_curves():
    curves = [None, np.array([0.85, 0.4, 0.6]), np.array([0.6, 0.55])]
    # task 1: before = R[0,0] = 0.9, min 0.4 -> 0.5; task 2: before = mean(0.5, 0.8) = 0.65, min 0.55 -> 0.1
    assert metrics.stability_gap(curves, R) == pytest.approx(0.3)
    assert math.isnan(metrics.stability_gap([None], R))


def test_single_task_and_perfect_memory():
    assert metrics.average_forgetting([[0.7]]) == 0.0
    assert metrics.backward_transfer([[0.7]]) == 0.0
    perfect = np.triu(np.ones((4, 4))).T  # every task stays at 1 once learned, 0 before
    assert metrics.average_forgetting(perfect) == 0.0
    assert metrics.backward_transfer(perfect) == 0.0
    s = metrics.summary(perfect, [0.1] * 4)
    assert s["avg_acc"] == 1.0 and s["fwt"] == pytest.approx(-0.1) and math.isnan(s["stability_gap"])
