"""The study's figures, drawn from saved arrays only (``forgetlab plot RUN_DIR`` never trains).

One style everywhere (plotting.py): colour-blind-safe colours, labelled axes, task boundaries as grey
dotted lines, mean over seeds with a +-1 std band; every figure written as PNG and PDF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forgetlab.diagnostics import ProbeData
from forgetlab.diagnostics.latent_maps import embeddings, latent_map, latent_picks
from forgetlab.outputs.formatting import point_label
from forgetlab.outputs.plotting import PALETTE, band, boundaries, pyplot, save, task_label


def task_starts(pd: ProbeData) -> list[int]:
    steps, tasks = pd["point_step"], pd["point_task"]
    return [int(steps[tasks == t].min()) for t in range(len(pd.tasks)) if (tasks == t).any()]


# ---------------------------------------------------------------------------------------------
# Forgetting curves
# ---------------------------------------------------------------------------------------------


def forgetting_curve(pd: ProbeData, title: str, stem: Path) -> Path:
    """Accuracy on each seen task over the whole run, task boundaries marked."""
    plt = pyplot()
    acc = pd.task_accuracy()
    x = pd["point_step"]
    fig, ax = plt.subplots(figsize=(7.0, 3.0))
    for j, classes in enumerate(pd.tasks):
        band(ax, x, acc[:, :, j], PALETTE[j % len(PALETTE)], task_label(j, classes))
    boundaries(ax, task_starts(pd))
    ax.set(xlabel="training batch (all tasks)", ylabel="probe accuracy", ylim=(-0.02, 1.02), title=title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save(fig, stem)


def onset_batches(pd: ProbeData, fraction: float = 0.5) -> dict[int, np.ndarray]:
    """Per task t >= 1: per member, the first batch of task t at which accuracy on the classes of all
    earlier tasks falls below ``fraction`` of its value at the task boundary (NaN if it never does)."""
    out = {}
    steps, ptask = pd["point_task_step"], pd["point_task"]
    for t in range(1, len(pd.tasks)):
        old = [c for task in pd.tasks[:t] for c in task]
        sel = ptask == t
        acc = pd.task_accuracy([old])[sel, :, 0]  # [points, E]
        ts = steps[sel]
        onset = np.full(acc.shape[1], np.nan)
        for e in range(acc.shape[1]):
            below = np.nonzero(acc[1:, e] < fraction * acc[0, e])[0]
            if len(below):
                onset[e] = ts[1:][below[0]]
        out[t] = onset
    return out


def forgetting_onset(pd: ProbeData, title: str, stem: Path, window: int = 100) -> Path:
    """The first ``window`` batches of each later task: accuracy on the old and the new classes (top) and
    the relative weight updates of every layer (bottom), with the batch of the half-drop marked."""
    plt = pyplot()
    T = len(pd.tasks)
    onsets = onset_batches(pd)
    fig, axes = plt.subplots(2, T - 1, figsize=(2.3 * (T - 1) + 0.8, 4.4), sharex=True, sharey="row", squeeze=False)
    names = pd.meta.get("update_names", [])
    for col, t in enumerate(range(1, T)):
        old = [c for task in pd.tasks[:t] for c in task]
        sel = (pd["point_task"] == t) & (pd["point_task_step"] <= window)
        acc = pd.task_accuracy([old, list(pd.tasks[t])])[sel]
        x = pd["point_task_step"][sel]
        ax = axes[0, col]
        band(ax, x, acc[:, :, 0], PALETTE[3], "old classes")
        band(ax, x, acc[:, :, 1], PALETTE[0], "new classes")
        ax.set_title(task_label(t, pd.tasks[t]))
        on = onsets[t]
        if np.isfinite(on).any():
            for a in axes[:, col]:
                a.axvline(np.nanmean(on), color="#444444", ls="--", lw=1)
        if "update_ratio" in pd:
            ur = pd["update_ratio"][pd["update_task"] == t][:window]  # [steps, E, params]
            xs = np.arange(1, len(ur) + 1)
            layers = _layer_order(names)
            for j in sorted(range(len(names)), key=lambda j: (layers.index(param_layer(names[j])[0]), j)):
                layer, kind = param_layer(names[j])
                if kind == "weight" and ur.shape[0]:
                    band(
                        axes[1, col],
                        xs,
                        ur[:, :, j],
                        PALETTE[layers.index(layer) % len(PALETTE)],
                        _param_label(names[j]),
                        log=True,
                    )
            axes[1, col].set_yscale("log")
        axes[1, col].set_xlabel("batch within task")
    axes[0, 0].set_ylabel("probe accuracy")
    axes[1, 0].set_ylabel("relative update\n‖ΔW‖/‖W‖ (weights)")
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes[1, -1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(
        f"{title}: first {window} batches of each later task "
        f"(dashed: first batch with old-class accuracy < half its task-boundary value, mean over seeds)",
        y=1.01,
    )
    return save(fig, stem)


# ---------------------------------------------------------------------------------------------
# Relative updates
# ---------------------------------------------------------------------------------------------


def param_layer(name: str) -> tuple[str, str]:
    """(layer, "weight" or "bias") of a parameter name: ``fcs.0.weight`` -> ("fc1", "weight"); LeNet-5's
    ``conv_w.1`` / ``conv_b.1`` -> ("conv2", "weight" / "bias")."""
    parts = name.removeprefix("net.").split(".")  # a user module's parameters sit under net.
    if parts[0] in ("conv_w", "conv_b") and len(parts) == 2:
        return f"conv{int(parts[1]) + 1}", "weight" if parts[0] == "conv_w" else "bias"
    if parts[0] in ("fcs", "norms") and len(parts) == 3:
        return f"{parts[0][:-1]}{int(parts[1]) + 1}", parts[2]  # fcs.0 -> fc1, norms.1 -> norm2
    if parts[0] == "head" and len(parts) == 2:
        return "head", parts[1]
    return ".".join(parts[:-1]) or name, "bias" if name.endswith("bias") else "weight"


def _layer_order(names: list[str]) -> list[str]:
    """Layers in data-flow order: convolutions, then the fully connected stack as named."""
    layers = list(dict.fromkeys(param_layer(n)[0] for n in names))
    return sorted(layers, key=lambda s: (not s.startswith("conv"), layers.index(s)))


def _param_label(name: str) -> str:
    return " ".join(param_layer(name))


def _smooth(v: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or len(v) < k:
        return v
    kernel = np.ones(k)
    norm = np.convolve(np.ones(len(v)), kernel, mode="same")  # fewer neighbours at the ends: no droop
    return np.apply_along_axis(lambda a: np.convolve(a, kernel, mode="same") / norm, 0, v)


def relative_updates(pd: ProbeData, title: str, stem: Path, smooth: int = 25) -> Path:
    """||W_after - W_before|| / ||W_before|| of every layer over the run (weights solid, biases dashed)."""
    plt = pyplot()
    ur = pd["update_ratio"]
    names = pd.meta["update_names"]
    x = np.arange(1, len(ur) + 1)
    fig, ax = plt.subplots(figsize=(7.0, 3.2))
    layers = _layer_order(names)
    for j in sorted(range(len(names)), key=lambda j: (layers.index(param_layer(names[j])[0]), j)):
        layer, kind = param_layer(names[j])
        band(
            ax,
            x,
            _smooth(ur[:, :, j], smooth),
            PALETTE[layers.index(layer) % len(PALETTE)],
            _param_label(names[j]),
            ls="-" if kind == "weight" else "--",
            lw=1.1,
            log=True,
        )
    starts = [
        int(np.argmax(pd["update_task"] == t)) + 1 for t in range(len(pd.tasks)) if (pd["update_task"] == t).any()
    ]
    boundaries(ax, starts)
    ax.set_yscale("log")
    ax.set(
        xlabel="training batch (all tasks)", ylabel=f"relative update ‖ΔW‖/‖W‖\n(moving mean of {smooth})", title=title
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save(fig, stem)


# ---------------------------------------------------------------------------------------------
# Class probabilities
# ---------------------------------------------------------------------------------------------


def probability_curve(pd: ProbeData, title: str, stem: Path, window: int | None = None) -> Path:
    """For probe examples of the old classes, during each later task: the mean probability the network
    gives to their true class, to the other old classes, to the current task's classes and to unseen ones."""
    plt = pyplot()
    T = len(pd.tasks)
    later = list(range(1, T)) or [0]
    fig, axes = plt.subplots(1, len(later), figsize=(2.3 * len(later) + 0.8, 2.8), sharey=True, squeeze=False)
    pc = pd["prob_curve"]  # [P, E, true, out]
    handles = {}
    C = pc.shape[-1]
    for col, t in enumerate(later):
        ax = axes[0, col]
        old = [c for task in pd.tasks[:t] for c in task] or list(pd.tasks[0])
        new = list(pd.tasks[t]) if t else []
        unseen = [c for c in range(C) if c not in old and c not in new]
        sel = pd["point_task"] == t
        if window:
            sel &= pd["point_task_step"] <= window
        x = pd["point_task_step"][sel]
        p = pc[sel][:, :, old]  # [P, E, old true classes, out]
        true = np.stack([p[:, :, i, c] for i, c in enumerate(old)], -1).mean(-1)
        other_old = np.stack([p[:, :, i, [o for o in old if o != c]].sum(-1) for i, c in enumerate(old)], -1).mean(-1)
        parts = [("true class", true, PALETTE[0]), ("other old classes", other_old, PALETTE[2])]
        if new:
            parts.append(("current task's classes", p[:, :, :, new].sum(-1).mean(-1), PALETTE[3]))
        if unseen:
            parts.append(("unseen classes", p[:, :, :, unseen].sum(-1).mean(-1), PALETTE[9]))
        for label, v, color in parts:
            band(ax, x, v, color, label)
            handles[label] = ax.get_lines()[-1]
        ax.set(title=task_label(t, pd.tasks[t]), xlabel="batch within task (symlog)", ylim=(-0.02, 1.02))
        if window is None:
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlim(0, max(1, x.max()))
    axes[0, 0].set_ylabel("mean probability\n(examples of old classes)")
    axes[0, -1].legend(handles.values(), handles.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title, y=1.02)
    return save(fig, stem)


