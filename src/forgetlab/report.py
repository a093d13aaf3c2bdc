"""``forgetlab reproduce``: run every experiment of the study, then write REPORT.md and report.html.

Data flows top to bottom: plan and run (cached by config identity), derived numbers (tables, the
forgetting onset), figures, then the report rendered as Markdown and as self-contained HTML.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import statistics
import time
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import Callable

import numpy as np

from . import config as cfg
from . import explain_report
from . import figures as fig
from . import probes as probes_mod
from .results import Results, atomic_write, load as load_results
from .study import L1_LATENT_REPEAT, SECTIONS, SOURCE, STUDY, STUDY_TEXT

METRICS = ("val_acc", "val_loss", "train_loss", "train_acc", "sparsity")
LABELS = {"val_acc": "val acc", "val_loss": "val loss", "train_loss": "train loss", "train_acc": "train acc",
          "sparsity": "sparsity"}
LENET = ("lenet-concurrent", "lenet-sequential")
EXPLAINED = "mlp-sequential"  # the experiment whose forgetting the explanatory probes take apart

# ---------------------------------------------------------------------------------------------
# Running (with a cache keyed by the config's identity and the probe settings)
# ---------------------------------------------------------------------------------------------


@dataclass
class Phases:
    """Seconds per phase; ``training`` excludes the time spent inside probes."""
    training: float = 0.0
    probes: float = 0.0
    tsne: float = 0.0
    figures: float = 0.0
    report: float = 0.0
    cached: list[str] = field(default_factory=list)


def _probe_digest(pc: probes_mod.ProbeConfig) -> str:
    return hashlib.sha256(json.dumps(asdict(pc), sort_keys=True).encode()).hexdigest()[:6]


def _complete(run_dir: Path) -> bool:
    try:
        ok = json.loads((run_dir / "results.json").read_text()).get("status") == "complete"
    except (OSError, ValueError):
        return False
    return ok and (run_dir / "probes.json").exists()


def run_all(presets: list[str], seeds: int, out: Path, *, data_dir=None, device="auto", epochs=None,
            probe_config: probes_mod.ProbeConfig | None = None, log: Callable[[str], None] = print,
            phases: Phases | None = None,
            progress: bool = False) -> dict[str, tuple[Results, probes_mod.ProbeData, Path]]:
    """Every preset's Results and ProbeData, from the cache when its identity matches, else trained.

    A member already trained by an earlier preset of this plan (same ``member_identity``: the lambda-0
    members of the L1 presets are the plain MLP presets) is reused instead of trained again.
    """
    from . import api

    pc = probe_config or probes_mod.ProbeConfig()
    phases = phases or Phases()
    done: dict[str, tuple[Results, probes_mod.ProbeData, int]] = {}  # member id -> source and index
    runs = {}
    for name in presets:
        config = api.make_config(name, seeds=list(range(seeds)), epochs=epochs, device=device, data_dir=data_dir)
        run_dir = out / "runs" / f"{name}-{cfg.identity(config)[:12]}-{_probe_digest(pc)}"
        ids = [cfg.member_identity(config, m) for m in cfg.members(config)]
        if _complete(run_dir):
            res, pd = load_results(run_dir), probes_mod.load(run_dir)
            phases.cached.append(name)
            log(f"  {name}: cached ({run_dir})")
        elif all(i in done for i in ids):
            res0, pd0, _ = done[ids[0]]
            index = [done[i][2] for i in ids]
            res = Results(config, [done[i][0].members[done[i][2]] for i in ids], device=res0.device)
            pd = pd0.select(index) if all(done[i][1] is pd0 for i in ids) else None
            if pd is None:  # members from several sources: not needed by the study's presets
                raise RuntimeError(f"{name}: members come from several runs")
            res.save(run_dir)
            pd.save(run_dir)
            log(f"  {name}: its {len(ids)} members were trained with an earlier preset; reused")
        else:
            t0 = time.perf_counter()
            res = api.run(config, out=run_dir, probes=pc, progress=progress)
            pd = res.probes
            wall = time.perf_counter() - t0
            phases.probes += pd.meta["seconds"]
            phases.training += wall - pd.meta["seconds"]
            log(f"  {name}: {len(ids)} members trained in {wall:.1f} s "
                f"(probes {pd.meta['seconds']:.1f} s of it)")
        for i, member_id in enumerate(ids):
            done.setdefault(member_id, (res, pd, i))
        runs[name] = (res, pd, run_dir)
    return runs


# ---------------------------------------------------------------------------------------------
# Derived numbers
# ---------------------------------------------------------------------------------------------


def group_label(res: Results, group: tuple) -> str:
    varied = {k for k, _ in res.config.grid}
    return " ".join(f"{k.split('.')[-1]}={v:g}" for k, v in group if k in varied)


def groups(res: Results) -> list[tuple[str, list[int]]]:
    """(label, member indices) per configuration, in member order."""
    out: dict[str, list[int]] = {}
    for i, m in enumerate(res.members):
        out.setdefault(group_label(res, m.group), []).append(i)
    return list(out.items())


def last_epoch(res: Results, index: list[int], task: int, metric: str) -> list[float]:
    key = "sparsity_all" if metric == "sparsity" else metric
    return [getattr(res.members[i].tasks[task], key)[-1] for i in index]


def mean_sd(values) -> tuple[float, float]:
    values = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def differs(metric: str, ours: list[float], study: float) -> bool:
    """Outside our seed spread: |mean - study| > 2 std, and beyond a floor that rounding can explain."""
    m, sd = mean_sd(ours)
    floor = 0.1 * abs(study) if "loss" in metric else 0.005
    return abs(m - study) > max(2 * sd, floor)


L1_COLLAPSE = ("at lambda 2 our plain SGD (lr 0.01, momentum 0.9) turns most hidden units off for good in the first "
               "epoch (10 seeds: 74-90 of 120 layer-1 units dead after epoch 1, 5 seeds stuck at the constant "
               "prediction 0.1135, the rest 0.35-0.81); lr 0.001 and un-normalised pixels collapse too, Adam lr 0.001 "
               "does not (0.83 ± 0.07, sparsity 0.946, 5 seeds): the penalty is the study's (lambda (mean|h1| + "
               "mean|h2|) after ReLU), its unstated optimizer is the likely difference (benchmarks/l1_collapse.py)")


def explain(metric: str, preset: str, task: int, ours: float, study: float, label: str = "") -> str:
    """One line on why this number can differ from the study's (which is one run of its own code)."""
    seq = "sequential" in preset
    lam = re.search(r"\bl1=([0-9.e+-]+)", label)
    if preset == "mlp-l1-concurrent" and lam and float(lam.group(1)) >= 2:
        return L1_COLLAPSE
    if metric == "train_loss":
        return ("the study's losses are not per-example mean cross-entropies (its concurrent train loss 0.0117 at "
                "train acc 0.9786 is below the 0.0148 that 2.1% errors alone would cost), so only the trend compares")
    if metric == "val_loss":
        if seq and task > 0:
            return ("the loss on forgotten classes is set by a few very confident errors (logit scale), which "
                    "changes with initialisation and training length far more than accuracy does")
        return "loss normalisation in the study is not stated (see train loss); compare accuracies instead"
    if metric == "train_acc":
        return ("ours is measured over the epoch in training mode (dropout active, weights still moving); the study "
                "does not say where it measured")
    if metric == "sparsity":
        if seq:
            return ("the study counts zeros over its test loader for this task; ours over the eval data of the seen "
                    "classes; the count depends on which classes are included")
        return ("population sparsity depends on the optimizer, which the study does not state (lambda 0 / 1: our "
                "SGD 0.51 / 0.956, Adam lr 0.001 0.58 / 0.936 over 5 seeds; benchmarks/l1_collapse.py); its L1 loop also "
                "runs epochs 1..4 (`range(1, epochs)`), ours 5")
    if metric == "val_acc":
        if seq and task > 0:
            return ("after forgetting, val acc is about the share of the current task's classes in the seen eval "
                    "data; any residual accuracy on old classes moves it")
        return "the study is a single seed; the difference is a property of its run (data order, initialisation)"
    return "the study is a single run"


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
                if not np.isfinite(on[e]):
                    continue
                s = int(on[e])
                steps = np.arange(1, len(u) + 1)
                early = (steps <= 50) & (np.abs(steps - s) > 1)
                win = np.abs(steps - s) <= 1
                coef = np.polyfit(steps[early], u[early, e], 2)
                resid = u[early, e] - np.polyval(coef, steps[early])
                at = u[win, e].mean() - np.polyval(coef, steps[win]).mean()
                z.append(at / resid.std(ddof=3))
                ratio.append(10 ** (u[win, e].mean() - np.median(u[steps > 50, e])))
        rows.append({"task": t, "boundary_acc": mean_sd(b0.tolist()), "onset": mean_sd(on.tolist()),
                     "onsets": on.tolist(), "z": mean_sd(z), "ratio": mean_sd(ratio)})
    return rows


