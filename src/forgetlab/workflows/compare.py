"""Compare strategies under one preset: every strategy trains all seeds as one batched run; the table
(average accuracy, forgetting, BWT, FWT, min-ACC, WC-ACC, time) and figures derive from the recorded
accuracy matrices (metrics.py).

    from forgetlab.workflows.compare import compare
    rows = compare("buzzega2020-seq-mnist-200", ["naive", "er", "derpp"], seeds=range(5), out="runs/cmp")
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from forgetlab import api
from forgetlab import config as cfg
from forgetlab import diagnostics as probes_mod
from forgetlab.config import presets, values
from forgetlab.config import strategy as strategy_settings
from forgetlab.data import sources as data_sources
from forgetlab.diagnostics import ForgettingCurve, ProbeConfig
from forgetlab.diagnostics import compare as explain_compare
from forgetlab.diagnostics.base import Timer
from forgetlab.diagnostics.recorders import ProbeSetRef
from forgetlab.errors import ConfigError, ForgetlabError
from forgetlab.outputs import metrics
from forgetlab.outputs import progress as progress_bars
from forgetlab.outputs import run_dir as run_dir_mod
from forgetlab.outputs.files import atomic_write
from forgetlab.outputs.formatting import interval, left_out, pm
from forgetlab.outputs.plotting import pyplot, save
from forgetlab.outputs.results import Results
from forgetlab.outputs.stats import Interval, mean_interval, sample

# A probe period longer than any task: the probe records only the first ``steps`` steps of each task.
_NEVER = 10**12


def gap_config(steps: int = 50, per_class: int = 150, explain: bool = True) -> ProbeConfig:
    """The probes of a comparison: the forgetting curves read on the seen classes' probe examples
    (``per_class`` per class, fixed across runs) at each task boundary and after each of the first
    ``steps`` steps of every task (the stability gap), and with ``explain`` the explanatory probes
    (linear and kNN probes, head bias, gradient interference, unit reuse, drift)."""
    names = ["curves"] + (["linear", "head", "interference", "units", "drift"] if explain else [])
    return ProbeConfig(per_class=per_class, first=steps, every=_NEVER).only(names).validate()


def gap_probe(steps: int = 50, per_class: int = 150) -> ForgettingCurve:
    """The forgetting-curve probe of ``gap_config`` alone: the accuracies behind the stability gap, min-ACC
    and WC-ACC."""
    config = gap_config(steps, per_class, explain=False)
    return ForgettingCurve(config, ProbeSetRef(config), Timer())


def task_curves(arrays: dict[str, np.ndarray], tasks, steps: int) -> list[np.ndarray | None]:
    """From a ``ForgettingCurve``'s arrays: for every task t >= 1, the accuracy on each earlier task's probe
    examples after each of the first ``steps`` steps of task t, ``[steps, E, T]`` (NaN for tasks k >= t);
    None for task 0."""
    point_task, point_step = arrays["point_task"], arrays["point_task_step"]
    correct, count = arrays["curve_correct"], arrays["probe_count"]
    curves: list[np.ndarray | None] = [None]
    for t in range(1, len(tasks)):
        rows = (point_task == t) & (point_step >= 1) & (point_step <= steps)
        acc = np.full((int(rows.sum()), correct.shape[1], len(tasks)), np.nan)
        for k, classes in enumerate(tasks[:t]):
            acc[:, :, k] = correct[rows][:, :, list(classes)].sum(-1) / count[list(classes)].sum()
        curves.append(acc)
    return curves


def train_strategy(
    config: cfg.RunConfig, run_dir: Path, gap_steps: int, explain: bool = True, progress=None
) -> tuple[float, dict]:
    """Train one strategy's run into ``run_dir`` (here or in a worker process) with ``gap_config``'s probes
    (saved there too): its wall seconds and the probes' arrays."""
    t0 = time.perf_counter()
    res = api.run(config, out=run_dir, probes=gap_config(gap_steps, explain=explain), progress=progress or False)
    return time.perf_counter() - t0, res.probes.arrays


