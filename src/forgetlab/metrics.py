"""Continual-learning metrics as pure functions of recorded arrays.

R[t, k]: accuracy on task k after training task t (T x T); R0[k]: accuracy of the untrained network on
task k (recorded by the training loop before task 1). Definitions follow Lopez-Paz & Ranzato (2017,
GEM) for BWT and FWT and Chaudhry et al. (2018, RWalk) for average forgetting.
"""
from __future__ import annotations

import numpy as np


def average_accuracy(R) -> float:
    """Mean accuracy over all tasks after the last one: (1/T) sum_k R[T-1, k]."""
    R = np.asarray(R, dtype=float)
    return float(R[-1].mean())


def average_forgetting(R) -> float:
    """(1/(T-1)) sum over k < T-1 of (max over t < T-1 of R[t, k]) - R[T-1, k]: the best accuracy a task
    ever had before the end, minus its final accuracy. 0 for a single task."""
    R = np.asarray(R, dtype=float)
    T = len(R)
    if T < 2:
        return 0.0
    return float(np.mean([R[:T - 1, k].max() - R[T - 1, k] for k in range(T - 1)]))


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


def stability_gap(curves, R) -> float:
    """Mean over tasks t >= 1 of the drop of the earlier tasks' accuracy in the first steps of task t:
    (mean over k < t of R[t-1, k]) - min over the recorded steps of curves[t][s] (De Lange et al. 2023).

    ``curves[t]``: accuracy on the earlier tasks (mean over k < t) at each of the first steps of task t,
    an array of any length (the forgetting-curve probe, as ``forgetlab compare`` records it); a task
    without a curve (None or empty, as task 0 always is) is skipped. NaN when no task has one.
    """
    R = np.asarray(R, dtype=float)
    gaps = []
    for t in range(1, len(R)):
        if t >= len(curves) or curves[t] is None or len(curves[t]) == 0:
            continue
        before = R[t - 1, :t].mean()
        gaps.append(before - float(np.min(curves[t])))
    return float(np.mean(gaps)) if gaps else float("nan")


def summary(R, R0=None, curves=None) -> dict[str, float]:
    out = {"avg_acc": average_accuracy(R), "forgetting": average_forgetting(R), "bwt": backward_transfer(R)}
    out["fwt"] = forward_transfer(R, R0) if R0 is not None and len(R0) else float("nan")
    out["stability_gap"] = stability_gap(curves, R) if curves is not None else float("nan")
    return out
