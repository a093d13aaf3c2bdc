"""The report's answers to the study's questions: per question a figure (PNG + PDF, drawn from saved
arrays only), a table and sentences generated from the numbers (``explain.py``).

Figures share ``figures.py``'s style: mean over seeds with a +-1 std band, task boundaries dotted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import forgetlab.diagnostics.findings as X
from forgetlab.diagnostics import ProbeData
from forgetlab.diagnostics.figures import onset_batches, task_starts
from forgetlab.outputs.formatting import point_label
from forgetlab.outputs.plotting import BOUNDARY, PALETTE, band, boundaries, pyplot, save


def probe_vs_network(pd: ProbeData, title: str, stem: Path) -> Path:
    """Per earlier task: its classes' accuracy at every later task end, the network's against the linear
    and kNN probes of each hidden layer."""
    plt = pyplot()
    r = X.representation(pd)
    T, L = len(pd.tasks), r["linear"].shape[2]
    fig, axes = plt.subplots(1, T - 1, figsize=(2.6 * (T - 1), 2.8), sharey=True, squeeze=False)
    for k, ax in enumerate(axes[0]):
        x = np.arange(k, T) + 1
        band(ax, x, r["net"][k:, :, k], "#000000", "network")
        for j in range(L):
            band(ax, x, r["linear"][k:, :, j, k], PALETTE[j], f"linear probe, hidden {j + 1}")
            band(ax, x, r["knn"][k:, :, j, k], PALETTE[j], f"kNN, hidden {j + 1}", ls="--")
        ax.plot(x, r["chance"][k:], color="#999999", ls=":", lw=1, label="chance (seen classes)")
        ax.set(
            title=f"task {k + 1} classes ({X._classes(pd.tasks, k)})", xlabel="after task", xticks=x, ylim=(-0.02, 1.02)
        )
    axes[0][0].set_ylabel("accuracy on the task's classes")
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    return save(fig, stem)


def head_bias(pd: ProbeData, title: str, stem: Path) -> Path:
    """Along the forgetting curve: the share of old-class examples predicted as a current-task class (top)
    and the mean logit of the old and the new classes' units on those examples (bottom)."""
    plt = pyplot()
    x, hb = pd["point_step"], pd["head_bias"]
    fig, (a, b) = plt.subplots(2, 1, figsize=(7.0, 4.4), sharex=True)
    band(a, x, hb[:, :, 0], PALETTE[3], "old-class examples predicted as a new class")
    band(b, x, hb[:, :, 1], PALETTE[0], "old classes' units")
    band(b, x, hb[:, :, 2], PALETTE[1], "current task's units")
    for ax in (a, b):
        boundaries(ax, task_starts(pd))
    a.set(ylabel="share", ylim=(-0.02, 1.02), title=title)
    b.set(xlabel="training batch (all tasks)", ylabel="mean logit on old-class examples")
    a.legend(loc="lower right")
    b.legend(loc="lower right")
    return save(fig, stem)


