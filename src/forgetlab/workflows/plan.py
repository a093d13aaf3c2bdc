"""A sweep's plan: grid axes of any config values crossed with seeds, grouped into as few batched
programs as possible.

Every point of the grid x every seed is a *member* with a stable id (config.member_identity). Members
that differ only in MEMBER_KEYS values (lr, momentum, weight decay, L1 lambda, dropout) and seed share
tensor shapes, so they train together as one program (a group); any other swept key (hidden sizes, norm,
epochs, batch size, tasks, a strategy's settings, ...) splits the groups. workflows/sweep.py runs a plan.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from typing import Any

from forgetlab import config as cfg
from forgetlab.config import MEMBER_KEYS, Member, RunConfig
from forgetlab.config.identity import digest
from forgetlab.errors import ConfigError
from forgetlab.outputs.formatting import point_label, value

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


def make_axis(key: str, values: str | Sequence, base: RunConfig | None = None) -> Axis:
    """One grid axis; ``values`` is 'v1,v2' (CLI; tuples in brackets) or a list of values, each converted
    to the type the key has in ``base`` (a strategy's setting, ``strategy.er.memory``, needs that strategy)."""
    if key in NOT_SWEEPABLE:
        raise ConfigError(f"cannot sweep {key!r}: {NOT_SWEEPABLE[key]}")
    if key not in cfg.valid_keys():
        raise ConfigError(
            f"unknown grid key {key!r}; valid keys: {', '.join(k for k in cfg.valid_keys() if k not in NOT_SWEEPABLE)}"
        )
    raw = split_values(values) if isinstance(values, str) else list(values)
    if not raw:
        raise ConfigError(f"grid {key} has no values; give at least one, e.g. --grid {key}=V1,V2")
    converted = tuple(cfg.get(cfg.override(base or RunConfig(), key, v), key) for v in raw)
    if len(set(converted)) != len(converted):
        raise ConfigError(f"grid {key} repeats a value: {', '.join(map(value, raw))}")
    return Axis(key, converted)


def parse_grid(texts: Iterable[str], base: RunConfig | None = None) -> list[Axis]:
    """--grid KEY=V1,V2 arguments -> axes (values typed as in ``base``); a key given twice is an error."""
    axes: list[Axis] = []
    for text in texts:
        key, values = cfg.parse_assignment(text)
        if any(a.key == key for a in axes):
            raise ConfigError(f"grid key {key} is given twice; put all its values in one --grid {key}=V1,V2")
        axes.append(make_axis(key, values, base))
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

    def chunks(self, done: Set[str], group_size: int | None = None) -> list[Group]:
        """The programs still to run: each group without its stored members, cut into <= group_size."""
        out: list[Group] = []
        for g in self.groups:
            todo = [m for m in g.members if m.id not in done]
            step = group_size or len(todo) or 1
            out.extend(Group(g.config, todo[i : i + step], g.shape) for i in range(0, len(todo), step))
        return out

    def describe(self, done: Set[str] = frozenset(), group_size: int | None = None) -> str:
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


def _checked(config: RunConfig) -> RunConfig:
    """A group's config, validated as make_config validates one (its strategy's own checks included)."""
    from forgetlab import strategies

    config = cfg.validate(config)
    strategies.validate(config)
    return config


def make_plan(base: RunConfig, axes: Sequence[Axis] = (), seeds: Sequence[int] | None = None) -> Plan:
    """Cross ``axes`` with ``seeds`` (default: the config's); a grid already in ``base`` becomes axes too."""
    given = {a.key for a in axes}
    axes = tuple(make_axis(k, list(vs), base) for k, vs in base.grid if k not in given) + tuple(axes)
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
            groups[shape] = Group(_checked(config), [], shape)
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