def strategy_configs(preset: str, strategies: Sequence[str], options: dict) -> dict[str, cfg.RunConfig]:
    """Each strategy's validated config under ``preset`` (its settings there too), by registered name.

    ``options`` are make_config's; of its ``set`` values, a ``strategy.<name>.<field>`` key applies to strategy
    <name> alone (``--set strategy.er.memory=200`` beside naive), every other key to every strategy."""
    from forgetlab import strategies as strategies_mod

    options = dict(options)
    pairs = values.assignments(options.pop("set", None))
    cfg.with_plugins(cfg.RunConfig(), options.get("plugins", ()))
    names = {strategies_mod.resolve(s)[0]: s for s in strategies}  # unknown names fail before any work
    for key, _ in pairs:
        if key == "strategy.name":
            raise ConfigError("--set strategy.name: compare trains each strategy of --strategies; drop it")
        owner = strategy_settings.owner(key)
        if owner is not None and owner not in names:
            raise ConfigError(
                f"--set {key}: strategy {owner!r} is not compared here (--strategies {','.join(names)}); "
                f"a strategy.NAME.FIELD key applies to strategy NAME only"
            )
    configs = {}
    for name, spec in names.items():
        own = [(k, v) for k, v in pairs if strategy_settings.owner(k) in (None, name)]
        configs[name] = api.make_config(preset, strategy=spec, set=own, **options)
    return configs


