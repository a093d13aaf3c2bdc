"""Why the network forgets: the explanatory probes' arrays turned into tables and one-sentence findings.

Pure functions of ``ProbeData`` (``probes/explain.py`` and ``probes/interference.py`` record the arrays).
Every sentence is generated from the numbers it states, with the thresholds named here, never typed in:
the same code reads "the features survive, the head forgets" or "the features are lost as well"
depending on what was measured. Mean ± sd are over the members given (seeds).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from forgetlab.diagnostics import ProbeData
from forgetlab.outputs.formatting import mean_sd, pm_of

SURVIVE = 0.8  # a probe keeping >= 80% of its accuracy (above chance) at the task's end "survives"
FORGOTTEN = 0.5  # the network keeping < 50% of its accuracy (above chance) has "forgotten"
ACTIVE = 0.1  # a unit is active for a task if at least 10% of the task's probe examples switch it on


def ms(values) -> tuple[float, float]:
    """Mean and sd over the finite values of an array (any shape)."""
    return mean_sd(float(v) for v in np.ravel(values) if np.isfinite(v))


def nanmean(a, axis: int) -> np.ndarray:
    """np.nanmean without the warning for an all-NaN slice (NaN there: e.g. a collapse that never happens)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis)


def fmt(values, digits: int = 2) -> str:
    """'mean ± sd' of an array's finite values, ``digits`` decimals (two: probe accuracies read as 0.93)."""
    return pm_of((float(v) for v in np.ravel(values) if np.isfinite(v)), digits)


def layer_label(name: str) -> str:
    """``fcs.0`` -> fc1, ``norms.1`` -> norm2, ``conv.0`` -> conv1; ``head`` unchanged."""
    parts = name.split(".")
    if len(parts) != 2 or not parts[1].isdigit():
        return name
    return f"{parts[0].removesuffix('s')}{int(parts[1]) + 1}"


def _classes(tasks, k: int) -> str:
    return ",".join(map(str, tasks[k]))


# ---------------------------------------------------------------------------------------------
# 1. Representation vs head forgetting
# ---------------------------------------------------------------------------------------------


def group_accuracy(correct: np.ndarray, count: np.ndarray, classes) -> np.ndarray:
    """Accuracy on a group of classes from per-class correct counts (class axis last)."""
    return correct[..., list(classes)].sum(-1) / count[list(classes)].sum()


def representation(pd: ProbeData) -> dict[str, np.ndarray]:
    """``net[t, e, k]``, ``linear[t, e, l, k]``, ``knn[t, e, l, k]``: accuracy on task k's classes at the end
    of task t (NaN for k > t), and ``chance[t]``: 1 / the number of classes seen by then."""
    tasks, count = pd.tasks, pd["score_count"]
    T = len(tasks)
    out = {}
    for name, key in (("net", "net_correct"), ("linear", "linear_correct"), ("knn", "knn_correct")):
        a = np.stack([group_accuracy(pd[key], count, c) for c in tasks], -1)
        seen = np.arange(T)[None, :] <= np.arange(T)[:, None]  # [t, k]: task k trained by the end of task t
        out[name] = np.where(seen.reshape((T,) + (1,) * (a.ndim - 2) + (T,)), a, np.nan)
    out["chance"] = np.array([1 / sum(len(c) for c in tasks[: t + 1]) for t in range(T)])
    return out


def kept(final, start, chance) -> np.ndarray:
    """Share of the accuracy above chance that is kept: (final - chance) / (start - chance)."""
    return (final - chance) / np.maximum(start - chance, 1e-9)


def verdict(kept_net: float, kept_probe: float) -> str:
    if kept_net >= FORGOTTEN:
        return "the network still knows these classes"
    if kept_probe >= SURVIVE:
        return "the features survive, the head forgets"
    if kept_probe >= FORGOTTEN:
        return "the features survive in part, the head forgets"
    return "the features are lost as well"


