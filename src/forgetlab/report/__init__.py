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
from pathlib import Path
from typing import Callable

from .. import explain_report
from .. import probes as probes_mod
from ..presets import PRESETS
from ..results import atomic_write
from ..store import Store
from ..study import SECTIONS
from . import runs as runs_mod
from .numbers import groups, onset_table
from .prose import explain
from .render import EXPLAINED, LENET, build_blocks, render
from .section_figures import section_figures

__all__ = ["reproduce", "explain"]


def _figures(names, runs, out: Path, phases: runs_mod.Phases) -> tuple[dict, dict]:
    """Each experiment's figures and onset tables. When nothing was trained and the manifest names
    these very runs, the figures on disk are reused instead of drawn again."""
    figs, onsets = {}, {}
    manifest = out / "figures" / "manifest.json"
    key = sorted(str(runs[n][2]) for n in names)
    old = json.loads(manifest.read_text()) if manifest.exists() else {}
    reuse = (len(phases.cached) == len(names) and old.get("runs") == key
             and all((out / p).exists() for f in old.get("figures", {}).values() for p, _ in f))
    for name in names:
        res, pd, run_dir = runs[name]
        if reuse:
            figs[name] = [(out / p, c) for p, c in old["figures"][name]]
        else:
            figs[name] = section_figures(name, res, pd, run_dir, out, phases)
        if len(res.config.tasks) > 1:
            onsets[name] = [(label, onset_table(pd, ix)) for label, ix in groups(res)]
    if not reuse:
        atomic_write(manifest, json.dumps({"runs": key, "figures": {
            n: [(p.relative_to(out).as_posix(), c) for p, c in f] for n, f in figs.items()}}))
    return figs, onsets


def _explained(runs, out: Path, phases: runs_mod.Phases, draw: bool) -> list[tuple]:
    """The explanatory probes' section for ``EXPLAINED`` (its figures reused when nothing was trained)."""
    if EXPLAINED not in runs:
        return []
    t0 = time.perf_counter()
    blocks = explain_report.section(runs[EXPLAINED][1], EXPLAINED, out / "figures", draw=draw)
    phases.figures += time.perf_counter() - t0
    return blocks


def reproduce(seeds: int = 3, out: str | Path = "reproduce", *, data_dir=None, device: str = "auto",
              epochs: int | None = None, with_lenet: bool = False, presets: list[str] | None = None,
              threads: int | None = None, probe_config: probes_mod.ProbeConfig | None = None,
              log: Callable[[str], None] = print, progress: bool = False) -> Path:
    """Run the study's experiments (cached in ``out``'s store), draw its figures, write REPORT.md and
    report.html in ``out``."""
    import torch

    from ..api import prepare_out
    from ..errors import ConfigError

    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: give at least 1 seed")
    if threads:
        torch.set_num_threads(threads)
    t_start = time.perf_counter()
    out = Path(out)
    prepare_out(out, "reproduce")
    store = Store(out)
    names = presets or [s[2] for s in SECTIONS] + (list(LENET) if with_lenet else [])
    # presets with a grid first: their members include plain ones (the L1 presets' lambda 0 is the plain
    # MLP), which the presets without a grid then reuse instead of training again
    order = sorted(names, key=lambda n: (0 if PRESETS[n].settings.get("grid") else 1, names.index(n)))
    phases = runs_mod.Phases()
    log(f"training {len(order)} experiments x {seeds} seeds (threads: {torch.get_num_threads()})")
    programs = runs_mod.plan(order, seeds, store, data_dir=data_dir, device=device, epochs=epochs,
                             probe_config=probe_config, progress=progress)
    runs = runs_mod.run_all(programs, store, log=log, phases=phases)
    log(f"training {phases.training:.1f} s, probes {phases.probes:.1f} s")
    figs, onsets = _figures(names, runs, out, phases)
    explained = _explained(runs, out, phases, draw=len(phases.cached) < len(names))
    log(f"t-SNE {phases.tsne:.1f} s, figures {phases.figures:.1f} s")
    t0 = time.perf_counter()
    device_name = next(iter(runs.values()))[0].device
    blocks = (runs, figs, onsets, phases, seeds)
    render(build_blocks(*blocks, time.perf_counter() - t_start, device_name, explained), out)
    phases.report = time.perf_counter() - t0
    wall = time.perf_counter() - t_start
    # timings are known only now: render again with them (cheap)
    md, page = render(build_blocks(*blocks, wall, device_name, explained), out)
    atomic_write(out / "REPORT.md", md)
    atomic_write(out / "report.html", page)
    log(f"report {phases.report:.1f} s; total {wall:.1f} s")
    return out
