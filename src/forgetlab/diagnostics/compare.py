"""The explanatory probes' headline numbers for strategies side by side (``forgetlab compare``): does a
strategy keep the network's accuracy on the earlier classes, only the features, or neither? Tables,
generated sentences and figures, from each strategy's ``ProbeData``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forgetlab.diagnostics import ProbeData
from forgetlab.diagnostics.figures import onset_batches
from forgetlab.diagnostics.findings import (
    fmt,
    group_accuracy,
    interference,
    kept,
    n_layers,
    nanmean,
    peaks,
    unit_reuse,
    verdict,
)
from forgetlab.outputs.plotting import PALETTE, band, pyplot, save


def earlier_classes(pd: ProbeData) -> dict[str, np.ndarray]:
    """After the last task, accuracy on the classes of every earlier task: ``net`` [E], ``linear`` and
    ``knn`` [E, L]; and the same after each earlier task's own training (``*_start``, on its own classes
    pooled the same way: the reference of how much was kept)."""
    T, count = len(pd.tasks), pd["score_count"]
    old = [c for task in pd.tasks[: T - 1] for c in task]
    out = {}
    for name, key in (("net", "net_correct"), ("linear", "linear_correct"), ("knn", "knn_correct")):
        out[name] = group_accuracy(pd[key][T - 1], count, old)
        per_task = [group_accuracy(pd[key][k], count, pd.tasks[k]) * len(pd.tasks[k]) for k in range(T - 1)]
        out[name + "_start"] = sum(per_task) / len(old)  # equal probe examples per class
    out["chance"] = 1 / sum(len(t) for t in pd.tasks)
    return out


def compare_rows(pds: dict[str, ProbeData]) -> tuple[list[str], list[list[str]]]:
    """One row per strategy: the five questions' headline numbers after the last task."""
    header = [
        "strategy",
        "network on earlier classes",
        "linear probe (last hidden)",
        "kNN (last hidden)",
        "earlier examples predicted as the last task's classes",
        "most negative gradient cosine",
        "at batch",
        "half-drop batch",
        "earlier activation on the new task's units (hidden 1)",
        "CKA after task 1 vs last (last hidden)",
    ]
    rows = []
    for name, pd in pds.items():
        T, row = len(pd.tasks), [name]
        if "linear_correct" in pd:
            e = earlier_classes(pd)
            row += [fmt(e["net"]), fmt(e["linear"][:, -1]), fmt(e["knn"][:, -1])]
        else:
            row += ["–"] * 3
        row.append(fmt(pd["head_end"][T - 1, :, 0]) if "head_end" in pd else "–")
        if "interference" in pd:
            d = interference(pd)
            onsets = _onsets(pd)
            row += [
                fmt(np.mean([np.nanmin(v["cos"], 0) for v in d.values()], 0)),
                fmt(np.mean([peaks(v)[0] for v in d.values()], 0), 1),
                fmt(nanmean([onsets[t] for t in d], 0), 1) if onsets else "–",
            ]
        else:
            row += ["–"] * 3
        row.append(fmt(nanmean(unit_reuse(pd, 1)["old_share"], 0)) if "unit_rate_h1" in pd else "–")
        L = n_layers(pd)
        row.append(fmt(pd[f"cka_h{L}"][T - 1, :, 0]) if f"cka_h{L}" in pd else "–")
        rows.append(row)
    return header, rows


def _onsets(pd: ProbeData) -> dict[int, np.ndarray]:
    return onset_batches(pd) if "curve_correct" in pd else {}


def compare_findings(pds: dict[str, ProbeData]) -> list[str]:
    """Per strategy: does it keep the network's accuracy on the earlier classes, the features, or neither?"""
    out = []
    for name, pd in pds.items():
        if "linear_correct" not in pd:
            continue
        e = earlier_classes(pd)
        best = int(np.nanargmax(nanmean(e["linear"], 0)))
        kept_net = kept(np.mean(e["net"]), np.mean(e["net_start"]), e["chance"])
        kept_probe = kept(np.mean(e["linear"][:, best]), np.mean(e["linear_start"][:, best]), e["chance"])
        head = (
            f"; {fmt(pd['head_end'][-1, :, 0])} of the earlier classes' examples go to the last task's classes"
            if "head_end" in pd
            else ""
        )
        out.append(
            f"{name}: on the earlier tasks' classes after the last task, the network is at {fmt(e['net'])} "
            f"and the linear probe on hidden {best + 1} at {fmt(e['linear'][:, best])} (after their own "
            f"tasks: {fmt(e['net_start'])} and {fmt(e['linear_start'][:, best])}; chance {e['chance']:.2f})"
            f"{head}: {verdict(kept_net, kept_probe).replace('these classes', 'the earlier classes')}."
        )
    return out