def probability_matrix(pd: ProbeData, title: str, stem: Path) -> Path:
    """At the end of each task: mean predicted probability (columns) for probe examples of each true
    class (rows), averaged over seeds."""
    plt = pyplot()
    m = np.nanmean(pd["prob_task_end"], 1)  # [T, true, out]
    T = len(m)
    fig, axes = plt.subplots(1, T, figsize=(2.1 * T + 0.9, 2.5), squeeze=False)
    for t in range(T):
        ax = axes[0, t]
        im = ax.imshow(m[t], vmin=0, vmax=1, cmap="viridis")
        ax.set_title(task_label(t, pd.tasks[t]) if len(pd.tasks) > 1 else "end of training")
        ax.set_xticks(range(m.shape[-1]))
        ax.set_yticks(range(m.shape[-1]))
        ax.tick_params(labelsize=7, length=0)
        ax.grid(False)
        ax.set_xlabel("predicted class")
    axes[0, 0].set_ylabel("true class")
    fig.colorbar(im, ax=list(axes[0]), shrink=0.85, label="mean probability")
    fig.suptitle(f"{title}: mean predicted probability at the end of each task", y=0.98)
    return save(fig, stem)


# ---------------------------------------------------------------------------------------------
# Sparsity
# ---------------------------------------------------------------------------------------------


