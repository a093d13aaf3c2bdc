"""``forgetlab reproduce``: run every experiment of the study, then write REPORT.md and report.html.

Data flows through the modules of this package in order:

    runs.py             what runs: one program (batched training run) per experiment, cached in the store
    numbers.py          what is computed: last-epoch values per member group, the forgetting onset
    section_figures.py  which figures each experiment shows (declared by its preset), drawn by figures.py
    prose.py            what is said: the study-vs-ours tables, flags and their explanations
    render.py           how it is rendered: blocks, then Markdown and self-contained HTML
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from forgetlab import config as cfg
from forgetlab import diagnostics as probes_mod
from forgetlab.config.presets import PRESETS
from forgetlab.data import sources as data_sources
from forgetlab.diagnostics import report as explain_report
from forgetlab.errors import ConfigError
from forgetlab.outputs import progress as progress_bars
from forgetlab.outputs.files import atomic_write
from forgetlab.outputs.results import load as load_results
from forgetlab.outputs.store import Store
from forgetlab.studies.mnist_mlp import SECTIONS
from forgetlab.workflows.reproduce import runs as runs_mod
from forgetlab.workflows.reproduce.numbers import groups, onset_table
from forgetlab.workflows.reproduce.prose import explain
from forgetlab.workflows.reproduce.render import EXPLAINED, LENET, build_blocks, render
from forgetlab.workflows.reproduce.section_figures import section_figures

__all__ = ["reproduce", "explain"]


def figures_job(name: str, run_dir: Path, out: Path, progress=None) -> tuple[list, float, float]:
    """One experiment's figures, drawn from its run directory (in a worker process): (figures, t-SNE
    seconds, other seconds)."""
    phases = runs_mod.Phases()
    figs = section_figures(name, load_results(run_dir), probes_mod.load(run_dir), run_dir, out, phases)
    return figs, phases.tsne, phases.figures


def _figures(names, runs, out: Path, phases: runs_mod.Phases, workers: int = 1) -> tuple[dict, dict]:
    """Each experiment's figures (on ``workers`` processes) and onset tables. When nothing was trained and
    the manifest names these very runs, the figures on disk are reused instead of drawn again."""
    from forgetlab.workflows.pool import Job, run_jobs

    figs, onsets = {}, {}
    manifest = out / "figures" / "manifest.json"
    key = sorted(str(runs[n][2]) for n in names)
    old = json.loads(manifest.read_text()) if manifest.exists() else {}
    reuse = (
        len(phases.cached) == len(names)
        and old.get("runs") == key
        and all((out / p).exists() for f in old.get("figures", {}).values() for p, _ in f)
    )
    if reuse:
        figs = {name: [(out / p, c) for p, c in old["figures"][name]] for name in names}
    else:

        def drawn(name: str, result: tuple[list, float, float]) -> None:
            figs[name] = result[0]
            phases.tsne += result[1]
            phases.figures += result[2]

        # t-SNE maps take most of the time: experiments that show one go first
        jobs = [
            Job(
                n,
                len(PRESETS[n].figures) + 10 * any("latent" in k for k in PRESETS[n].figures),
                figures_job,
                (n, runs[n][2], out),
            )
            for n in names
        ]
        run_jobs(jobs, drawn, workers=workers)
        figs = {n: figs[n] for n in names}
    for name in names:
        res, pd, _ = runs[name]
        if len(res.config.tasks) > 1:
            onsets[name] = [(label, onset_table(pd, ix)) for label, ix in groups(res)]
    if not reuse:
        atomic_write(
            manifest,
            json.dumps(
                {
                    "runs": key,
                    "figures": {n: [(p.relative_to(out).as_posix(), c) for p, c in f] for n, f in figs.items()},
                }
            ),
        )
    return figs, onsets


def _explained(runs, out: Path, phases: runs_mod.Phases, draw: bool) -> list[tuple]:
    """The explanatory probes' section for ``EXPLAINED`` (its figures reused when nothing was trained)."""
    if EXPLAINED not in runs:
        return []
    t0 = time.perf_counter()
    blocks = explain_report.section(runs[EXPLAINED][1], EXPLAINED, out / "figures", draw=draw)
    phases.figures += time.perf_counter() - t0
    return blocks


