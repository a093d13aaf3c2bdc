"""What is said: the study-specific text of the report, the flags on numbers that differ from the
study's, and the explanation behind each flag."""

from __future__ import annotations

import math
import re

from forgetlab import diagnostics as probes_mod
from forgetlab.outputs.formatting import number, pm_of
from forgetlab.outputs.results import Results
from forgetlab.studies.mnist_mlp import SOURCE, STUDY
from forgetlab.workflows.reproduce.numbers import differs, groups, last_epoch

METRICS = ("val_acc", "val_loss", "train_loss", "train_acc", "sparsity")
LABELS = {
    "val_acc": "val acc",
    "val_loss": "val loss",
    "train_loss": "train loss",
    "train_acc": "train acc",
    "sparsity": "sparsity",
}

L1_COLLAPSE = (
    "at lambda 2 our plain SGD (lr 0.01, momentum 0.9) turns most hidden units off for good in the first "
    "epoch (10 seeds: 74-90 of 120 layer-1 units dead after epoch 1, 5 seeds stuck at the constant "
    "prediction 0.1135, the rest 0.35-0.81); lr 0.001 and un-normalised pixels collapse too, Adam lr 0.001 "
    "does not (0.83 ± 0.07, sparsity 0.946, 5 seeds): the penalty is the study's (lambda (mean|h1| + "
    "mean|h2|) after ReLU), its unstated optimizer is the likely difference (benchmarks/l1_collapse.py)"
)

ONSET_INTRO = (
    "**When does the old task collapse, and do the weight updates show it?** Batch of the "
    "task at which accuracy on all earlier classes first falls below half its value at the "
    "task boundary; z: the relative weight update there against a smooth trend through the "
    "task's first 50 batches (|z| < 2: nothing special); ratio: that update over the median "
    "update after batch 50."
)
ONSET_HEADER = [
    "config",
    "task",
    "old-class acc at boundary",
    "half-drop batch (per seed)",
    "update z at onset",
    "update vs rest of task",
    "verdict",
]


def intro(seeds: int) -> str:
    pc = probes_mod.ProbeConfig()
    return (
        f"Every experiment of the study ({SOURCE}) re-run with {seeds} seeds each (mean ± std over "
        f"seeds); the study's numbers (one run each, its last epoch) are typed in `forgetlab/study.py`. "
        f"⚑ marks our mean differing from the study's value by more than two seed standard deviations "
        f"(and more than 0.005 in accuracy/sparsity, 10% in loss); each flag is explained below its table. "
        f"Probe set: {pc.per_class} validation examples per class; curves every batch for the first "
        f"{pc.first} batches of a task, then every {pc.every}. Latent maps: t-SNE of "
        f"{pc.latent_per_class * 10} validation examples, first seed."
    )


def explain(metric: str, preset: str, task: int, label: str = "", optimizer: str = "sgd") -> str:
    """One line on why this number can differ from the study's (which is one run of its own code);
    ``optimizer``: the run's (the L1 collapse is plain SGD's)."""
    seq = "sequential" in preset
    lam = re.search(r"\bl1=([0-9.e+-]+)", label)
    if preset == "mlp-l1-concurrent" and lam and float(lam.group(1)) >= 2 and optimizer == "sgd":
        return L1_COLLAPSE
    if metric == "train_loss":
        return (
            "the study's losses are not per-example mean cross-entropies (its concurrent train loss 0.0117 at "
            "train acc 0.9786 is below the 0.0148 that 2.1% errors alone would cost), so only the trend compares"
        )
    if metric == "val_loss":
        if seq and task > 0:
            return (
                "the loss on forgotten classes is set by a few very confident errors (logit scale), which "
                "changes with initialisation and training length far more than accuracy does"
            )
        return "loss normalisation in the study is not stated (see train loss); compare accuracies instead"
    if metric == "train_acc":
        return (
            "ours is measured over the epoch in training mode (dropout active, weights still moving); the study "
            "does not say where it measured"
        )
    if metric == "sparsity":
        if seq:
            return (
                "the study counts zeros over its test loader for this task; ours over the eval data of the seen "
                "classes; the count depends on which classes are included"
            )
        return (
            "population sparsity depends on the optimizer, which the study does not state (lambda 0 / 1: our "
            "SGD 0.51 / 0.956, Adam lr 0.001 0.58 / 0.936 over 5 seeds; benchmarks/l1_collapse.py); its L1 loop also "
            "runs epochs 1..4 (`range(1, epochs)`), ours 5"
        )
    if metric == "val_acc":
        if seq and task > 0:
            return (
                "after forgetting, val acc is about the share of the current task's classes in the seen eval "
                "data; any residual accuracy on old classes moves it"
            )
        return "the study is a single seed; the difference is a property of its run (data order, initialisation)"
    return "the study is a single run"


