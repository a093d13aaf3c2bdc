"""Sweeps: grids of any config values crossed with seeds, run as few batched programs as possible.

plan   every point of the grid x every seed is a *member* with a stable id, grouped into batched
       programs (workflows/plan.py).
store  SWEEP_DIR/members/<id>.json, one file per finished member, written atomically: a file
       that exists is complete. A sweep trains only the members it does not find there, so an
       interrupted sweep resumes by running the same command again.
run    groups go to an executor: "local" (this process, or local worker processes) or "ray" (one Ray
       task per group).

from forgetlab.workflows.sweep import sweep
s = sweep("mlp-sequential", grid={"train.l1": [0, 0.1, 1]}, seeds=[0, 1, 2], data_dir="../shared/data")
"""

from __future__ import annotations

import fcntl
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import forgetlab.workflows.summary as summary
from forgetlab import config as cfg
from forgetlab.config import RunConfig
from forgetlab.config import strategy as strategy_settings
from forgetlab.errors import ConfigError, ForgetlabError
from forgetlab.outputs.files import atomic_write
from forgetlab.outputs.formatting import jsonable
from forgetlab.outputs.store import SCHEMA_VERSION, Store, load_spec
from forgetlab.workflows.executors import EXECUTORS, run_local, run_ray

# the plan's names, importable from here as before the plan had its own module
from forgetlab.workflows.plan import (  # noqa: F401
    NOT_SWEEPABLE,
    Axis,
    Group,
    Plan,
    PlannedMember,
    make_axis,
    make_plan,
    parse_grid,
    split_values,
)
from forgetlab.workflows.pool import check_positive

# ---------------------------------------------------------------------------------------------
# The store's record of one finished member (store.py holds the store)
# ---------------------------------------------------------------------------------------------


def member_record(pm: PlannedMember, result: dict, group_size: int, elapsed_s: float, device: str) -> dict:
    return {
        "schema": SCHEMA_VERSION,
        "id": pm.id,
        "status": "complete",
        "seed": pm.seed,
        "point": {k: jsonable(v) for k, v in pm.point},
        "hparams": pm.member.hparams,
        "config": cfg.to_dict(pm.config),
        "tasks": result["tasks"],
        "acc_matrix": result["acc_matrix"],
        "group_size": group_size,
        "elapsed_s": round(elapsed_s, 3),
        "device": device,
    }


# ---------------------------------------------------------------------------------------------
# The sweep: plan, print, skip what is stored, run the rest, write the tables
# ---------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    plan: Plan
    out: Path
    trained: int  # members trained by this call
    reused: int  # members found in the store

    def records(self) -> list[dict | None]:
        """Each member's stored record, in the plan's order (None where it is not stored)."""
        store = Store(self.out)
        return [store.get(m.id) for m in self.plan.members]


def spec(plan: Plan) -> dict:
    """What sweep.json records: enough to resume or summarise the sweep without the command line."""
    return {
        "schema": SCHEMA_VERSION,
        "name": plan.base.name,
        "base": cfg.to_dict(plan.base),
        "axes": [[a.key, [jsonable(v) for v in a.values]] for a in plan.axes],
        "seeds": list(plan.seeds),
        "members": [{"id": m.id, "seed": m.seed, "point": {k: jsonable(v) for k, v in m.point}} for m in plan.members],
    }


def base_config(base: str | RunConfig, grid: dict, **options) -> RunConfig:
    """make_config's config for a sweep over ``grid`` (key -> 'v1,v2' or values). A strategy's setting the
    grid sweeps takes its first value here, so that the strategy's own checks (a replay strategy needs a
    memory) see a value the sweep trains; every grid point sets its own value afterwards."""
    from forgetlab import api

    firsts = [(k, split_values(v) if isinstance(v, str) else list(v)) for k, v in grid.items()]
    pairs = [(k, vs[0]) for k, vs in firsts if vs and strategy_settings.owner(k) is not None]
    return api.make_config(base, **{**options, "set": [*cfg.assignments(options.get("set")), *pairs]})


def plan_from_spec(data: dict) -> Plan:
    base = cfg.from_dict(data["base"])
    try:
        axes = [make_axis(k, vs, base) for k, vs in data["axes"]]
    except (TypeError, ValueError):
        raise ForgetlabError("'axes' must be [key, [values]] pairs") from None
    return make_plan(base, axes, data["seeds"])


def default_out(plan: Plan) -> Path:
    """The same plan always lands in the same directory, so re-running a command resumes it."""
    return Path("sweeps") / f"{plan.base.name}-{plan.digest()}"


class _Lock:
    """One sweep process per directory (the kernel drops the lock when the process dies, even by SIGKILL)."""

    def __init__(self, out: Path):
        self.path = out / ".lock"

    def __enter__(self):
        try:
            self.f = open(self.path, "w")
        except OSError as e:
            raise ForgetlabError(
                f"cannot write to sweep directory {self.path.parent} ({e.strerror}); choose another with --out"
            ) from None
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.f.close()
            raise ForgetlabError(
                f"another sweep is running in {self.path.parent}; wait for it or use another --out"
            ) from None
        for tmp in (self.path.parent / "members").glob(".*.tmp"):  # left by a killed writer
            tmp.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sweep", unit="member", dynamic_ncols=True, disable=None if enabled else True)


