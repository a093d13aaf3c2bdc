"""What is said: the study-specific text of the report, the flags on numbers that differ from the
study's, and the explanation behind each flag."""

from __future__ import annotations

import math
import re

from forgetlab import diagnostics as probes_mod
from forgetlab.outputs.formatting import interval, left_out, number, pm, pm_of
from forgetlab.outputs.results import Results
from forgetlab.outputs.stats import Interval, detectable, sample, t_quantile
from forgetlab.studies.mnist_mlp import SOURCE, STUDY
from forgetlab.workflows.reproduce.numbers import flag_test, groups, last_epoch

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
    "task boundary. Update at onset: the mean log10 relative weight update over batches onset-1.."
    "onset+1 against a quadratic trend through the task's first 50 batches, fitted per seed with "
    "AR(1) errors (consecutive updates are correlated; one coefficient for the seeds of a task), the "
    "seeds' shifts pooled by inverse-variance weighting; shown as a factor on the trend with its 95% "
    "interval, and t = pooled shift / its standard error. Verdict: the update stands out where the "
    "interval excludes 1× (about 5% false positives when nothing happens at the onset, simulated in "
    "tests/test_stats.py), else nothing special, with the smallest factor this test detects 80% of "
    "the time. Ratio: that update over the median update after batch 50."
)
ONSET_HEADER = [
    "config",
    "task",
    "old-class acc at boundary",
    "half-drop batch (per seed)",
    "update at onset vs trend [95% CI]",
    "t (pooled)",
    "update vs rest of task",
    "verdict",
]


def intro(seeds: int) -> str:
    pc = probes_mod.ProbeConfig()
    test = (
        f"⚑ marks a value of the study outside the 95% prediction interval of one new run of ours, mean ± "
        f"t(0.975, n−1)·s·√(1 + 1/n) ({_pi_factor(seeds)}), and further from our mean than rounding "
        f"explains (0.005 in accuracy/sparsity, 10% in loss): the study's numbers are one run each, and a "
        f"run from our own distribution is flagged 5% of the time, so about one number in twenty is "
        f"flagged by chance. "
    )
    return (
        f"Every experiment of the study ({SOURCE}) re-run with {seeds} seed{'s' * (seeds != 1)} each (mean ± "
        f"sample standard deviation s, n − 1, over the n seeds whose value is finite: a seed that diverged "
        f"is left out and named); the study's numbers (one run each, its last epoch) are typed in "
        f"`forgetlab/studies/mnist_mlp.py`. "
        + (test if seeds > 1 else "With one seed there is no spread, so no value is flagged. ")
        + "Each flag is explained below its table. "
        f"Probe set: {pc.per_class} validation examples per class; curves every batch for the first "
        f"{pc.first} batches of a task, then every {pc.every}. Latent maps: t-SNE of "
        f"{pc.latent_per_class * 10} validation examples, first seed."
    )


def _pi_factor(n: int) -> str:
    """'±4.97 s at n = 3': the prediction interval's half-width in sds."""
    return f"±{t_quantile(0.975, n - 1) * math.sqrt(1 + 1 / n):.2f} s at n = {n}"


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
    notes, rows, said, left = [], [], {}, []
    metrics = _metrics(name)
    header = ["config", "task"] + [f"{LABELS[m]} {who}" for m in metrics for who in ("ours", "study")]
    for label, ix in groups(res):
        ref = study.get(label, [])
        for t, classes in enumerate(res.config.tasks):
            row = [label or "–", f"{t + 1} [{','.join(map(str, classes))}]" if len(res.config.tasks) > 1 else "all"]
            for m in metrics:
                ours = last_epoch(res, ix, t, m)
                s = ref[t].get(m) if t < len(ref) else None
                cell = pm_of(ours, n=len(ours))
                where = f"{label + ' ' if label else ''}task {t + 1} {LABELS[m]}"
                left += [(f"seed {res.members[ix[i]].seed}", where) for i in sample(ours).left_out]
                test = flag_test(m, ours, s) if s is not None else None
                if test is not None and test.flagged:
                    cell += " ⚑"
                    why = explain(m, name, t, label, res.config.train.optimizer)
                    if why in said:  # one cause behind several flags: spell it out once
                        why = f"the same cause as the {said[why]} flag above"
                    else:
                        said[why] = where
                    pi = f"95% prediction interval of one run {interval(test.interval)}, n = {test.n}"
                    notes.append(f"⚑ {where}: ours {pm_of(ours)} ({pi}), study {number(s)}: {why}.")
                row += [cell, number(s) if s is not None else "–"]
            rows.append(row)
    return header, rows, notes + ([left_out(left)] if left else [])


def onset_verdict(shift: Interval) -> str:
    """'stands out (larger)' / 'stands out (smaller)' where the pooled shift's interval excludes 0, else
    'nothing special (detects 1.30×)': the factor on the trend this test finds 80% of the time
    (``stats.detectable``); '–' where nothing was measured."""
    if not shift.measured:
        return "–"
    if shift.excludes(0.0):
        return f"stands out ({'larger' if shift.estimate > 0 else 'smaller'})"
    return f"nothing special (detects {10 ** detectable(shift):.2f}×)"


def onset_rows(onsets: list[tuple[str, list[dict]]]) -> list[list[str]]:
    """The onset table's rows, each with its verdict on the weight updates at the onset."""
    rows = []
    for label, table in onsets:
        for r in table:
            sh = r["shift"]
            factor = f"{10**sh.estimate:.2f}× [{10**sh.low:.2f}, {10**sh.high:.2f}]" if sh.measured else "–"
            per_seed = ", ".join("–" if math.isnan(v) else str(int(v)) for v in r["onsets"])
            rows.append(
                [
                    label or "–",
                    str(r["task"] + 1),
                    number(r["boundary_acc"][0]),
                    f"{pm(*r['onset'], 1)} ({per_seed})",
                    factor,
                    "–" if math.isnan(r["t"]) else f"{r['t']:+.1f}",
                    f"{r['ratio'][0]:.1f}×",
                    onset_verdict(sh),
                ]
            )
    return rows


def latent_repeat(repeat: dict[str, float]) -> str:
    """The sparsity the study's latent-space repeat gave per lambda, e.g. {"l1=0": 0.5369, "l1=1": 0.9236}."""
    parts = [f"{v} (lambda {k.split('=')[1]})" for k, v in repeat.items()]
    return f"The study's latent-space repeat gave sparsity {' and '.join(parts)}."
