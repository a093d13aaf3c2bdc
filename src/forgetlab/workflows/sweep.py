"""Sweeps: grids of any config values crossed with seeds, run as few batched programs as possible.

plan   every point of the grid x every seed is a *member* with a stable id (config.member_identity).
       Members that differ only in MEMBER_KEYS values (lr, momentum, weight decay, L1 lambda,
       dropout) and seed share tensor shapes, so they train together as one program (a group);
       any other swept key (hidden sizes, norm, epochs, batch size, tasks, ...) splits the groups.
store  SWEEP_DIR/members/<id>.json, one file per finished member, written atomically: a file
       that exists is complete. A sweep trains only the members it does not find there, so an
       interrupted sweep resumes by running the same command again.
run    groups go to an executor: "local" (this process) or "ray" (one Ray task per group).

from forgetlab.workflows.sweep import sweep
s = sweep("mlp-sequential", grid={"train.l1": [0, 0.1, 1]}, seeds=[0, 1, 2], data_dir="../shared/data")
"""

from __future__ import annotations

import dataclasses
import fcntl
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import forgetlab.workflows.summary as summary
from forgetlab import config as cfg
from forgetlab.config import MEMBER_KEYS, Member, RunConfig
from forgetlab.config.identity import digest
from forgetlab.errors import ConfigError, ForgetlabError
from forgetlab.outputs.files import atomic_write
from forgetlab.outputs.formatting import jsonable, point_label, value
from forgetlab.outputs.store import SCHEMA_VERSION, Store, load_spec
from forgetlab.workflows.executors import EXECUTORS, run_local, run_ray
from forgetlab.workflows.pool import check_positive

# keys a grid may not sweep: seeds have --seeds; the others do not change what is computed
NOT_SWEEPABLE = {
    "seeds": "give seeds with --seeds",
    "name": "it does not change results",
    "device": "it does not change results",
    "data.root": "it does not change results",
    "data.download": "it does not change results",
}

# ---------------------------------------------------------------------------------------------
# Grid axes: parsed and type-checked before anything runs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    key: str  # a dotted config key, e.g. train.l1 or model.hidden
    values: tuple  # each converted to the key's type