def representation_findings(pd: ProbeData) -> list[str]:
    """One sentence per earlier task k: its classes' network and best-layer probe accuracy (linear, on the
    layer that keeps the most) after the next task and after the last one, against their values after task k."""
    r = representation(pd)
    T = len(pd.tasks)
    out = []
    for k in range(T - 1):
        parts = []
        for t in sorted({k + 1, T - 1}):
            net0, net1 = r["net"][k, :, k], r["net"][t, :, k]
            lin0, lin1 = r["linear"][k, :, :, k], r["linear"][t, :, :, k]  # [E, L]
            best = int(np.nanargmax(np.nanmean(lin1, 0)))
            kept_net = kept(np.mean(net1), np.mean(net0), r["chance"][t])
            kept_probe = kept(np.mean(lin1[:, best]), np.mean(lin0[:, best]), r["chance"][t])
            parts.append(
                f"after task {t + 1} the linear probe on hidden {best + 1} is at {fmt(lin1[:, best])} "
                f"(after task {k + 1}: {fmt(lin0[:, best])}; chance {r['chance'][t]:.2f}) while the "
                f"network's accuracy falls from {fmt(net0)} to {fmt(net1)}: {verdict(kept_net, kept_probe)}"
            )
        out.append(f"task {k + 1} classes ({_classes(pd.tasks, k)}): " + "; ".join(parts) + ".")
    return out


def representation_rows(pd: ProbeData) -> tuple[list[str], list[list[str]]]:
    """Per task end t >= 2 and earlier task k: network, linear probe and kNN accuracy per layer."""
    r = representation(pd)
    L = r["linear"].shape[2]
    header = (
        ["after task", "old task", "network"]
        + [f"linear h{j + 1}" for j in range(L)]
        + [f"kNN h{j + 1}" for j in range(L)]
    )
    rows = []
    count = pd["score_count"]
    for t in range(1, len(pd.tasks)):
        for k in range(t):
            rows.append(
                [str(t + 1), f"{k + 1} ({_classes(pd.tasks, k)})", fmt(r["net"][t, :, k])]
                + [fmt(r["linear"][t, :, j, k]) for j in range(L)]
                + [fmt(r["knn"][t, :, j, k]) for j in range(L)]
            )
        old = [c for task in pd.tasks[:t] for c in task]
        pooled = [group_accuracy(pd[key][t], count, old) for key in ("net_correct", "linear_correct", "knn_correct")]
        rows.append(
            [str(t + 1), f"**all earlier ({len(old)} classes)**", fmt(pooled[0])]
            + [fmt(pooled[1][:, j]) for j in range(L)]
            + [fmt(pooled[2][:, j]) for j in range(L)]
        )
    return header, rows


# ---------------------------------------------------------------------------------------------
# 2. Head bias
# ---------------------------------------------------------------------------------------------