def sparsity_vs_lambda(lams, ours_sparsity, ours_acc, study: dict | None, title: str, stem: Path) -> Path:
    """Population sparsity and validation accuracy against the L1 lambda; ``ours_*`` are [lambdas, seeds],
    ``study`` maps lambda -> (sparsity, accuracy)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8))
    x = np.asarray(lams, dtype=float)
    for ax, ours, key, label in (
        (axes[0], ours_sparsity, 0, "population sparsity"),
        (axes[1], ours_acc, 1, "validation accuracy"),
    ):
        ours = np.asarray(ours, dtype=float)
        mean, sd = ours.mean(1), ours.std(1, ddof=1) if ours.shape[1] > 1 else np.zeros(len(ours))
        ax.errorbar(x, mean, yerr=sd, color=PALETTE[0], marker="o", ms=4, capsize=3, label="forgetlab (mean ± std)")
        if study:
            sx = [k for k in x if k in study]
            ax.plot(
                sx,
                [study[k][key] for k in sx],
                ls="none",
                marker="D",
                mfc="none",
                color=PALETTE[3],
                ms=6,
                label="study (one run)",
            )
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set(xlabel="L1 lambda on hidden activations", ylabel=label)
    axes[0].legend(loc="upper left")  # the data rise to the right: keep the legend clear of it
    fig.suptitle(title, y=1.02)
    return save(fig, stem)


def sparsity_vs_task(
    tasks,
    series: dict[str, np.ndarray],
    study: dict[str, list] | None,
    title: str,
    stem: Path,
    dead: dict[str, np.ndarray] | None = None,
) -> Path:
    """Population sparsity at the end of each task (``series``: label -> [tasks, seeds]); the study's
    values as open markers; optionally the dead units at each task end in a second panel."""
    plt = pyplot()
    ncols = 2 if dead else 1
    fig, axes = plt.subplots(1, ncols, figsize=(3.6 * ncols + 0.8, 2.8), squeeze=False, gridspec_kw={"wspace": 0.45})
    x = np.arange(1, len(tasks) + 1)
    for i, (label, v) in enumerate(series.items()):
        v = np.asarray(v, dtype=float)
        sd = v.std(1, ddof=1) if v.shape[1] > 1 else np.zeros(len(v))
        axes[0, 0].errorbar(
            x, v.mean(1), yerr=sd, color=PALETTE[i], marker="o", ms=4, capsize=3, label=f"forgetlab {label}"
        )
        if study and label in study:
            axes[0, 0].plot(
                x, study[label], ls="none", marker="D", mfc="none", ms=6, color=PALETTE[i], label=f"study {label}"
            )
        if dead and label in dead:
            d = np.asarray(dead[label], dtype=float)
            dsd = d.std(1, ddof=1) if d.shape[1] > 1 else np.zeros(len(d))
            axes[0, 1].errorbar(x, d.mean(1), yerr=dsd, color=PALETTE[i], marker="o", ms=4, capsize=3, label=label)
    ticks = [f"{t + 1}\n[{','.join(map(str, c))}]" for t, c in enumerate(tasks)]
    for ax in axes[0]:
        ax.set_xticks(x, ticks)
        ax.set_xlabel("end of task")
    axes[0, 0].set_ylabel("population sparsity")
    axes[0, 0].legend(loc="lower right")
    if dead:
        axes[0, 1].set_ylabel("dead hidden units\n(zero on every probe example)")
    fig.suptitle(title, y=1.02)
    return save(fig, stem)


# ---------------------------------------------------------------------------------------------
# All figures of one run directory
# ---------------------------------------------------------------------------------------------


def default_latent_layers(config) -> str:
    """Both hidden layers for the L1 experiments (as the study shows them), the last one otherwise."""
    return "all" if any(k == "train.l1" for k, _ in config.grid) or config.train.l1 > 0 else "last"


def plot_run(
    run_dir: str | Path, out: str | Path | None = None, latent_tasks: str = "all", latent_layers: str | None = None
) -> list[Path]:
    """Every figure of a run directory written with probes, from its saved files; returns the PNGs."""
    from forgetlab import diagnostics as probes_mod
    from forgetlab.outputs.results import load

    run_dir = Path(run_dir)
    res = load(run_dir)
    pd_all = probes_mod.load(run_dir)
    from forgetlab.outputs.files import writable_dir  # a writable folder, or one error line before any figure

    out = writable_dir(Path(out) if out else run_dir / "figures")
    name = res.config.name
    varied = {k for k, _ in res.config.grid}
    paths = []
    index = 0
    layers_mode = latent_layers or default_latent_layers(res.config)
    for group, ms in res.groups().items():
        idx = list(range(index, index + len(ms)))
        index += len(ms)
        pd = pd_all.select(idx)
        tag = point_label((k, v) for k, v in group if k in varied)
        title = f"{name} {tag}".strip()
        slug = title.replace(" ", "_").replace("=", "")
        seq = len(pd.tasks) > 1
        if "curve_correct" in pd:
            paths.append(forgetting_curve(pd, title, out / f"{slug}_forgetting_curve"))
            if seq:
                paths.append(forgetting_onset(pd, title, out / f"{slug}_forgetting_onset"))
            paths.append(probability_curve(pd, title, out / f"{slug}_probs_curve"))
            paths.append(probability_matrix(pd, title, out / f"{slug}_probs_matrix"))
        if "update_ratio" in pd:
            paths.append(relative_updates(pd, title, out / f"{slug}_relative_updates"))
        if "latent_y" in pd:
            picks = latent_picks(pd_all, idx, latent_tasks, layers_mode)
            tasks = sorted({t for t, _, _ in picks})
            emb = embeddings(pd_all, run_dir, picks)
            panels = [
                (
                    f"hidden {layer}, " + (task_label(t, pd.tasks[t]) if seq else "end of training"),
                    emb[(t, idx[0], layer)],
                )
                for t, _, layer in picks
            ]
            paths.append(
                latent_map(
                    panels,
                    pd["latent_y"],
                    f"{title}, seed {ms[0].seed}",
                    out / f"{slug}_latent",
                    ncols=len(tasks) if len(tasks) > 1 else 2,
                )
            )
    return paths
