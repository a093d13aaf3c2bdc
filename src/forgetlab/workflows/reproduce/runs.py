"""What runs: the study's experiments as programs (one batched training run each), found in the run
cache (store.Store) by config identity and probe settings, else trained.

A ``Program`` is plain, picklable data and ``run_program`` a top-level function that trains it and
saves its results and probes in the program's run directory; the caller reads them back from there.
So an executor can run programs in other processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from forgetlab import config as cfg
from forgetlab import diagnostics as probes_mod
from forgetlab.outputs.results import Results
from forgetlab.outputs.results import load as load_results
from forgetlab.outputs.store import Store


@dataclass
class Phases:
    """Seconds per phase; ``training`` excludes the time spent inside probes."""

    training: float = 0.0
    probes: float = 0.0
    tsne: float = 0.0
    figures: float = 0.0
    report: float = 0.0
    cached: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Program:
    """One experiment's batched run: train ``config`` with probes, save everything in ``run_dir``."""

    name: str
    config: cfg.RunConfig
    probe_config: probes_mod.ProbeConfig
    run_dir: Path
    progress: bool = False


def run_program(program: Program, progress=None) -> float:
    """Train the program and save its results and probes in its run directory; the wall seconds.

    ``progress(done_steps, total_steps, status)``: given by a worker pool, which forwards it (instead of
    each worker drawing its own bar)."""
    from forgetlab import api

    t0 = time.perf_counter()
    api.run(
        program.config,
        out=program.run_dir,
        probes=program.probe_config,
        progress=program.progress if progress is None else progress,
    )
    return time.perf_counter() - t0


def plan(
    presets: list[str],
    seeds: Sequence[int],
    store: Store,
    *,
    probe_config: probes_mod.ProbeConfig | None = None,
    progress: bool = False,
    **options,
) -> list[Program]:
    """One program per preset, its run directory named by the config's identity in ``store``; ``options``
    (make_config's: epochs, lr, set, ...) apply to every preset."""
    from forgetlab import api

    pc = probe_config or probes_mod.ProbeConfig()
    programs = []
    for name in presets:
        config = api.make_config(name, seeds=list(seeds), **options)
        programs.append(Program(name, config, pc, store.run_dir(name, cfg.identity(config), pc), progress))
    return programs


Run = tuple[Results, probes_mod.ProbeData, Path]


def _reuse(program: Program, ids: list[str], done: dict) -> Run:
    """A run assembled from members an earlier program of the plan trained (same member identities)."""
    res0, pd0, _ = done[ids[0]]
    index = [done[i][2] for i in ids]
    res = Results(program.config, [done[i][0].members[done[i][2]] for i in ids], device=res0.device)
    if not all(done[i][1] is pd0 for i in ids):  # not needed by the study's presets
        raise RuntimeError(f"{program.name}: members come from several runs")
    pd = pd0.select(index)
    res.save(program.run_dir)
    pd.save(program.run_dir)
    return res, pd, program.run_dir


def to_train(programs: list[Program], store: Store) -> list[Program]:
    """The programs that must train: not complete in the store, and not made of members that an earlier
    program of the plan trains (the lambda-0 members of the L1 presets are the plain MLP presets)."""
    covered: set[str] = set()
    out = []
    for p in programs:
        ids = {cfg.member_identity(p.config, m) for m in cfg.members(p.config)}
        if not store.run_complete(p.run_dir) and not ids <= covered:
            out.append(p)
        covered |= ids
    return out


def train_programs(
    programs: list[Program],
    log: Callable[[str], None],
    workers: int = 1,
    progress: Callable | None = None,
    threads: int | None = None,
) -> dict[str, float]:
    """Train ``programs`` (largest first, on ``workers`` processes; one: here); their wall seconds."""
    from forgetlab.workflows.pool import Job, program_cost, run_jobs

    walls: dict[str, float] = {}

    def done(name: str, wall: float) -> None:
        walls[name] = wall
        log(f"  {name}: trained in {wall:.1f} s")

    jobs = [Job(p.name, program_cost(p.config, len(cfg.members(p.config))), run_program, (p,)) for p in programs]
    run_jobs(jobs, done, workers=workers, threads=threads, progress=progress)
    return walls


def run_all(
    programs: list[Program],
    store: Store,
    log: Callable[[str], None] = print,
    phases: Phases | None = None,
    workers: int = 1,
    progress: Callable | None = None,
    threads: int | None = None,
) -> dict[str, Run]:
    """Every program's Results and ProbeData, from the store when its run is complete there, else trained
    (on ``workers`` processes). A member already trained by an earlier program of this plan (same
    ``member_identity``) is reused instead of trained again.
    """
    phases = phases or Phases()
    walls = train_programs(to_train(programs, store), log, workers, progress, threads)
    done: dict[str, tuple[Results, probes_mod.ProbeData, int]] = {}  # member id -> source and index
    runs: dict[str, Run] = {}
    for p in programs:
        ids = [cfg.member_identity(p.config, m) for m in cfg.members(p.config)]
        if p.name in walls:
            runs[p.name] = (load_results(p.run_dir), probes_mod.load(p.run_dir), p.run_dir)
            probe_s = runs[p.name][1].meta["seconds"]
            phases.probes += probe_s
            phases.training += walls[p.name] - probe_s
            log(f"  {p.name}: {len(ids)} members, probes {probe_s:.1f} s of its {walls[p.name]:.1f} s")
        elif store.run_complete(p.run_dir):
            runs[p.name] = (load_results(p.run_dir), probes_mod.load(p.run_dir), p.run_dir)
            phases.cached.append(p.name)
            log(f"  {p.name}: cached ({p.run_dir})")
        else:
            runs[p.name] = _reuse(p, ids, done)
            log(f"  {p.name}: its {len(ids)} members were trained with an earlier preset; reused")
        res, pd, _ = runs[p.name]
        for i, member_id in enumerate(ids):
            done.setdefault(member_id, (res, pd, i))
    return runs
