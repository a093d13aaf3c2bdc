"""Continual-learning metrics as pure functions of recorded arrays: the one place each is defined.

R[t, k]: accuracy on task k after training task t (T x T); R0[k]: accuracy of the untrained network on
task k (recorded by the training loop before task 1). BWT and FWT follow Lopez-Paz & Ranzato (2017, GEM).

Forgetting of task k is the best accuracy on k at any evaluation after k was learned (rows k..T-2) minus
its final accuracy, as Mammoth (`utils/metrics.py`) and Avalanche (`forgetting` metrics) compute it.
Chaudhry et al. (2018) take the maximum over every earlier row (0..T-2); the two coincide in class-
incremental learning, where a task is at zero before it is trained, but not where forward transfer
lifts a task before it is learned.

min-ACC and WC-ACC are De Lange, van de Ven & Tuytelaars (2023, "Continual evaluation for lifelong
learning: identifying the stability gap", ICLR), computed from accuracies read during training
(forgetlab compare reads them with the forgetting-curve probe).
"""

from __future__ import annotations

import numpy as np


def average_accuracy(R) -> float:
    """Mean accuracy over all tasks after the last one: (1/T) sum_k R[T-1, k]."""
    R = np.asarray(R, dtype=float)
    return float(R[-1].mean())


def task_forgetting(R, k: int) -> float:
    """max over k <= t <= T-2 of R[t, k], minus R[T-1, k]; NaN for the last task (never followed)."""
    R = np.asarray(R, dtype=float)
    T = len(R)
    if k >= T - 1:
        return float("nan")
    return float(R[k : T - 1, k].max() - R[T - 1, k])


def average_forgetting(R) -> float:
    """(1/(T-1)) sum over k < T-1 of task_forgetting(R, k). NaN for a single task (nothing to forget)."""
    T = len(R)
    if T < 2:
        return float("nan")
    return float(np.mean([task_forgetting(R, k) for k in range(T - 1)]))


def backward_transfer(R) -> float:
    """BWT = (1/(T-1)) sum over k < T-1 of R[T-1, k] - R[k, k]; negative when learning later tasks hurts."""
    R = np.asarray(R, dtype=float)
    T = len(R)
    if T < 2:
        return 0.0
    return float(np.mean([R[T - 1, k] - R[k, k] for k in range(T - 1)]))


def forward_transfer(R, R0) -> float:
    """FWT = (1/(T-1)) sum over k >= 1 of R[k-1, k] - R0[k]: accuracy on a task before training on it,
    against the randomly initialised network's."""
    R, R0 = np.asarray(R, dtype=float), np.asarray(R0, dtype=float)
    T = len(R)
    if T < 2:
        return 0.0
    return float(np.mean([R[k - 1, k] - R0[k] for k in range(1, T)]))


def min_accuracy(R, during) -> float:
    """De Lange et al.'s min-ACC after the last task: the mean over tasks k < T-1 of the lowest accuracy on k
    at any evaluation after k was learned, ``min(R[k..T-1, k], during[t][:, k] for t > k)``.

    ``during[t]``: [steps, T] accuracies on every task read during the training of task t (any number of
    steps; None or empty for none). NaN for a single task.
    """
    R = np.asarray(R, dtype=float)
    T = len(R)
    if T < 2:
        return float("nan")
    lows = []
    for k in range(T - 1):
        low = R[k:, k].min()
        for t in range(k + 1, T):
            if t < len(during) and during[t] is not None and len(during[t]):
                low = min(low, float(np.min(np.asarray(during[t])[:, k])))
        lows.append(low)
    return float(np.mean(lows))


def worst_case_accuracy(R, during) -> float:
    """De Lange et al.'s WC-ACC after the last task: (1/T) R[T-1, T-1] + (1 - 1/T) min-ACC."""
    R = np.asarray(R, dtype=float)
    T = len(R)
    if T < 2:
        return float(R[-1, -1])
    return float(R[-1, -1] / T + (1 - 1 / T) * min_accuracy(R, during))


def summary(R, R0=None, during=None) -> dict[str, float]:
    out = {"avg_acc": average_accuracy(R), "forgetting": average_forgetting(R), "bwt": backward_transfer(R)}
    out["fwt"] = forward_transfer(R, R0) if R0 is not None and len(R0) else float("nan")
    out["min_acc"] = min_accuracy(R, during) if during is not None else float("nan")
    out["wc_acc"] = worst_case_accuracy(R, during) if during is not None else float("nan")
    return out