# ---------------------------------------------------------------------------------------------
# Figures of each section
# ---------------------------------------------------------------------------------------------


def _latent_figure(res, pd, run_dir, picks_by_label, title, stem) -> tuple[Path, float]:
    """One latent-map figure from several groups' picks; returns its PNG and the t-SNE seconds."""
    t0 = time.perf_counter()
    panels = []
    for label, picks in picks_by_label:
        emb = fig.embeddings(pd, run_dir, picks)
        for t, e, layer in picks:
            where = fig._task_label(t, pd.tasks[t]) if len(pd.tasks) > 1 else "end of training"
            panels.append((f"{label + ', ' if label else ''}hidden {layer}, {where}", emb[(t, e, layer)]))
    t_tsne = time.perf_counter() - t0
    ncols = max(len(p) for _, p in picks_by_label)
    return fig.latent_map(panels, pd["latent_y"], title, stem, ncols=ncols if ncols > 1 else 2), t_tsne


def section_figures(name: str, res: Results, pd: probes_mod.ProbeData, run_dir: Path, out: Path,
                    phases: Phases) -> list[tuple[Path, str]]:
    """The figures the study shows for this experiment: (PNG path, caption)."""
    t0 = time.perf_counter()
    tsne_s = 0.0
    figs: list[tuple[Path, str]] = []
    gs = groups(res)
    seq = len(res.config.tasks) > 1
    d = out / "figures"
    if name == "mlp-l1-concurrent":
        lams = [res.members[ix[0]].hparams["train.l1"] for _, ix in gs]
        sp = [last_epoch(res, ix, 0, "sparsity") for _, ix in gs]
        acc = [last_epoch(res, ix, 0, "val_acc") for _, ix in gs]
        study = {float(k.split("=")[1]): (v[0]["sparsity"], v[0]["val_acc"]) for k, v in STUDY[name].items()}
        figs.append((fig.sparsity_vs_lambda(lams, sp, acc, study, "L1 on hidden activations, all classes at once",
                                            d / f"{name}_sparsity_vs_lambda"), "Population sparsity and validation accuracy against lambda."))
    if name == "mlp-l1-sequential":
        series, dead, study = {}, {}, {}
        for label, ix in gs:
            series[label] = np.array([last_epoch(res, ix, t, "sparsity") for t in range(len(res.config.tasks))])
            if "sparsity_task" in pd:
                st = pd["sparsity_task"]
                last_rows = [int(np.nonzero(st == t)[0][-1]) for t in range(len(res.config.tasks))]
                dead[label] = sum(pd[f"dead_units_h{l}"][last_rows][:, ix] for l in range(1, pd.n_layers + 1))
            if label in STUDY[name]:
                study[label] = [r["sparsity"] for r in STUDY[name][label]]
        figs.append((fig.sparsity_vs_task(res.config.tasks, series, study, "Population sparsity after each task",
                                          d / f"{name}_sparsity_vs_task", dead),
                     "Sparsity after each task (left) and dead units over both hidden layers (right)."))
    curves = {"mlp-sequential": ("curve", "onset", "updates", "probs", "matrix"),
              "mlp-bn-sequential": ("curve", "onset", "updates", "probs", "matrix"),
              "mlp-ln-sequential": ("curve", "onset", "updates"),
              "mlp-dropout-sequential": ("curve", "onset", "matrix"),
              "mlp-l1-sequential": ("onset",), "mlp-concurrent": ("matrix",), "lenet-sequential": ("curve", "onset", "updates")}
    for label, ix in gs:
        if name == "mlp-l1-sequential" and label != "l1=1":
            continue  # lambda 0 is the plain MLP of "Sequential Training"
        sub = pd.select(ix)
        title = f"{name} {label}".strip()
        slug = title.replace(" ", "_").replace("=", "")
        want = curves.get(name, ())
        if "curve" in want:
            figs.append((fig.forgetting_curve(sub, title, d / f"{slug}_forgetting_curve"), "Forgetting curve: probe accuracy on each task."))
        if "onset" in want and seq:
            figs.append((fig.forgetting_onset(sub, title, d / f"{slug}_forgetting_onset"),
                         "First 100 batches of each later task: accuracy (top), relative weight updates (bottom)."))
        if "updates" in want:
            figs.append((fig.relative_updates(sub, title, d / f"{slug}_relative_updates"), "Relative weight updates per layer."))
        if "probs" in want:
            figs.append((fig.probability_curve(sub, title, d / f"{slug}_probs_curve"),
                         "Where the old classes' probability goes during each later task."))
        if "matrix" in want:
            figs.append((fig.probability_matrix(sub, title, d / f"{slug}_probs_matrix"), "True class x predicted probability."))
    # latent maps: the ones the study shows
    first = {label: ix for label, ix in gs}
    if name == "mlp-l1-concurrent":
        picks = [(f"lambda {l.split('=')[1]}", [(0, first[l][0], 1), (0, first[l][0], 2)]) for l in ("l1=0", "l1=1") if l in first]
    elif name == "mlp-l1-sequential":
        T = len(res.config.tasks) - 1
        picks = [(f"lambda {l.split('=')[1]}", [(T, first[l][0], 1), (T, first[l][0], 2)]) for l in ("l1=0", "l1=1") if l in first]
    else:
        ix = gs[0][1]
        tasks = "all" if name in ("mlp-sequential", "mlp-dropout-sequential") else "last"
        picks = [("", fig.latent_picks(pd, ix, tasks, "last"))]
    if picks and "latent_y" in pd:
        png, s = _latent_figure(res, pd, run_dir, picks, f"{name}, seed {res.members[0].seed}", d / f"{name}_latent")
        tsne_s += s
        figs.append((png, "Latent space (t-SNE), coloured by class."))
    phases.tsne += tsne_s
    phases.figures += time.perf_counter() - t0 - tsne_s
    return figs