def interference(pd: ProbeData, onsets: dict[int, np.ndarray], title: str, stem: Path) -> Path:
    """Per later task, the first K batches: gradient cosine per layer and for the whole network (top), the
    old tasks' loss change per batch, measured and predicted to first order (bottom); the batch at
    which the old classes' accuracy halves is marked (dotted, one line per seed)."""
    plt = pyplot()
    data, names = X.interference(pd), pd.meta.get("interference_layers", [])
    fig, axes = plt.subplots(2, len(data), figsize=(2.8 * len(data), 4.6), sharex=True, squeeze=False)
    for col, (t, d) in enumerate(data.items()):
        top, bottom = axes[0][col], axes[1][col]
        for j, name in enumerate(names):
            band(top, d["batch"], d["cos_layer"][:, :, j], PALETTE[j + 1], X.layer_label(name), lw=1)
        band(top, d["batch"], d["cos"], "#000000", "whole network")
        band(bottom, d["batch"], d["measured"], "#000000", "measured")
        band(bottom, d["batch"], d["update"], PALETTE[0], "update·g_old", ls="--")
        band(bottom, d["batch"], d["sgd"], PALETTE[3], "−lr·g_new·g_old", ls=":")
        for ax in (top, bottom):
            for on in onsets.get(t, []):
                if np.isfinite(on):
                    ax.axvline(on, **BOUNDARY)
        top.axhline(0, color="#777777", lw=0.6)
        top.set(title=f"task {t + 1} ({X._classes(pd.tasks, t)})", ylim=(-1.02, 1.02))
        bottom.set(xlabel="batch of the task")
    axes[0][0].set_ylabel("cos(g_new, g_old)")
    axes[1][0].set_ylabel("change of the old tasks' loss")
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes[1][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    return save(fig, stem)


def unit_reuse(pd: ProbeData, title: str, stem: Path) -> Path:
    """Per task after the first and per hidden layer: the share of the earlier tasks' activation on the
    units the new task activates, the Jaccard overlap of active units, and the dead units' share."""
    plt = pyplot()
    T = len(pd.tasks)
    x = np.arange(2, T + 1)
    fig, axes = plt.subplots(1, 3, figsize=(9.0, 2.8))
    for layer in range(1, X.n_layers(pd) + 1):
        u = X.unit_reuse(pd, layer)
        units = pd[f"unit_rate_h{layer}"].shape[-1]
        c = PALETTE[layer - 1]
        band(axes[0], x, u["old_share"], c, f"hidden {layer}")
        band(axes[1], x, u["overlap"], c, f"hidden {layer}")
        band(axes[2], x, u["dead"] / units, c, f"hidden {layer}")
    for ax, label in zip(
        axes,
        (
            "earlier tasks' activation\non the new task's units",
            "overlap of active units\n(Jaccard)",
            "units silent on the\nnew task's examples",
        ),
        strict=False,
    ):
        ax.set(xlabel="task", ylabel=label, xticks=x, ylim=(-0.02, 1.02))
    axes[0].legend()
    fig.suptitle(title)
    return save(fig, stem)


def drift(pd: ProbeData, title: str, stem: Path) -> Path:
    """Linear CKA between the representation at the end of task s (rows) and task t (columns), per layer."""
    plt = pyplot()
    L, T = X.n_layers(pd), len(pd.tasks)
    fig, axes = plt.subplots(1, L, figsize=(3.2 * L, 3.0), squeeze=False)
    for layer, ax in enumerate(axes[0], 1):
        cka = pd[f"cka_h{layer}"].mean(1).T  # [s, t]: NaN below the diagonal (s > t)
        ax.imshow(cka, vmin=0, vmax=1, cmap="viridis")
        for (s, t), v in np.ndenumerate(cka):
            if np.isfinite(v):
                ax.text(t, s, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.6 else "k")
        ax.set(
            title=f"hidden {layer}",
            xlabel="after task",
            ylabel="representation after task",
            xticks=range(T),
            xticklabels=range(1, T + 1),
            yticks=range(T),
            yticklabels=range(1, T + 1),
        )
        ax.grid(False)
    fig.suptitle(title)
    return save(fig, stem)


# ---------------------------------------------------------------------------------------------
# The report section
# ---------------------------------------------------------------------------------------------

QUESTIONS = [
    (
        "Features or head? Representation vs head forgetting",
        '"in the latent space the new classes are well separated, and the previous classes are mingled"',
        "After each task, a ridge probe (closed form, one-hot targets, penalty {ridge}) and a {knn}-nearest-neighbour "
        "probe per hidden layer, fitted on the frozen features of {fit} training examples per seen "
        "class, scored on the "
        "probe set against the network's own accuracy on the same examples (Davari et al. 2022, \"Probing "
        'representation forgetting in supervised and unsupervised continual learning").',
        "representation",
        probe_vs_network,
    ),
    (
        "Head bias",
        '"very confident in predicting the new classes for examples of the old classes"',
        "On the forgetting curve's schedule and at each task end: the share of the earlier classes' probe examples "
        "predicted as one of the current task's classes, the mean logit of the old and the new "
        "classes' output units on "
        "those examples, and the norm of each class's head weights (the bias weight aligning and BiC correct).",
        "head",
        head_bias,
    ),
    (
        "Gradient interference at the onset",
        '"we cannot see anything special in the relative updates at that point (batches 3-11)"',
        "For the first {K} batches of every later task, per layer, the cosine between the gradient "
        "the optimizer applies "
        "and the gradient of the earlier tasks' loss on their probe examples, and the first-order "
        "predicted change of that "
        "loss (from the applied update, and −lr·g_new·g_old) against the measured one. Collapse: the batch at which "
        "accuracy on the earlier classes first falls below half its task-boundary value.",
        "interference",
        interference,
    ),
    (
        "Unit reuse",
        '"the network presents a progressive amount of sparsity as it trains in more tasks"',
        "At each task end, per hidden unit and task, the share of the task's probe examples that "
        "activate it (active for "
        "a task: at least {active:.0%} of them); the earlier tasks' activation (at the previous task "
        "end) on the units the "
        "new task activates, the Jaccard overlap of the active sets, the units silent on the new task, and how far the "
        "incoming weights of each group moved during the task.",
        "units",
        unit_reuse,
    ),
    (
        "Representation drift",
        "latent maps, compared by eye",
        "Linear CKA (Kornblith et al. 2019) between each hidden layer's representation of the probe "
        "set (every class) at "
        "the end of one task and at the end of each later task.",
        "drift",
        drift,
    ),
]


NUMBERS = {
    "representation": (X.representation_findings, X.representation_rows),
    "head": (X.head_findings, X.head_rows),
    "interference": (X.interference_findings, X.interference_rows),
    "units": (X.unit_findings, X.unit_rows),
    "drift": (X.drift_findings, X.drift_rows),
}
ONSETS = {"interference"}  # the measures set against the batch at which the old classes collapse


REQUIRES = {
    "representation": "linear_correct",
    "head": "head_end",
    "interference": "interference",
    "units": "unit_rate_h1",
    "drift": "cka_h1",
}


def section(pd: ProbeData, title: str, figure_dir: Path, draw: bool = True) -> list[tuple]:
    """Report blocks (as ``report.render`` takes them) answering each question the recorded arrays allow.

    ``draw=False`` reuses figures already on disk (nothing was retrained)."""
    c = pd.meta["config"]
    onsets = onset_batches(pd) if "curve_correct" in pd else {}
    slug = title.replace(" ", "_").replace("=", "")
    blocks: list[tuple] = []
    for heading, quote, how, kind, plot in QUESTIONS:
        if REQUIRES[kind] not in pd or len(pd.tasks) < 2:
            continue
        extra = (onsets,) if kind in ONSETS else ()
        findings, (header, rows) = (f(pd, *extra) for f in NUMBERS[kind])
        blocks.append(("h", 3, heading))
        blocks.append(
            (
                "p",
                f"The study: {quote}. Measured: "
                + how.format(
                    ridge=c["ridge"], knn=c["knn"], fit=c["fit_per_class"], K=c["interference_batches"], active=X.ACTIVE
                ),
            )
        )
        blocks += [("p", f"**Finding:** {s}") for s in findings]
        blocks.append(("table", header, rows))
        stem = figure_dir / f"explain_{slug}_{plot.__name__}"
        if draw or not stem.with_suffix(".png").exists():
            plot(pd, *extra, title, stem)
        blocks.append(("img", stem.with_suffix(".png"), f"{heading} ({title})."))
    return blocks


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> list[Path]:
    """The explanatory figures of a run directory, each configuration of its grid apart; returns the PNGs."""
    from forgetlab import diagnostics as probes
    from forgetlab.outputs.results import load

    res, pd_all = load(run_dir), probes.load(run_dir)
    out = Path(out) if out else Path(run_dir) / "figures"
    varied = {k for k, _ in res.config.grid}
    paths, index = [], 0
    for group, members in res.groups().items():
        idx = list(range(index, index + len(members)))
        index += len(members)
        tag = point_label((k, v) for k, v in group if k in varied)
        blocks = section(pd_all.select(idx), f"{res.config.name} {tag}".strip(), out)
        paths += [b[1] for b in blocks if b[0] == "img"]
    return paths