def _train(
    programs, store: Store, phases: runs_mod.Phases, log, workers: int, progress: bool, threads: int | None = None
) -> dict:
    """Every program's run, from the store or trained (with one progress bar for all, if ``progress``)."""
    bar = progress_bars.programs_bar("training") if progress else None
    t0 = time.perf_counter()
    try:
        runs = runs_mod.run_all(programs, store, log=log, phases=phases, workers=workers, progress=bar, threads=threads)
    finally:
        if bar is not None:
            bar.close()
    log(
        f"training {time.perf_counter() - t0:.1f} s wall (summed over programs: training {phases.training:.1f} s, "
        f"probes {phases.probes:.1f} s)"
    )
    return runs


def overrides(options: dict) -> list[str]:
    """The settings ``options`` (make_config's) change in every experiment, as the report names them, in the
    order they apply: the config file, the option shortcuts, then ``set``."""
    named = [f"--config {options['config_file']}"] if options.get("config_file") else []
    for key, option in (("train.batch_size", "batch_size"), ("train.lr", "lr")):
        if options.get(option) is not None:
            named.append(f"{key}={options[option]:g}")
    return named + [f"{k}={v}" for k, v in cfg.assignments(options.get("set"))]


def reproduce(
    seeds: Sequence[int] = (0, 1, 2),
    out: str | Path = "reproduce",
    *,
    with_lenet: bool = False,
    presets: list[str] | None = None,
    threads: int | None = None,
    probe_config: probes_mod.ProbeConfig | None = None,
    log: Callable[[str], None] = print,
    progress: bool = False,
    workers: int = 1,
    **options,
) -> Path:
    """Run the study's experiments with ``seeds`` (cached in ``out``'s store), draw its figures, write
    REPORT.md and report.html in ``out``. ``workers``: processes that train and draw (one: this process;
    results are the same), each with ``threads`` torch threads. ``options`` are make_config's, applied to
    every experiment (data_dir, device, epochs, batch_size, lr, config_file, set, plugins); the report names
    the settings they change (``overrides``)."""
    from forgetlab.outputs.files import writable_dir
    from forgetlab.workflows.pool import DEFAULT_THREADS, check_positive

    if isinstance(seeds, int):
        raise ConfigError(f"seeds={seeds}: give the seeds themselves, e.g. {list(range(max(seeds, 1)))}")
    check_positive(threads=threads, workers=workers)
    t_start = time.perf_counter()
    out, seeds = Path(out), list(seeds)
    store = Store(out)
    names = presets or [s[2] for s in SECTIONS] + (list(LENET) if with_lenet else [])
    # presets with a grid first: their members include plain ones (the L1 presets' lambda 0 is the plain
    # MLP), which the presets without a grid then reuse instead of training again
    order = sorted(names, key=lambda n: (0 if PRESETS[n].settings.get("grid") else 1, names.index(n)))
    phases = runs_mod.Phases()
    programs = runs_mod.plan(order, seeds, store, probe_config=probe_config, **options)  # all validated
    n_train = len(runs_mod.to_train(programs, store))
    if n_train:  # missing data is one error line before anything is written (and the workers find it cached)
        data_sources.load_data(programs[0].config, data_sources.resolve_device(programs[0].config.device))
    writable_dir(out)
    log(
        f"training {n_train} of {len(order)} experiments x {len(seeds)} seeds on {min(workers, max(n_train, 1))} "
        f"worker(s) of {threads or DEFAULT_THREADS} thread(s)"
    )
    runs = _train(programs, store, phases, log, workers, progress=progress and n_train > 0, threads=threads)
    t0 = time.perf_counter()
    figs, onsets = _figures(names, runs, out, phases, workers)
    explained = _explained(runs, out, phases, draw=len(phases.cached) < len(names))
    log(
        f"figures {time.perf_counter() - t0:.1f} s wall (summed: t-SNE {phases.tsne:.1f} s, "
        f"other figures {phases.figures:.1f} s)"
    )
    _report(out, runs, figs, onsets, phases, len(seeds), explained, overrides(options), t_start, log)
    return out


def _report(out: Path, runs, figs, onsets, phases, n_seeds: int, explained, named, t_start: float, log) -> None:
    """REPORT.md and report.html; rendered twice, since the timings are known only once it is rendered."""
    t0 = time.perf_counter()
    device = next(iter(runs.values()))[0].device
    blocks = (runs, figs, onsets, phases, n_seeds)
    render(build_blocks(*blocks, time.perf_counter() - t_start, device, explained, named), out)
    phases.report = time.perf_counter() - t0
    wall = time.perf_counter() - t_start
    md, page = render(build_blocks(*blocks, wall, device, explained, named), out)
    atomic_write(out / "REPORT.md", md)
    atomic_write(out / "report.html", page)
    log(f"report {phases.report:.1f} s; total {wall:.1f} s")