# ---------------------------------------------------------------------------------------------
# The report: blocks rendered to Markdown and to self-contained HTML
# ---------------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "–"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def _ms(values) -> str:
    m, sd = mean_sd(values)
    return f"{_fmt(m)} ± {_fmt(sd)}"


def comparison(name: str, res: Results) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and flag notes of the study-vs-ours table of one experiment."""
    study = STUDY.get(name, {})
    notes, rows, said = [], [], {}
    metrics = [m for m in METRICS if m != "sparsity"] + (["sparsity"] if "l1" in name else [])
    header = ["config", "task"] + [f"{LABELS[m]} {who}" for m in metrics for who in ("ours", "study")]
    for label, ix in groups(res):
        ref = study.get(label, [])
        for t, classes in enumerate(res.config.tasks):
            row = [label or "–", f"{t + 1} [{','.join(map(str, classes))}]" if len(res.config.tasks) > 1 else "all"]
            for m in metrics:
                ours = last_epoch(res, ix, t, m)
                s = ref[t].get(m) if t < len(ref) else None
                cell = _ms(ours)
                if s is not None and len(ours) and differs(m, ours, s):
                    cell += " ⚑"
                    why = explain(m, name, t, mean_sd(ours)[0], s, label)
                    if why in said:  # one cause behind several flags: spell it out once
                        why = f"the same cause as the {said[why]} flag above"
                    else:
                        said[why] = f"{label + ' ' if label else ''}task {t + 1} {LABELS[m]}"
                    notes.append(f"⚑ {label + ' ' if label else ''}task {t + 1} {LABELS[m]}: ours {_ms(ours)}, study "
                                 f"{_fmt(s)}: {why}.")
                row += [cell, _fmt(s) if s is not None else "–"]
            rows.append(row)
    return header, rows, notes


def build_blocks(runs, figs_by_preset, onsets, phases: Phases, seeds: int, wall: float, device: str,
                 explained: list[tuple] = ()) -> list[tuple]:
    B: list[tuple] = [("h", 1, "Catastrophic forgetting in an MNIST MLP: the study, reproduced by forgetlab")]
    B.append(("p", f"Every experiment of the study ({SOURCE}) re-run with {seeds} seeds each (mean ± std over "
                   f"seeds); the study's numbers (one run each, its last epoch) are typed in `forgetlab/study.py`. "
                   f"⚑ marks our mean differing from the study's value by more than two seed standard deviations "
                   f"(and more than 0.005 in accuracy/sparsity, 10% in loss); each flag is explained below its table. "
                   f"Probe set: {probes_mod.ProbeConfig().per_class} validation examples per class; curves every "
                   f"batch for the first {probes_mod.ProbeConfig().first} batches of a task, then every "
                   f"{probes_mod.ProbeConfig().every}. Latent maps: t-SNE of "
                   f"{probes_mod.ProbeConfig().latent_per_class * 10} validation examples, first seed."))
    B.append(("table", ["phase", "seconds"], [[k, f"{getattr(phases, k):.1f}"] for k in
                                             ("training", "probes", "tsne", "figures", "report")] +
              [["total (wall)", f"{wall:.1f}"]]))
    B.append(("p", f"Device: {device}. Cached experiments: {', '.join(phases.cached) or 'none'}."))
    current = None
    for top, sub, name in SECTIONS + [("Beyond the study", "LeNet-5", n) for n in LENET]:
        if name not in runs:
            continue
        res, pd, run_dir = runs[name]
        if top != current:
            B.append(("h", 2, top))
            current = top
        B.append(("h", 3, f"{sub} (`{name}`)"))
        B.append(("p", f"Study: {STUDY_TEXT.get(name, 'not in the study text (the conv net of its earlier part).')}"))
        header, rows, notes = comparison(name, res)
        B.append(("table", header, rows))
        for n in notes:
            B.append(("p", n))
        if name == "mlp-l1-concurrent":
            B.append(("p", f"The study's latent-space repeat gave sparsity {L1_LATENT_REPEAT['l1=0']} (lambda 0) and "
                           f"{L1_LATENT_REPEAT['l1=1']} (lambda 1)."))
        if name in onsets:
            B.append(("p", "**When does the old task collapse, and do the weight updates show it?** Batch of the "
                           "task at which accuracy on all earlier classes first falls below half its value at the "
                           "task boundary; z: the relative weight update there against a smooth trend through the "
                           "task's first 50 batches (|z| < 2: nothing special); ratio: that update over the median "
                           "update after batch 50."))
            rows, verdicts = [], []
            for label, table in onsets[name]:
                for r in table:
                    z = r["z"][0]
                    verdict = "–" if math.isnan(z) else ("stands out" if abs(z) >= 2 else "nothing special")
                    verdicts.append(verdict)
                    rows.append([label or "–", str(r["task"] + 1), _ms([r["boundary_acc"][0]]).split(" ±")[0],
                                 f"{r['onset'][0]:.1f} ± {r['onset'][1]:.1f} "
                                 f"({', '.join('–' if math.isnan(v) else str(int(v)) for v in r['onsets'])})",
                                 f"{r['z'][0]:+.1f} ± {r['z'][1]:.1f}", f"{r['ratio'][0]:.1f}×", verdict])
            B.append(("table", ["config", "task", "old-class acc at boundary", "half-drop batch (per seed)",
                                "update z at onset", "update vs rest of task", "verdict"], rows))
        for png, caption in figs_by_preset.get(name, []):
            B.append(("img", png, caption))
    if explained:
        B.append(("h", 2, f"Why the network forgets: the study's questions, measured (`{EXPLAINED}`)"))
        B.append(("p", f"Each question the study raises, answered with a measured quantity over {seeds} seeds (mean ± "
                       f"std); every finding is a sentence generated from the numbers beside it "
                       f"(`forgetlab/explain.py`), not typed in."))
        B += explained
    return B


def _md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _inline_md_to_html(text: str) -> str:
    import re

    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def render(blocks, out: Path) -> tuple[str, str]:
    md, body = [], []
    for b in blocks:
        if b[0] == "h":
            md.append("#" * b[1] + " " + b[2])
            body.append(f"<h{b[1]}>{_inline_md_to_html(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            md.append(b[1])
            body.append(f"<p>{_inline_md_to_html(b[1])}</p>")
        elif b[0] == "table":
            md.append(_md_table(b[1], b[2]))
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in b[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b[0] == "img":
            rel = b[1].relative_to(out).as_posix()
            md.append(f"![{b[2]}]({rel})\n*{b[2]}* (PDF: `{Path(rel).with_suffix('.pdf')}`)")
            data = base64.b64encode(b[1].read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(b[2])}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;"
             "text-align:right}th{background:#f3f3f3}img{max-width:100%}figure{margin:1.5em 0}"
             "figcaption{font-size:13px;color:#555}code{background:#f3f3f3;padding:0 3px}")
    page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>forgetlab report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
    return "\n\n".join(md) + "\n", page


def explained_section(runs, out: Path, reuse: bool, phases: Phases) -> list[tuple]:
    """The explanatory probes' answers for ``EXPLAINED`` (figures redrawn unless nothing was retrained)."""
    if EXPLAINED not in runs:
        return []
    t0 = time.perf_counter()
    blocks = explain_report.section(runs[EXPLAINED][1], EXPLAINED, out / "figures", draw=not reuse)
    phases.figures += time.perf_counter() - t0
    return blocks


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def reproduce(seeds: int = 3, out: str | Path = "reproduce", *, data_dir=None, device: str = "auto",
              epochs: int | None = None, with_lenet: bool = False, presets: list[str] | None = None,
              threads: int | None = None, probe_config: probes_mod.ProbeConfig | None = None,
              log: Callable[[str], None] = print, progress: bool = False) -> Path:
    """Run the study's experiments (cached), draw its figures, write REPORT.md and report.html in ``out``."""
    import torch

    from .errors import ConfigError

    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: give at least 1 seed")
    if threads:
        torch.set_num_threads(threads)
    t_start = time.perf_counter()
    out = Path(out)
    from .api import prepare_out

    prepare_out(out, "reproduce")
    # the L1 presets first: their lambda-0 members are the plain MLP presets, which then reuse them
    order = [s[2] for s in SECTIONS]
    names = presets or order + (list(LENET) if with_lenet else [])
    plan = sorted(names, key=lambda n: (0 if "l1" in n else 1, names.index(n)))
    phases = Phases()
    log(f"training {len(plan)} experiments x {seeds} seeds (threads: {torch.get_num_threads()})")
    runs = run_all(plan, seeds, out, data_dir=data_dir, device=device, epochs=epochs, probe_config=probe_config,
                   log=log, phases=phases, progress=progress)
    log(f"training {phases.training:.1f} s, probes {phases.probes:.1f} s")
    figs, onsets = {}, {}
    manifest = out / "figures" / "manifest.json"
    key = sorted(str(runs[n][2]) for n in names)
    old = json.loads(manifest.read_text()) if manifest.exists() else {}
    reuse = (len(phases.cached) == len(names) and old.get("runs") == key
             and all((out / p).exists() for f in old.get("figures", {}).values() for p, _ in f))
    for name in names:
        res, pd, run_dir = runs[name]
        if reuse:  # nothing was trained: the figures on disk were drawn from these very runs
            figs[name] = [(out / p, c) for p, c in old["figures"][name]]
        else:
            figs[name] = section_figures(name, res, pd, run_dir, out, phases)
        if len(res.config.tasks) > 1:
            onsets[name] = [(label, onset_table(pd, ix)) for label, ix in groups(res)]
    if not reuse:
        atomic_write(manifest, json.dumps({"runs": key, "figures": {
            n: [(p.relative_to(out).as_posix(), c) for p, c in f] for n, f in figs.items()}}))
    explained = explained_section(runs, out, reuse, phases)
    log(f"t-SNE {phases.tsne:.1f} s, figures {phases.figures:.1f} s")
    t0 = time.perf_counter()
    device_name = next(iter(runs.values()))[0].device
    blocks = build_blocks(runs, figs, onsets, phases, seeds, time.perf_counter() - t_start, device_name, explained)
    md, page = render(blocks, out)
    phases.report = time.perf_counter() - t0
    wall = time.perf_counter() - t_start
    # timings are known only now: render again with them (cheap)
    blocks = build_blocks(runs, figs, onsets, phases, seeds, wall, device_name, explained)
    md, page = render(blocks, out)
    atomic_write(out / "REPORT.md", md)
    atomic_write(out / "report.html", page)
    log(f"report {phases.report:.1f} s; total {wall:.1f} s")
    return out