def _metrics(name: str) -> list[str]:
    """The study's metrics of this experiment: sparsity only where the study printed it."""
    printed = {k for rows in STUDY.get(name, {}).values() for row in rows for k in row}
    return [m for m in METRICS if m != "sparsity"] + (["sparsity"] if "sparsity" in printed else [])


def comparison(name: str, res: Results) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and flag notes of the study-vs-ours table of one experiment."""
    study = STUDY.get(name, {})
    notes, rows, said = [], [], {}
    metrics = _metrics(name)
    header = ["config", "task"] + [f"{LABELS[m]} {who}" for m in metrics for who in ("ours", "study")]
    for label, ix in groups(res):
        ref = study.get(label, [])
        for t, classes in enumerate(res.config.tasks):
            row = [label or "–", f"{t + 1} [{','.join(map(str, classes))}]" if len(res.config.tasks) > 1 else "all"]
            for m in metrics:
                ours = last_epoch(res, ix, t, m)
                s = ref[t].get(m) if t < len(ref) else None
                cell = pm_of(ours)
                if s is not None and len(ours) and differs(m, ours, s):
                    cell += " ⚑"
                    where = f"{label + ' ' if label else ''}task {t + 1} {LABELS[m]}"
                    why = explain(m, name, t, label, res.config.train.optimizer)
                    if why in said:  # one cause behind several flags: spell it out once
                        why = f"the same cause as the {said[why]} flag above"
                    else:
                        said[why] = where
                    notes.append(f"⚑ {where}: ours {pm_of(ours)}, study {number(s)}: {why}.")
                row += [cell, number(s) if s is not None else "–"]
            rows.append(row)
    return header, rows, notes


def onset_rows(onsets: list[tuple[str, list[dict]]]) -> list[list[str]]:
    """The onset table's rows, each with its verdict on the weight updates at the onset."""
    rows = []
    for label, table in onsets:
        for r in table:
            z = r["z"][0]
            verdict = "–" if math.isnan(z) else ("stands out" if abs(z) >= 2 else "nothing special")
            per_seed = ", ".join("–" if math.isnan(v) else str(int(v)) for v in r["onsets"])
            rows.append(
                [
                    label or "–",
                    str(r["task"] + 1),
                    number(r["boundary_acc"][0]),
                    f"{r['onset'][0]:.1f} ± {r['onset'][1]:.1f} ({per_seed})",
                    f"{r['z'][0]:+.1f} ± {r['z'][1]:.1f}",
                    f"{r['ratio'][0]:.1f}×",
                    verdict,
                ]
            )
    return rows


def latent_repeat(repeat: dict[str, float]) -> str:
    """The sparsity the study's latent-space repeat gave per lambda, e.g. {"l1=0": 0.5369, "l1=1": 0.9236}."""
    parts = [f"{v} (lambda {k.split('=')[1]})" for k, v in repeat.items()]
    return f"The study's latent-space repeat gave sparsity {' and '.join(parts)}."
