"""What is computed: the numbers the report states, derived from saved results and probe arrays."""

from __future__ import annotations

import numpy as np

from forgetlab import diagnostics as probes_mod
from forgetlab.diagnostics import figures as fig
from forgetlab.outputs.formatting import mean_sd, point_label
from forgetlab.outputs.results import Results


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


def differs(metric: str, ours: list[float], study: float) -> bool:
    """Outside our seed spread: |mean - study| > 2 std, and beyond a floor that rounding can explain."""
    m, sd = mean_sd(ours)
    floor = 0.1 * abs(study) if "loss" in metric else 0.005
    return abs(m - study) > max(2 * sd, floor)


def _update_z(u: np.ndarray, onset: float) -> tuple[float, float]:
    """z of the mean log update at batches onset-1..onset+1 against a quadratic trend through the
    task's other first 50 batches, and its ratio to the median update after batch 50."""
    s = int(onset)
    steps = np.arange(1, len(u) + 1)
    early = (steps <= 50) & (np.abs(steps - s) > 1)
    win = np.abs(steps - s) <= 1
    coef = np.polyfit(steps[early], u[early], 2)
    resid = u[early] - np.polyval(coef, steps[early])
    at = u[win].mean() - np.polyval(coef, steps[win]).mean()
    return at / resid.std(ddof=3), 10 ** (u[win].mean() - np.median(u[steps > 50]))


def onset_table(pd: probes_mod.ProbeData, index: list[int], fraction: float = 0.5) -> list[dict]:
    """Per later task: the batch at which old-task accuracy first falls below ``fraction`` of its
    task-boundary value, and whether the relative weight updates there stand out.

    Updates are the mean over weight tensors of log10(||dW||/||W||). Over the first 50 batches of the
    task they decay smoothly, so the at-onset value (batches onset-1..onset+1) is compared with a
    quadratic trend fitted to the other early batches: z = residual / std of the fit's residuals. The
    ratio to the median of the rest of the task (after batch 50) is reported too.
    """
    sub = pd.select(index)
    onsets = fig.onset_batches(sub, fraction)
    names = pd.meta.get("update_names", [])
    weights = [j for j, n in enumerate(names) if fig.param_layer(n)[1] == "weight"]
    rows = []
    for t, on in onsets.items():
        boundary = sub.task_accuracy([[c for task in sub.tasks[:t] for c in task]])
        b0 = boundary[(sub["point_task"] == t) & (sub["point_task_step"] == 0), :, 0][0]
        z, ratio = [], []
        if "update_ratio" in sub and weights:
            u = np.log10(np.clip(sub["update_ratio"][sub["update_task"] == t][:, :, weights], 1e-12, None)).mean(-1)
            for e in range(u.shape[1]):
                if np.isfinite(on[e]):
                    ze, re = _update_z(u[:, e], on[e])
                    z.append(ze)
                    ratio.append(re)
        rows.append(
            {
                "task": t,
                "boundary_acc": mean_sd(b0.tolist()),
                "onset": mean_sd(on.tolist()),
                "onsets": on.tolist(),
                "z": mean_sd(z),
                "ratio": mean_sd(ratio),
            }
        )
    return rows