def split_values(text: str) -> list[str]:
    """Split 'a,b,c' on the commas outside brackets: '[256,128],[120,84]' is two values."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v.strip() for v in out if v.strip()]


def make_axis(key: str, values: str | Sequence) -> Axis:
    """One grid axis; ``values`` is 'v1,v2' (CLI; tuples in brackets) or a list of values."""
    if key in NOT_SWEEPABLE:
        raise ConfigError(f"cannot sweep {key!r}: {NOT_SWEEPABLE[key]}")
    if key not in cfg.valid_keys():
        raise ConfigError(
            f"unknown grid key {key!r}; valid keys: {', '.join(k for k in cfg.valid_keys() if k not in NOT_SWEEPABLE)}"
        )
    raw = split_values(values) if isinstance(values, str) else list(values)
    if not raw:
        raise ConfigError(f"grid {key} has no values; give at least one, e.g. --grid {key}=V1,V2")
    converted = tuple(cfg.get(cfg.override(RunConfig(), key, v), key) for v in raw)
    if len(set(converted)) != len(converted):
        raise ConfigError(f"grid {key} repeats a value: {', '.join(map(value, raw))}")
    return Axis(key, converted)


def parse_grid(texts: Iterable[str]) -> list[Axis]:
    """--grid KEY=V1,V2 arguments -> axes; a key given twice is an error."""
    axes: list[Axis] = []
    for text in texts:
        key, values = cfg.parse_assignment(text)
        if any(a.key == key for a in axes):
            raise ConfigError(f"grid key {key} is given twice; put all its values in one --grid {key}=V1,V2")
        axes.append(make_axis(key, values))
    return axes


# ---------------------------------------------------------------------------------------------
# The plan: members grouped into batched programs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedMember:
    id: str
    point: tuple[tuple[str, Any], ...]  # (swept key, value), in axis order; the seed is apart
    member: Member  # seed + member-level values, as the training loop takes it
    config: RunConfig  # this member alone: grid=(), seeds=(seed,), its values set

    @property
    def seed(self) -> int:
        return self.member.seed


@dataclass
class Group:
    """One batched program: ``config`` (member-level axes as its grid) trains ``members``."""

    config: RunConfig
    members: list[PlannedMember]
    shape: tuple[tuple[str, Any], ...]  # the swept values that set this group apart

    @property
    def label(self) -> str:
        return point_label(self.shape, short=False, empty="(base)")


@dataclass
class Plan:
    base: RunConfig
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    groups: list[Group]

    @property
    def members(self) -> list[PlannedMember]:
        return [m for g in self.groups for m in g.members]

    def digest(self) -> str:
        return digest(sorted(m.id for m in self.members))[:10]

    def chunks(self, done: set[str], group_size: int | None = None) -> list[Group]:
        """The programs still to run: each group without its stored members, cut into <= group_size."""
        out = []
        for g in self.groups:
            todo = [m for m in g.members if m.id not in done]
            step = group_size or len(todo) or 1
            out.extend(Group(g.config, todo[i : i + step], g.shape) for i in range(0, len(todo), step))
        return out

    def describe(self, done: set[str] = frozenset(), group_size: int | None = None) -> str:
        n = len(self.members)
        sizes = " x ".join([f"{len(a.values)} {a.key}" for a in self.axes] + [f"{len(self.seeds)} seeds"])
        lines = [
            f"plan: {self.base.name}, {n} member{'s' * (n != 1)} ({sizes}) in {len(self.groups)} "
            f"batched program{'s' * (len(self.groups) != 1)}"
        ]
        width = max(len(g.label) for g in self.groups)
        for i, g in enumerate(self.groups, 1):
            stored = sum(m.id in done for m in g.members)
            inside = " x ".join([f"{len(v)} {k}" for k, v in g.config.grid] + [f"{len(g.config.seeds)} seeds"])
            todo = len(g.members) - stored
            cut = f" in {-(-todo // group_size)} programs" if group_size and todo > group_size else ""
            lines.append(
                f"  program {i:>3}  {g.label:<{width}}  {len(g.members):>4} members ({inside}), "
                f"{g.config.train.epochs} epochs x {len(g.config.tasks)} tasks; "
                f"{todo} to train{cut}" + (f", {stored} stored" if stored else "")
            )
        return "\n".join(lines)


def make_plan(base: RunConfig, axes: Sequence[Axis] = (), seeds: Sequence[int] | None = None) -> Plan:
    """Cross ``axes`` with ``seeds`` (default: the config's); a grid already in ``base`` becomes axes too."""
    given = {a.key for a in axes}
    axes = tuple(make_axis(k, list(vs)) for k, vs in base.grid if k not in given) + tuple(axes)
    seeds = tuple(base.seeds if seeds is None else seeds)
    base = cfg.validate(dataclasses.replace(base, grid=(), seeds=seeds))
    member_axes = [a for a in axes if a.key in MEMBER_KEYS]
    groups: dict[tuple, Group] = {}
    seen: dict[str, tuple] = {}
    for values in itertools.product(*(a.values for a in axes)):
        point = tuple((a.key, v) for a, v in zip(axes, values, strict=True))
        shape = tuple((k, v) for k, v in point if k not in MEMBER_KEYS)
        if shape not in groups:
            config = base
            for k, v in shape:
                config = cfg.override(config, k, v)
            config = dataclasses.replace(config, grid=tuple((a.key, tuple(map(float, a.values))) for a in member_axes))
            groups[shape] = Group(cfg.validate(config), [], shape)
        group = groups[shape]
        single = base
        for k, v in point:
            single = cfg.override(single, k, v)
        hparams = {k: float(cfg.get(single, k)) for k in MEMBER_KEYS}
        for seed in seeds:
            member = Member(seed, hparams)
            alone = cfg.validate(dataclasses.replace(single, seeds=(seed,)))
            mid = cfg.member_identity(group.config, member)
            if mid in seen:
                a, b = (point_label(x, short=False, empty="(base)") for x in (seen[mid], point))
                raise ConfigError(f"grid points {a} and {b} give the same run; drop one of the values")
            seen[mid] = point
            group.members.append(PlannedMember(mid, point, member, alone))
    return Plan(base, axes, seeds, list(groups.values()))


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

    def records(self) -> list[dict]:
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


def plan_from_spec(data: dict) -> Plan:
    base = cfg.from_dict(data["base"])
    try:
        axes = [make_axis(k, vs) for k, vs in data["axes"]]
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
        self.f = open(self.path, "w")
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
    if resume:
        old = load_spec(out) if (out / "sweep.json").exists() else None
        if old is None:
            raise ForgetlabError(f"nothing to resume in {out}: no sweep.json there; drop --resume to start")
        if sorted(m["id"] for m in old["members"]) != sorted(m.id for m in plan.members):
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
    store = Store(out)
    with _Lock(out):
        if not resume and (out / "sweep.json").exists():
            old = load_spec(out)
            if sorted(m["id"] for m in old["members"]) != sorted(m.id for m in plan.members):
                log(
                    f"note: {out} held another plan; it is replaced, and stored members it shares "
                    "with this one are reused"
                )
        atomic_write(out / "sweep.json", json.dumps(spec(plan), indent=1))
        done = store.done(m.id for m in plan.members)
        log(plan.describe(done, group_size))
        todo = plan.chunks(done, group_size)
        n_todo = sum(len(g.members) for g in todo)
        log(
            f"store: {out}/members ({len(done)} of {len(plan.members)} stored, {n_todo} to train in {len(todo)} "
            f"program{'s' * (len(todo) != 1)}, executor {executor}{f', workers {workers}' * (executor == 'local')})"
        )
        bar = _progress_bar(n_todo, progress and n_todo > 0)

        def finished(group: Group, result: dict) -> None:
            for pm, res in zip(group.members, result["members"], strict=True):
                store.put(member_record(pm, res, len(group.members), result["elapsed_s"], result["device"]))
            bar.update(len(group.members))
            bar.set_postfix_str(f"{group.label} done in {result['elapsed_s']:.1f} s")

        def step_progress(group: Group, done_steps: int, total: int, status: str) -> None:
            if status:
                bar.set_postfix_str(f"{group.label}: {status}" if workers > 1 else status)

        t0 = time.perf_counter()
        try:
            if executor == "ray":
                run_ray(todo, finished, address)
            else:
                run_local(todo, finished, step_progress if progress else None, workers=workers, threads=threads)
        finally:
            bar.close()
        stored = store.done(m.id for m in plan.members)
        summary.write_tables(out, plan_members(plan), store)
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
    from forgetlab import api

    axes = [make_axis(k, v) for k, v in (grid or {}).items()]
    config = api.make_config(base, seeds=seeds, **options)
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
