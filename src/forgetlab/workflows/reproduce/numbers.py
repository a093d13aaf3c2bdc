"""What is computed: the numbers the report states, derived from saved results and probe arrays."""

from __future__ import annotations

import math

import numpy as np

from forgetlab import diagnostics as probes_mod
from forgetlab.diagnostics import figures as fig
from forgetlab.outputs.formatting import mean_sd, point_label
from forgetlab.outputs.results import Results
from forgetlab.outputs.stats import RefTest, Shift, ar1, finite, pooled, reference_test, window_test


def group_label(res: Results, group: tuple) -> str:
    """The values that set this member group apart (the preset's grid), e.g. 'l1=1'; '' without a grid."""
    varied = {k for k, _ in res.config.grid}
    return point_label((k, v) for k, v in group if k in varied)


def groups(res: Results) -> list[tuple[str, list[int]]]:
    """(label, member indices) per configuration, in member order."""
    out: dict[str, list[int]] = {}
    for i, m in enumerate(res.members):
        out.setdefault(group_label(res, m.group), []).append(i)
    return list(out.items())


def last_epoch(res: Results, index: list[int], task: int, metric: str) -> list[float]:
    """Per member of ``index``: ``metric`` at the last epoch of ``task``."""
    key = "sparsity_all" if metric == "sparsity" else metric
    return [getattr(res.members[i].tasks[task], key)[-1] for i in index]


def flag_floor(metric: str, study: float) -> float:
    """The difference from the study's value that rounding or measurement can explain: 10% of it in
    loss, 0.005 in accuracy and sparsity."""
    return 0.1 * abs(study) if "loss" in metric else 0.005


def flag_test(metric: str, ours: list[float], study: float) -> RefTest:
    """The ⚑ test of the study's value (one run of its own code) against our seeds' values: outside the 95%
    prediction interval of one new run of ours, mean ± t(0.975, n-1)·s·√(1 + 1/n), and beyond
    ``flag_floor``; not tested below 2 finite seeds (``stats.reference_test``)."""
    return reference_test(ours, study, runs=1, floor=flag_floor(metric, study))


def differs(metric: str, ours: list[float], study: float) -> bool:
    """The study's value is flagged (``flag_test``)."""
    return flag_test(metric, ours, study).flagged is True


ONSET_WINDOW = 1  # batches either side of the onset batch: the window is onset-1..onset+1
ONSET_FIT = 50  # the trend runs through the task's first 50 batches


def _onset_points(n: int, onset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1..n of a task; the points of the test (the first 50 batches, and the window if later); the
    window onset-1..onset+1 among them."""
    s = int(onset)
    steps = np.arange(1, n + 1)
    use = steps <= max(ONSET_FIT, s + ONSET_WINDOW)
    return steps, use, np.abs(steps[use] - s) <= ONSET_WINDOW


def update_shifts(us: list[np.ndarray], onsets: list[float]) -> tuple[list[Shift], list[float]]:
    """Per seed (``us[i]``: its log10 relative update per batch of the task; ``onsets[i]`` its onset batch):
    the shift of the update over batches onset-1..onset+1 from a quadratic trend through the task's first
    50 batches (``stats.window_test``), and the ratio of the at-onset update to the median after batch 50.

    Consecutive updates are correlated (momentum): the AR(1) coefficient is estimated once from all seeds'
    early residuals (the mean of their ``stats.ar1``: three seeds' 140 points give a steadier estimate
    than one seed's 47) and used in each seed's fit."""
    points = [_onset_points(len(u), on) for u, on in zip(us, onsets, strict=True)]
    rhos = [ar1(steps[use], u[use], win) for u, (steps, use, win) in zip(us, points, strict=True)]
    rho = float(np.mean(finite(rhos))) if finite(rhos) else math.nan
    shifts, ratios = [], []
    for u, (steps, use, win) in zip(us, points, strict=True):
        shifts.append(window_test(steps[use], u[use], win, rho=rho))
        ratios.append(10 ** (u[use][win].mean() - np.median(u[steps > ONSET_FIT])))
    return shifts, ratios


def onset_table(pd: probes_mod.ProbeData, index: list[int], fraction: float = 0.5) -> list[dict]:
    """Per later task: the batch at which old-task accuracy first falls below ``fraction`` of its
    task-boundary value, and whether the relative weight updates there stand out.

    Updates are the mean over weight tensors of log10(||dW||/||W||). Over the first 50 batches of the
    task they decay smoothly, so the at-onset value (batches onset-1..onset+1) is tested against a
    quadratic trend through those batches (``update_shifts``), per seed, and the seeds' shifts are pooled
    (``stats.pooled``): ``shift``, the pooled shift in log10 units with its 95% interval, and ``t``, the
    pooled shift over its standard error. The ratio to the median of the rest of the task (after batch 50)
    is reported too.
    """
    sub = pd.select(index)
    onsets = fig.onset_batches(sub, fraction)
    names = pd.meta.get("update_names", [])
    weights = [j for j, n in enumerate(names) if fig.param_layer(n)[1] == "weight"]
    rows = []
    for t, on in onsets.items():
        boundary = sub.task_accuracy([[c for task in sub.tasks[:t] for c in task]])
        b0 = boundary[(sub["point_task"] == t) & (sub["point_task_step"] == 0), :, 0][0]
        shifts, ratio = [], []
        if "update_ratio" in sub and weights:
            u = np.log10(np.clip(sub["update_ratio"][sub["update_task"] == t][:, :, weights], 1e-12, None)).mean(-1)
            seen = [e for e in range(u.shape[1]) if np.isfinite(on[e])]
            shifts, ratio = update_shifts([u[:, e] for e in seen], [on[e] for e in seen])
        shift, t_stat = pooled(shifts)
        rows.append(
            {
                "task": t,
                "boundary_acc": mean_sd(b0.tolist()),
                "onset": mean_sd(on.tolist()),
                "onsets": on.tolist(),
                "shift": shift,
                "t": t_stat,
                "shifts": shifts,
                "ratio": mean_sd(ratio),
            }
        )
    return rows