def _train_all(configs: dict, out_dir: Path, gap_steps: int, explain: bool, progress: bool, workers, threads) -> dict:
    """Every strategy's run (on ``workers`` processes, largest first): name -> (wall seconds, probe arrays)."""
    from forgetlab.workflows.pool import Job, program_cost, run_jobs

    trained: dict[str, tuple[float, dict]] = {}
    bar = progress_bars.programs_bar("compare") if progress else None
    jobs = [
        Job(n, program_cost(c, len(cfg.members(c))), train_strategy, (c, out_dir / n, gap_steps, explain))
        for n, c in configs.items()
    ]
    try:
        run_jobs(jobs, lambda n, r: trained.__setitem__(n, r), workers=workers, threads=threads, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    return trained


def _row(name: str, config: cfg.RunConfig, res: Results, wall: float, arrays: dict, gap_steps: int) -> dict:
    """One line of the table: every metric's mean and sd over the seeds, and the mean stability-gap curve."""
    later = [c for c in task_curves(arrays, config.tasks, gap_steps)[1:] if c is not None]  # tasks 2..T
    per_seed = [
        metrics.summary(m.acc_matrix, m.acc_init, [None, *(c[:, e] for c in later)]) for e, m in enumerate(res.members)
    ]
    row = {"strategy": name, "seeds": len(res.members), "train_s": res.elapsed_s, "wall_s": wall}
    for key, _ in _COLUMNS:
        row.update(_describe(key, [s[key] for s in per_seed], [m.seed for m in res.members]))
    # [tasks-1, steps]: accuracy on the earlier tasks (their mean), over members
    row["gap_curve"] = np.stack([np.nanmean(c, -1).mean(-1) for c in later]) if later else None
    return row


def compare(
    preset: str,
    strategies: Sequence[str],
    *,
    out: str | Path | None = None,
    gap_steps: int = 50,
    progress: bool = True,
    explain: bool = True,
    log=print,
    workers: int = 1,
    threads: int | None = None,
    **options,
) -> list[dict]:
    """Run every strategy of ``strategies`` (registered names, or ``file.py:Class`` / ``module:Class`` specs)
    under ``preset`` (with the preset's settings for each) and write compare.md, compare.csv, figures and
    one run directory per strategy into ``out``; with ``explain``, the explanatory probes too, and a section
    of compare.md answering why each strategy forgets. ``options`` are make_config's (seeds, epochs, lr,
    batch_size, device, data_dir, config_file, set, plugins); see ``strategy_configs`` for ``set``.
    ``workers``: processes training strategies side by side, largest first (one: this process; the numbers
    are the same) of ``threads`` torch threads each (default 1)."""
    from forgetlab.outputs.results import load
    from forgetlab.workflows.pool import check_positive

    if gap_steps < 0:
        raise ForgetlabError(f"--gap-steps {gap_steps} must be >= 0")
    check_positive(workers=workers, threads=threads)
    configs = strategy_configs(preset, strategies, options)  # every config validated before any training
    first = next(iter(configs.values()))
    data_sources.load_data(first, data_sources.resolve_device(first.device))  # missing data: one line, no output
    out_dir = run_dir_mod.prepare(out, f"compare-{preset}")
    trained = _train_all(configs, out_dir, gap_steps, explain, progress, workers, threads)
    rows, runs = [], {}
    for name, config in configs.items():
        res = runs[name] = load(out_dir / name)
        res.probes = probes_mod.load(out_dir / name)
        wall, arrays = trained[name]
        rows.append(row := _row(name, config, res, wall, arrays, gap_steps))
        log(
            f"{name:<12} avg acc {pm(row['avg_acc'], row['avg_acc_sd'])}  forgetting "
            f"{pm(row['forgetting'], row['forgetting_sd'])}  {res.elapsed_s:7.1f} s training "
            f"({len(res.members)} seeds, one batched run)"
        )
    _write_report(out_dir, preset, configs, rows, runs, gap_steps)
    log(f"report: {out_dir / 'compare.md'}")
    return rows


_COLUMNS = [
    ("avg_acc", "avg accuracy"),
    ("forgetting", "forgetting"),
    ("bwt", "BWT"),
    ("fwt", "FWT"),
    ("min_acc", "min-ACC"),
    ("wc_acc", "WC-ACC"),
]
_STATS = ("", "_sd", "_n", "_ci_low", "_ci_high")  # the CSV's columns per metric, suffixes of its name


def _describe(key: str, values: list[float], seeds: list[int]) -> dict:
    """A metric over seeds as row fields: ``key`` (mean), ``key_sd`` (sample sd), ``key_n`` (finite
    values), ``key_ci_low`` / ``key_ci_high`` (95% t-interval of the mean), ``key_left_out`` (seeds whose
    value is not finite)."""
    s, ci = sample(values), mean_interval(values)
    return {
        key: s.mean,
        key + "_sd": s.sd,
        key + "_n": s.n,
        key + "_ci_low": ci.low,
        key + "_ci_high": ci.high,
        key + "_left_out": [seeds[i] for i in s.left_out],
    }


def _cell(r: dict, key: str) -> str:
    """'mean ± sd [95% CI]'; the mean alone for one seed; '(n = k)' where seeds were left out."""
    text = pm(r[key], r[key + "_sd"])
    ci = Interval(r[key], r[key + "_ci_low"], r[key + "_ci_high"], r[key + "_n"])
    text += f" {interval(ci)}" if ci.measured else ""
    return text + (f" (n = {r[key + '_n']})" if 0 < r[key + "_n"] < r["seeds"] else "")


def _write_report(
    out_dir: Path, preset: str, configs: dict, rows: list[dict], runs: dict[str, Results], gap_steps: int
) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["strategy", "seeds"] + [k + x for k, _ in _COLUMNS for x in _STATS] + ["train_s"])
    for r in rows:
        w.writerow(
            [r["strategy"], r["seeds"]]
            + [r[k + x] if x == "_n" else f"{r[k + x]:.6f}" for k, _ in _COLUMNS for x in _STATS]
            + [f"{r['train_s']:.2f}"]
        )
    atomic_write(out_dir / "compare.csv", buf.getvalue())
    lines = [
        f"# forgetlab compare: {preset}",
        "",
        presets.PRESETS[preset].description,
        "",
        "Each cell: mean ± sample standard deviation (n − 1) over the strategy's seeds, and in brackets the "
        "95% t-interval of the mean (mean ± t(0.975, n − 1)·sd/√n); one seed has no spread or interval, and a "
        "seed whose value is not finite (diverged) is left out and named below the table. Forgetting: best "
        "accuracy on a task after it was learned minus its final "
        "accuracy (metrics.py); BWT/FWT: Lopez-Paz & Ranzato 2017 (FWT against the untrained network); "
        "min-ACC and WC-ACC: De Lange et al. 2023, from the task ends and the first "
        f"{gap_steps} steps of every task (the forgetting-curve probe, the strategy's own classifier).",
        "",
        "| strategy | seeds | " + " | ".join(t for _, t in _COLUMNS) + " | training time (s) |",
        "|---" * (len(_COLUMNS) + 3) + "|",
    ]
    for r in rows:
        cells = [_cell(r, k) for k, _ in _COLUMNS]
        lines.append(f"| {r['strategy']} | {r['seeds']} | " + " | ".join(cells) + f" | {r['train_s']:.1f} |")
    where = [(f"{r['strategy']} seed {seed}", t) for r in rows for k, t in _COLUMNS for seed in r[k + "_left_out"]]
    lines += [
        *(["", left_out(where)] if where else []),
        "",
        "![accuracy matrices](heatmaps.png)",
        "",
        "![final accuracy per task](acc_per_task.png)",
        "",
        "![forgetting curves](forgetting_curves.png)",
        "",
        "Configurations:",
        "",
    ]
    for name, config in configs.items():
        lines.append(
            f"- {name}: `{json.dumps(cfg.to_dict(config)['strategy'])}` "
            f"train `{json.dumps(cfg.to_dict(config)['train'])}`"
        )
    pds = {name: res.probes for name, res in runs.items() if res.probes is not None and len(res.config.tasks) > 1}
    if pds and any("linear_correct" in pd or "head_bias" in pd or "interference" in pd for pd in pds.values()):
        lines += explain_compare.section(pds, out_dir)
    atomic_write(out_dir / "compare.md", "\n".join(lines) + "\n")
    _figures(out_dir, rows, runs)