def figures(pds: dict[str, ProbeData], out_dir: Path) -> list[tuple[Path, str]]:
    """(PNG, caption) of each figure the recorded arrays allow."""
    out = []
    if all("linear_correct" in pd for pd in pds.values()):
        out.append(
            (
                _accuracy_bars(pds, out_dir / "explain_probe_vs_network"),
                "Earlier classes after the last task: the network against linear probes of each hidden layer.",
            )
        )
    if all("head_bias" in pd for pd in pds.values()):
        out.append(
            (
                _per_batch(
                    pds,
                    out_dir / "explain_head_bias",
                    _head_share,
                    "earlier examples predicted\nas the current task's classes",
                ),
                "Head bias over the first batches of a task (mean over tasks 2..T).",
            )
        )
    if all("interference" in pd for pd in pds.values()):
        out.append(
            (
                _per_batch(pds, out_dir / "explain_interference", _cosine, "cos(g_new, g_old)"),
                "Gradient cosine between the applied update and the earlier tasks' loss (mean over tasks 2..T).",
            )
        )
    return out


def _accuracy_bars(pds: dict[str, ProbeData], stem: Path) -> Path:
    plt = pyplot()
    names = list(pds)
    series = {"network": [earlier_classes(pd)["net"] for pd in pds.values()]}
    for layer in range(n_layers(next(iter(pds.values())))):
        series[f"linear probe, hidden {layer + 1}"] = [earlier_classes(pd)["linear"][:, layer] for pd in pds.values()]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(names) + 2), 3.2))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        x = np.arange(len(names)) + i * width
        ax.bar(
            x,
            [np.mean(v) for v in values],
            width,
            yerr=[np.std(v, ddof=1) if len(v) > 1 else 0 for v in values],
            color="#000000" if i == 0 else PALETTE[i - 1],
            label=label,
        )
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
    ax.set(ylabel="accuracy on earlier classes", ylim=(0, 1.02))
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save(fig, stem)


def _head_share(pd: ProbeData) -> tuple[np.ndarray, np.ndarray]:
    sel = (pd["point_task"] >= 1) & (pd["point_task_step"] >= 1)
    steps = np.unique(pd["point_task_step"][sel])
    rows = [pd["head_bias"][sel & (pd["point_task_step"] == s), :, 0].mean(0) for s in steps]
    return steps, np.stack(rows)


def _cosine(pd: ProbeData) -> tuple[np.ndarray, np.ndarray]:
    d = interference(pd)
    return next(iter(d.values()))["batch"], np.mean([v["cos"] for v in d.values()], 0)


def _per_batch(pds: dict[str, ProbeData], stem: Path, series, ylabel: str) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for i, (name, pd) in enumerate(pds.items()):
        x, v = series(pd)
        band(ax, x, v, PALETTE[i % len(PALETTE)], name, ls="-" if i < len(PALETTE) else "--")
    ax.set(xlabel="batch of the task", ylabel=ylabel)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save(fig, stem)


def section(pds: dict[str, ProbeData], out_dir: Path) -> list[str]:
    """Markdown lines of compare.md's section on why each strategy forgets, with its figures."""
    header, rows = compare_rows(pds)
    lines = [
        "",
        "## Why they forget",
        "",
        "After the last task, mean ± std over seeds: accuracy on the earlier tasks' classes of the network and "
        "of a ridge probe and a kNN probe on the frozen features (Davari et al. 2022); the head bias; the "
        "gradient cosine between the applied update and the earlier tasks' loss over the first batches of "
        "each task (mean over tasks) against the batch at which their accuracy halves; the earlier tasks' "
        "activation on the units the new task activates; linear CKA of the last hidden layer between the ends "
        "of the first and the last task (Kornblith et al. 2019). Each finding is generated from the numbers.",
        "",
        "| " + " | ".join(header) + " |",
        "|---" * len(header) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += [""] + [f"- {s}" for s in compare_findings(pds)]
    for png, caption in figures(pds, out_dir):
        lines += ["", f"![{caption}]({png.name})", f"*{caption}*"]
    return lines
