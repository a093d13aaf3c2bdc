"""Metrics on hand-computed accuracy matrices."""

import math

import numpy as np
import pytest

from forgetlab.outputs import metrics

R = [[0.9, 0.1, 0.2], [0.5, 0.8, 0.1], [0.3, 0.6, 0.7]]
R0 = [0.1, 0.05, 0.0]


def test_average_accuracy():
    assert metrics.average_accuracy(R) == pytest.approx((0.3 + 0.6 + 0.7) / 3)


def test_forgetting_uses_the_best_earlier_accuracy():
    # task 0: best 0.9, final 0.3 -> 0.6; task 1: best 0.8, final 0.6 -> 0.2
    assert metrics.average_forgetting(R) == pytest.approx(0.4)


def test_forgetting_counts_only_evaluations_after_the_task_was_learned():
    """Forward transfer lifts task 1 to 0.9 before it is trained: Chaudhry et al.'s maximum over every
    earlier row would count it (0.9 - 0.4); after it was learned its best is 0.5 (Mammoth, Avalanche)."""
    Rf = [[0.8, 0.9, 0.1], [0.6, 0.5, 0.2], [0.4, 0.4, 0.9]]
    assert metrics.task_forgetting(Rf, 1) == pytest.approx(0.1)
    assert metrics.task_forgetting(Rf, 0) == pytest.approx(0.4)
    assert math.isnan(metrics.task_forgetting(Rf, 2))
    assert metrics.average_forgetting(Rf) == pytest.approx(0.25)
    slow = np.mean([max(Rf[t][k] for t in range(k, 2)) - Rf[2][k] for k in range(2)])
    assert metrics.average_forgetting(Rf) == pytest.approx(slow)


def test_backward_transfer():
    assert metrics.backward_transfer(R) == pytest.approx(((0.3 - 0.9) + (0.6 - 0.8)) / 2)


def test_forward_transfer_against_untrained_network():
    assert metrics.forward_transfer(R, R0) == pytest.approx(((0.1 - 0.05) + (0.1 - 0.0)) / 2)


def test_min_acc_and_wc_acc_by_hand():
    """De Lange et al. 2023: min-ACC averages over tasks k < T-1 the lowest accuracy on k at any evaluation
    after k was learned (task ends and readings during later tasks); WC-ACC = R[T-1, T-1]/T + (1 - 1/T) min-ACC."""
    nan = float("nan")
    during = [
        None,
        np.array([[0.85, nan, nan], [0.4, nan, nan], [0.6, nan, nan]]),  # task 1: readings on task 0
        np.array([[0.45, 0.7, nan], [0.5, 0.55, nan]]),
    ]  # task 2: readings on tasks 0, 1
    # task 0: min(0.9, 0.5, 0.3, 0.85, 0.4, 0.6, 0.45, 0.5) = 0.3; task 1: min(0.8, 0.6, 0.7, 0.55) = 0.55
    assert metrics.min_accuracy(R, during) == pytest.approx((0.3 + 0.55) / 2)
    assert metrics.worst_case_accuracy(R, during) == pytest.approx(0.7 / 3 + 2 / 3 * 0.425)
    # without readings during training, only the task ends: task 0 -> 0.3, task 1 -> 0.6
    assert metrics.min_accuracy(R, [None, None, None]) == pytest.approx(0.45)
    assert math.isnan(metrics.min_accuracy([[0.7]], [None]))


def test_single_task_and_perfect_memory():
    assert math.isnan(metrics.average_forgetting([[0.7]]))
    assert metrics.backward_transfer([[0.7]]) == 0.0
    perfect = np.triu(np.ones((4, 4))).T  # every task stays at 1 once learned, 0 before
    assert metrics.average_forgetting(perfect) == 0.0
    assert metrics.backward_transfer(perfect) == 0.0
    s = metrics.summary(perfect, [0.1] * 4)
    assert s["avg_acc"] == 1.0 and s["fwt"] == pytest.approx(-0.1) and math.isnan(s["min_acc"])


def test_a_members_metrics_come_from_metrics_summary():
    from forgetlab.outputs.results import MemberResult

    m = MemberResult(0, {}, acc_matrix=R, acc_init=R0)
    s = m.metrics()
    assert s["forgetting"] == metrics.average_forgetting(R) and s["fwt"] == metrics.forward_transfer(R, R0)