def _same_members(old: dict, plan: Plan) -> bool:
    return sorted(m["id"] for m in old["members"]) == sorted(m.id for m in plan.members)


def _open_store(plan: Plan, out: Path, resume: bool) -> Store:
    """The store under ``out``, created; with ``resume``, only where the same plan is recorded."""
    if resume:
        if not (out / "sweep.json").exists():
            raise ForgetlabError(f"nothing to resume in {out}: no sweep.json there; drop --resume to start")
        if not _same_members(load_spec(out), plan):
            raise ForgetlabError(
                f"the plan differs from the sweep recorded in {out}; drop --resume to run this "
                f"plan there (stored members are reused), or give another --out"
            )
    try:
        (out / "members").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ForgetlabError(
            f"cannot write to sweep directory {out} ({e.strerror}); choose another with --out"
        ) from None
    return Store(out)


def _train(todo: list[Group], store: Store, executor: str, address, progress: bool, workers: int, threads) -> None:
    """Every group of ``todo`` trained on the executor, each member stored as its group finishes."""
    bar = _progress_bar(sum(len(g.members) for g in todo), progress and bool(todo))

    def finished(group: Group, result: dict) -> None:
        for pm, res in zip(group.members, result["members"], strict=True):
            store.put(member_record(pm, res, len(group.members), result["elapsed_s"], result["device"]))
        bar.update(len(group.members))
        bar.set_postfix_str(f"{group.label} done in {result['elapsed_s']:.1f} s")

    def step_progress(group: Group, done_steps: int, total: int, status: str) -> None:
        if status:
            bar.set_postfix_str(f"{group.label}: {status}" if workers > 1 else status)

    try:
        if executor == "ray":
            run_ray(todo, finished, address)
        else:
            run_local(todo, finished, step_progress if progress else None, workers=workers, threads=threads)
    finally:
        bar.close()


def run_plan(
    plan: Plan,
    out: str | Path | None = None,
    *,
    executor: str = "local",
    address: str | None = None,
    group_size: int | None = None,
    resume: bool = False,
    progress: bool = True,
    workers: int = 1,
    threads: int | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> SweepResult:
    """Train every member of ``plan`` not already in the store under ``out`` on ``workers`` local processes
    (one: this process) of ``threads`` torch threads each; write the tables."""
    check_positive(workers=workers, threads=threads)
    if executor not in EXECUTORS:
        raise ConfigError(f"executor {executor!r} is not valid; choose one of: {', '.join(EXECUTORS)}")
    if group_size is not None and group_size < 1:
        raise ConfigError(f"group size {group_size} must be >= 1")
    out = Path(out) if out is not None else default_out(plan)
    store = _open_store(plan, out, resume)
    with _Lock(out):
        if not resume and (out / "sweep.json").exists() and not _same_members(load_spec(out), plan):
            log(f"note: {out} held another plan; it is replaced, and stored members it shares with this one are reused")
        atomic_write(out / "sweep.json", json.dumps(spec(plan), indent=1))
        done = store.done(m.id for m in plan.members)
        log(plan.describe(done, group_size))
        todo = plan.chunks(done, group_size)
        log(
            f"store: {out}/members ({len(done)} of {len(plan.members)} stored, "
            f"{sum(len(g.members) for g in todo)} to train in {len(todo)} program{'s' * (len(todo) != 1)}, "
            f"executor {executor}{f', workers {workers}' * (executor == 'local')})"
        )
        t0 = time.perf_counter()
        _train(todo, store, executor, address, progress, workers, threads)
        stored = store.done(m.id for m in plan.members)
        summary.write_tables(out, plan_members(plan), store)
        if not summary.parquet_available():
            log(summary.PARQUET_NOTE)
        log(
            f"sweep done: {len(stored) - len(done)} trained in {time.perf_counter() - t0:.1f} s, "
            f"{len(done)} reused; tables in {out}"
        )
    return SweepResult(plan, out, len(stored) - len(done), len(done))


def plan_members(plan: Plan) -> list[dict]:
    return spec(plan)["members"]


def sweep(
    base: str | RunConfig = "mlp-sequential",
    *,
    grid: dict | None = None,
    seeds: Sequence[int] | None = None,
    out: str | Path | None = None,
    executor: str = "local",
    address: str | None = None,
    group_size: int | None = None,
    resume: bool = False,
    dry_run: bool = False,
    progress: bool = True,
    workers: int = 1,
    threads: int | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
    **options,
) -> SweepResult | Plan:
    """Plan and run a sweep; ``grid`` maps any config key to its values; ``options`` go to make_config.

    With ``dry_run`` the plan is printed (through ``log``) and returned, and nothing runs.
    """
    config = base_config(base, grid or {}, seeds=seeds, **options)
    axes = [make_axis(k, v, config) for k, v in (grid or {}).items()]
    plan = make_plan(config, axes)
    if dry_run:
        done = Store(out).done(m.id for m in plan.members) if out is not None else set()
        log(plan.describe(done, group_size))
        return plan
    return run_plan(
        plan,
        out,
        executor=executor,
        address=address,
        group_size=group_size,
        resume=resume,
        progress=progress,
        workers=workers,
        threads=threads,
        log=log,
    )
