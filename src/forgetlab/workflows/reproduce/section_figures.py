"""The figures of each experiment's section, chosen by what its preset declares (``Preset.figures``).

Kinds: ``sparsity_vs_lambda`` / ``sparsity_vs_task`` (the L1 experiments' summary figures); per member
group ``curve``, ``onset`` (sequential runs only), ``updates``, ``probs``, ``matrix``; one latent map:
``latent`` (the last task), ``latent_all_tasks``, or ``latent_by_lambda`` (both hidden layers of the
lambda 0 and lambda 1 groups).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from forgetlab import diagnostics as probes_mod
from forgetlab.config.presets import PRESETS
from forgetlab.diagnostics import figures as fig
from forgetlab.outputs.results import Results
from forgetlab.studies.mnist_mlp import STUDY
from forgetlab.workflows.reproduce.numbers import groups, last_epoch
from forgetlab.workflows.reproduce.runs import Phases

_GROUP_FIGURES = {  # kind -> (figure function, file suffix, caption)
    "curve": (fig.forgetting_curve, "forgetting_curve", "Forgetting curve: probe accuracy on each task."),
    "onset": (
        fig.forgetting_onset,
        "forgetting_onset",
        "First 100 batches of each later task: accuracy (top), relative weight updates (bottom).",
    ),
    "updates": (fig.relative_updates, "relative_updates", "Relative weight updates per layer."),
    "probs": (fig.probability_curve, "probs_curve", "Where the old classes' probability goes during each later task."),
    "matrix": (fig.probability_matrix, "probs_matrix", "True class x predicted probability."),
}


def _sparsity_figures(name: str, kinds, res: Results, pd: probes_mod.ProbeData, d: Path) -> list[tuple[Path, str]]:
    gs = groups(res)
    out = []
    if "sparsity_vs_lambda" in kinds:
        lams = [res.members[ix[0]].hparams["train.l1"] for _, ix in gs]
        sp = [last_epoch(res, ix, 0, "sparsity") for _, ix in gs]
        acc = [last_epoch(res, ix, 0, "val_acc") for _, ix in gs]
        study = {float(k.split("=")[1]): (v[0]["sparsity"], v[0]["val_acc"]) for k, v in STUDY[name].items()}
        out.append(
            (
                fig.sparsity_vs_lambda(
                    lams,
                    sp,
                    acc,
                    study,
                    "L1 on hidden activations, all classes at once",
                    d / f"{name}_sparsity_vs_lambda",
                ),
                "Population sparsity and validation accuracy against lambda.",
            )
        )
    if "sparsity_vs_task" in kinds:
        T = len(res.config.tasks)
        series, dead, study = {}, {}, {}
        for label, ix in gs:
            series[label] = np.array([last_epoch(res, ix, t, "sparsity") for t in range(T)])
            if "sparsity_task" in pd:
                st = pd["sparsity_task"]
                last_rows = [int(np.nonzero(st == t)[0][-1]) for t in range(T)]
                dead[label] = sum(pd[f"dead_units_h{layer}"][last_rows][:, ix] for layer in range(1, pd.n_layers + 1))
            if label in STUDY[name]:
                study[label] = [r["sparsity"] for r in STUDY[name][label]]
        out.append(
            (
                fig.sparsity_vs_task(
                    res.config.tasks,
                    series,
                    study,
                    "Population sparsity after each task",
                    d / f"{name}_sparsity_vs_task",
                    dead,
                ),
                "Sparsity after each task (left) and dead units over both hidden layers (right).",
            )
        )
    return out


def _group_figures(name: str, preset, res: Results, pd: probes_mod.ProbeData, d: Path) -> list[tuple[Path, str]]:
    seq = len(res.config.tasks) > 1
    out = []
    for label, ix in groups(res):
        if preset.figure_groups and label not in preset.figure_groups:
            continue
        sub = pd.select(ix)
        title = f"{name} {label}".strip()
        slug = title.replace(" ", "_").replace("=", "")
        for kind in _GROUP_FIGURES:
            if kind in preset.figures and (kind != "onset" or seq):
                draw, suffix, caption = _GROUP_FIGURES[kind]
                out.append((draw(sub, title, d / f"{slug}_{suffix}"), caption))
    return out


def _latent_picks(kinds, res: Results, pd: probes_mod.ProbeData) -> list[tuple[str, list]]:
    """(panel-group label, [(task, member, layer)]) of the latent map this section shows."""
    gs = groups(res)
    if "latent_by_lambda" in kinds:
        first = {label: ix for label, ix in gs}
        t = len(res.config.tasks) - 1
        return [
            (f"lambda {g.split('=')[1]}", [(t, first[g][0], 1), (t, first[g][0], 2)])
            for g in ("l1=0", "l1=1")
            if g in first
        ]
    if "latent_all_tasks" in kinds:
        return [("", fig.latent_picks(pd, gs[0][1], "all", "last"))]
    if "latent" in kinds:
        return [("", fig.latent_picks(pd, gs[0][1], "last", "last"))]
    return []


def _latent_figure(pd, run_dir, picks_by_label, title, stem) -> tuple[Path, float]:
    """One latent-map figure from several groups' picks; returns its PNG and the t-SNE seconds."""
    t0 = time.perf_counter()
    panels = []
    for label, picks in picks_by_label:
        emb = fig.embeddings(pd, run_dir, picks)
        for t, e, layer in picks:
            where = fig.task_label(t, pd.tasks[t]) if len(pd.tasks) > 1 else "end of training"
            panels.append((f"{label + ', ' if label else ''}hidden {layer}, {where}", emb[(t, e, layer)]))
    t_tsne = time.perf_counter() - t0
    ncols = max(len(p) for _, p in picks_by_label)
    return fig.latent_map(panels, pd["latent_y"], title, stem, ncols=ncols if ncols > 1 else 2), t_tsne


def section_figures(
    name: str, res: Results, pd: probes_mod.ProbeData, run_dir: Path, out: Path, phases: Phases
) -> list[tuple[Path, str]]:
    """The figures the preset declares for this experiment: (PNG path, caption)."""
    t0 = time.perf_counter()
    tsne_s = 0.0
    preset = PRESETS[name]
    d = out / "figures"
    figs = _sparsity_figures(name, preset.figures, res, pd, d) + _group_figures(name, preset, res, pd, d)
    picks = _latent_picks(preset.figures, res, pd)
    if picks and "latent_y" in pd:
        png, tsne_s = _latent_figure(pd, run_dir, picks, f"{name}, seed {res.members[0].seed}", d / f"{name}_latent")
        figs.append((png, "Latent space (t-SNE), coloured by class."))
    phases.tsne += tsne_s
    phases.figures += time.perf_counter() - t0 - tsne_s
    return figs