def head_norms(pd: ProbeData, rows: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean head weight norm of the current task's units and of the earlier tasks' units: [E] each."""
    C = (rows.shape[-1] - 3) // 2
    norms = rows[..., 3 : 3 + C]
    old = [c for task in pd.tasks[:t] for c in task]
    return norms[..., list(pd.tasks[t])].mean(-1), norms[..., old].mean(-1)


def head_flip(pd: ProbeData, share: float = 0.5) -> dict[int, np.ndarray]:
    """Per task t >= 1 and member: the first batch of task t after which more than ``share`` of the old
    classes' probe examples are predicted as one of task t's classes (NaN if never)."""
    out = {}
    for t in range(1, len(pd.tasks)):
        sel = pd["point_task"] == t
        s, steps = pd["head_bias"][sel, :, 0], pd["point_task_step"][sel]
        first = np.full(s.shape[1], np.nan)
        for e in range(s.shape[1]):
            above = np.nonzero(s[:, e] > share)[0]
            if len(above):
                first[e] = steps[above[0]]
        out[t] = first
    return out


def head_rows(pd: ProbeData) -> tuple[list[str], list[list[str]]]:
    end, flips = pd["head_end"], head_flip(pd)
    header = [
        "after task",
        "old examples predicted as new classes",
        "first batch above half",
        "mean logit: old units",
        "new units",
        "head weight norm: new units",
        "old units",
    ]
    rows = []
    for t in range(1, len(pd.tasks)):
        new, old = head_norms(pd, end[t], t)
        rows.append(
            [str(t + 1), fmt(end[t, :, 0]), fmt(flips[t], 1), fmt(end[t, :, 1]), fmt(end[t, :, 2]), fmt(new), fmt(old)]
        )
    return header, rows


def head_findings(pd: ProbeData) -> list[str]:
    end = pd["head_end"]
    T = len(pd.tasks)
    share = [ms(end[t, :, 0])[0] for t in range(1, T)]
    new_norm = np.mean([ms(head_norms(pd, end[t], t)[0])[0] for t in range(1, T)])
    old_norm = np.mean([ms(head_norms(pd, end[t], t)[1])[0] for t in range(1, T)])
    logit_gap = np.mean([ms(end[t, :, 2] - end[t, :, 1])[0] for t in range(1, T)])
    flips = np.concatenate([head_flip(pd)[t] for t in range(1, T)])
    how = "nearly all" if min(share) > 0.9 else "most" if min(share) > 0.5 else "a minority"
    bias = (
        "biased towards the newest classes"
        if logit_gap > 0 and new_norm > old_norm
        else "biased towards the newest classes in its logits"
        if logit_gap > 0
        else "not biased towards the newest classes"
    )
    return [
        f"at the end of tasks 2-{T}, {how} of the earlier classes' probe examples are predicted as one of the "
        f"current task's classes ({', '.join(f'{s:.2f}' for s in share)}); more than half of them are after batch "
        f"{fmt(flips, 1)} of a task. On those examples the new classes' units score {logit_gap:+.1f} above the old "
        f"classes' units on average, and their head weight columns have norm {new_norm:.2f} against {old_norm:.2f}: "
        f"the head is {bias}."
    ]


# ---------------------------------------------------------------------------------------------
# 3. Gradient interference at the onset
# ---------------------------------------------------------------------------------------------


def interference(pd: ProbeData) -> dict[int, dict[str, np.ndarray]]:
    """Per task t >= 1: ``batch [K]``, ``cos [K, E]`` (whole network), ``cos_layer [K, E, L]``, ``loss_before``,
    ``measured``, ``sgd``, ``update`` [K, E] (old tasks' loss before the step, its measured change, and the
    two first-order predictions of that change)."""
    rows, layers = (
        pd["interference"],
        len(pd.meta.get("interference_layers", [])) or (pd["interference"].shape[-1] - 4) // 3,
    )
    out = {}
    for t in np.unique(pd["interference_task"]):
        sel = pd["interference_task"] == t
        r = rows[sel]
        dot, nn, oo = r[..., :layers], r[..., layers : 2 * layers], r[..., 2 * layers : 3 * layers]
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = dot.sum(-1) / np.sqrt(nn.sum(-1) * oo.sum(-1))
            cos_layer = dot / np.sqrt(nn * oo)
        L0, L1 = r[..., 3 * layers], r[..., 3 * layers + 1]
        out[int(t)] = {
            "batch": pd["interference_task_step"][sel],
            "cos": cos,
            "cos_layer": cos_layer,
            "loss_before": L0,
            "measured": L1 - L0,
            "sgd": r[..., 3 * layers + 2],
            "update": r[..., 3 * layers + 3],
        }
    return out


def _per_seed(values) -> str:
    return f"{fmt(values, 1)} ({', '.join('–' if np.isnan(v) else str(int(v)) for v in values)})"


def peaks(d: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per member: the batch with the most negative gradient cosine and the batch with the largest
    measured rise of the old tasks' loss."""
    return d["batch"][np.nanargmin(d["cos"], 0)].astype(float), d["batch"][np.nanargmax(d["measured"], 0)].astype(float)


def interference_rows(pd: ProbeData, onsets: dict[int, np.ndarray]) -> tuple[list[str], list[list[str]]]:
    names = pd.meta.get("interference_layers", [])
    header = (
        ["task", "most negative cosine at batch", "cosine there", "largest old-loss rise at batch", "half-drop batch"]
        + [f"min cos {layer_label(n)}" for n in names]
        + ["old loss change, batches 1-K", "predicted: update·g_old", "predicted: −lr·g_new·g_old"]
    )
    rows = []
    for t, d in interference(pd).items():
        peak, rise = peaks(d)
        on = onsets.get(t, np.full(len(peak), np.nan))
        rows.append(
            [str(t + 1), _per_seed(peak), fmt(np.nanmin(d["cos"], 0)), _per_seed(rise), _per_seed(on)]
            + [fmt(np.nanmin(d["cos_layer"][:, :, j], 0)) for j in range(d["cos_layer"].shape[-1])]
            + [fmt(d["measured"].sum(0)), fmt(d["update"].sum(0)), fmt(d["sgd"].sum(0))]
        )
    return header, rows


def _relation(what: str, lag: float, at_edge: bool = False) -> str:
    if at_edge:
        return f"{what} is at the last recorded batch (still growing)"
    if math.isnan(lag):
        return f"{what} cannot be set against a collapse (the old classes' accuracy never halves)"
    if abs(lag) <= 1:
        return f"{what} coincides with the collapse (within one batch)"
    return f"{what} comes {abs(lag):.1f} batches {'before' if lag > 0 else 'after'} the collapse"


def interference_findings(pd: ProbeData, onsets: dict[int, np.ndarray]) -> list[str]:
    out = []
    K = int(pd.meta["config"]["interference_batches"])
    for t, d in interference(pd).items():
        peak, rise = peaks(d)
        on = onsets.get(t, np.full(len(peak), np.nan))
        if t not in onsets:
            collapse = "the collapse was not recorded (the curves probe is off)"
        elif np.isnan(on).all():
            collapse = "the old classes' accuracy never halves"
        else:
            late = f" (past the {K} recorded batches)" if ms(on)[0] > K else ""
            collapse = f"the old classes' accuracy halves at batch {fmt(on, 1)}{late}"
        out.append(
            f"task {t + 1}: {collapse}; the cosine between "
            f"the training batch's gradient and the old tasks' gradient is most negative "
            f"({fmt(np.nanmin(d['cos'], 0))}) at batch {fmt(peak, 1)}, and the old tasks' loss rises most at "
            f"batch {fmt(rise, 1)}: {_relation('the most negative cosine', ms(on - peak)[0])}, "
            f"{_relation('the largest rise', ms(on - rise)[0], bool((rise >= d['batch'].max()).all()))}. "
            f"Over batches 1-{K} the old tasks' loss "
            f"changes by {fmt(d['measured'].sum(0))}; first order from the applied updates: "
            f"{fmt(d['update'].sum(0))}, from −lr·g_new·g_old alone: {fmt(d['sgd'].sum(0))}."
        )
    return out


# ---------------------------------------------------------------------------------------------
# 4. Unit reuse
# ---------------------------------------------------------------------------------------------


def unit_reuse(pd: ProbeData, layer: int, threshold: float = ACTIVE) -> dict[str, np.ndarray]:
    """For hidden ``layer`` (1-based) and each task t >= 1 (rows 0..T-2), per member:
    ``dead`` units silent on every probe example of task t at its end; ``overlap``: Jaccard index between
    the units active for task t and those active for the earlier tasks (at the end of task t);
    ``old_share``: share of the earlier tasks' activation (at the end of task t-1) on the units task t's
    examples activate at the end of task t; ``moved_active`` / ``moved_other``: mean relative change of the
    incoming weights during task t of those units and of the rest."""
    rate, mean, change = (pd[f"unit_{k}_h{layer}"] for k in ("rate", "mean", "change"))
    T = len(pd.tasks)
    keys = ("dead", "overlap", "old_share", "moved_active", "moved_other")
    out = {k: np.full((T - 1, rate.shape[1]), np.nan) for k in keys}
    for t in range(1, T):
        for e in range(rate.shape[1]):
            now = rate[t, e, t] >= threshold
            old_active = (rate[t, e, :t] >= threshold).any(0)
            mass = mean[t - 1, e, :t].sum(0)
            out["dead"][t - 1, e] = (rate[t, e, t] == 0).sum()
            out["overlap"][t - 1, e] = (now & old_active).sum() / max((now | old_active).sum(), 1)
            out["old_share"][t - 1, e] = mass[now].sum() / mass.sum() if mass.sum() > 0 else np.nan
            out["moved_active"][t - 1, e] = change[t, e][now].mean() if now.any() else np.nan
            out["moved_other"][t - 1, e] = change[t, e][~now].mean() if (~now).any() else np.nan
    return out


def n_layers(pd: ProbeData) -> int:
    return sum(1 for k in pd.arrays if k.startswith("unit_rate_h")) or sum(
        1 for k in pd.arrays if k.startswith("cka_h")
    )


def unit_rows(pd: ProbeData) -> tuple[list[str], list[list[str]]]:
    header = [
        "task",
        "layer",
        "dead on its examples",
        "overlap with earlier tasks' units (Jaccard)",
        "earlier tasks' activation on its units",
        "weight change: its units",
        "other units",
    ]
    rows = []
    for layer in range(1, n_layers(pd) + 1):
        u = unit_reuse(pd, layer)
        for t in range(1, len(pd.tasks)):
            rows.append(
                [
                    str(t + 1),
                    f"hidden {layer}",
                    fmt(u["dead"][t - 1], 1),
                    fmt(u["overlap"][t - 1]),
                    fmt(u["old_share"][t - 1]),
                    fmt(u["moved_active"][t - 1], 3),
                    fmt(u["moved_other"][t - 1], 3),
                ]
            )
    return header, rows


def unit_findings(pd: ProbeData) -> list[str]:
    out = []
    for layer in range(1, n_layers(pd) + 1):
        u = unit_reuse(pd, layer)
        share, moved, other = ms(u["old_share"])[0], ms(u["moved_active"])[0], ms(u["moved_other"])[0]
        reuse = (
            "the new tasks rewrite the units that carried the old ones"
            if share >= 0.5
            else "most of the old tasks' activation sits on units the new tasks leave alone"
        )
        out.append(
            f"hidden {layer}: over tasks 2-{len(pd.tasks)}, {fmt(u['old_share'])} of the earlier tasks' "
            f"activation sits on units the new task's examples activate (Jaccard overlap of active units "
            f"{fmt(u['overlap'])}; {fmt(u['dead'], 1)} units silent on the new task's examples); the incoming "
            f"weights of those units move by {moved:.3f} during the task against {other:.3f} for the rest: {reuse}."
        )
    return out


# ---------------------------------------------------------------------------------------------
# 5. Representation drift
# ---------------------------------------------------------------------------------------------


def drift_findings(pd: ProbeData) -> list[str]:
    T = len(pd.tasks)
    parts = []
    for layer in range(1, n_layers(pd) + 1):
        cka = pd[f"cka_h{layer}"]
        parts.append(f"hidden {layer} {fmt(cka[T - 1, :, 0])} (after task 2: {fmt(cka[1, :, 0])})")
    first = [ms(pd[f"cka_h{layer}"][T - 1, :, 0])[0] for layer in range(1, n_layers(pd) + 1)]
    deeper = (
        "the deeper layer drifts more"
        if first[-1] < first[0]
        else "the first layer drifts more"
        if first[-1] > first[0]
        else "both layers drift alike"
    )
    return [
        f"linear CKA between each layer's representation of the probe set after task 1 and after task {T}: "
        f"{'; '.join(parts)}: {deeper}."
    ]


def drift_rows(pd: ProbeData) -> tuple[list[str], list[list[str]]]:
    T = len(pd.tasks)
    header = ["layer", "from the end of task"] + [f"after task {t + 1}" for t in range(T)]
    rows = []
    for layer in range(1, n_layers(pd) + 1):
        cka = pd[f"cka_h{layer}"]
        for s in range(T - 1):
            rows.append([f"hidden {layer}", str(s + 1)] + [fmt(cka[t, :, s]) if t >= s else "–" for t in range(T)])
    return header, rows