def _figures(out_dir: Path, rows: list[dict], runs: dict[str, Results]) -> None:
    plt = pyplot()
    names = list(runs)
    mean_R = {n: np.mean([m.acc_matrix for m in runs[n].members], 0) for n in names}
    cols = min(4, len(names))
    nrows = -(-len(names) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3 * nrows), squeeze=False)
    for ax, n in zip(axes.flat, names, strict=True):
        R = mean_R[n]
        ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
        for (t, k), v in np.ndenumerate(R):
            ax.text(k, t, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.6 else "k")
        ax.set_title(n, fontsize=9)
        ax.set_xlabel("evaluated task k")
        ax.set_ylabel("after task t")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    save(fig, out_dir / "heatmaps")

    fig, ax = plt.subplots(figsize=(7, 4))
    T = len(next(iter(mean_R.values())))
    width = 0.8 / len(names)
    for i, n in enumerate(names):
        ax.bar(np.arange(T) + i * width, mean_R[n][-1], width, label=n)
    ax.set_xticks(np.arange(T) + 0.4 - width / 2, [f"task {k + 1}" for k in range(T)])
    ax.set_ylabel("accuracy after the last task")
    ax.legend(fontsize=7, ncol=3)
    save(fig, out_dir / "acc_per_task")

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        if r["gap_curve"] is not None:
            curve = r["gap_curve"]  # [tasks-1, steps]
            ax.plot(np.arange(1, curve.shape[1] + 1), curve.mean(0), label=r["strategy"])
    ax.set_xlabel("step of the new task")
    ax.set_ylabel("accuracy on earlier tasks (mean over tasks 2..T)")
    ax.legend(fontsize=7, ncol=3)
    save(fig, out_dir / "forgetting_curves")
