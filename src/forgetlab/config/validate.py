"""Validation: every impossible value, named, with what would be valid, before any work starts.

The data set's own checks (does it exist, are the tasks' classes its classes) are the data layer's
(``forgetlab.data.check_config``), a strategy's its own (``Strategy.check``)."""

from __future__ import annotations

from forgetlab.config.run import (
    ARCHS,
    DEVICES,
    EVAL_SPLITS,
    INITS,
    MEMBER_KEYS,
    NORMS,
    OPTIMIZERS,
    PROTOCOLS,
    SCENARIOS,
    RunConfig,
)
from forgetlab.config.values import get
from forgetlab.errors import ConfigError


def _check_member_value(key: str, v: float) -> None:
    if key == "train.lr" and not v > 0:
        raise ConfigError(f"train.lr={v:g} must be > 0")
    if key == "train.momentum" and not 0 <= v < 1:
        raise ConfigError(f"train.momentum={v:g} must be in [0, 1)")
    if key == "train.weight_decay" and v < 0:
        raise ConfigError(f"train.weight_decay={v:g} must be >= 0")
    if key == "train.l1" and v < 0:
        raise ConfigError(f"train.l1={v:g}: the L1 lambda must be >= 0")
    if key == "model.dropout" and not 0 <= v < 1:
        raise ConfigError(f"model.dropout={v:g}: a dropout probability must be in [0, 1)")


def _one_of(key: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(valid)}")


def validate(config: RunConfig) -> RunConfig:
    d, m, p, t = config.data, config.model, config.protocol, config.train
    _one_of("data.eval_split", d.eval_split, EVAL_SPLITS)
    if not 0 < d.holdout_fraction < 1:
        raise ConfigError(f"data.holdout_fraction={d.holdout_fraction:g} must be in (0, 1)")
    _one_of("model.arch", m.arch, ARCHS)
    _one_of("model.norm", m.norm, NORMS)
    _one_of("model.init", m.init, INITS)
    if not m.hidden or any(h < 1 for h in m.hidden):
        raise ConfigError(f"model.hidden={list(m.hidden)} needs at least one layer of >= 1 unit")
    if m.arch == "lenet5" and len(m.hidden) != 2:
        raise ConfigError(f"model.hidden={list(m.hidden)}: LeNet-5 has exactly two hidden layers")
    _one_of("protocol.kind", p.kind, PROTOCOLS)
    _one_of("protocol.scenario", p.scenario, SCENARIOS)
    if p.permuted < 0:
        raise ConfigError(f"protocol.permuted={p.permuted} must be >= 0 (0 = no pixel permutations)")
    if m.kwta and (len(m.kwta) != len(m.hidden) or any(not 0 < k <= h for k, h in zip(m.kwta, m.hidden, strict=True))):
        raise ConfigError(f"model.kwta={list(m.kwta)} needs one k per hidden layer {list(m.hidden)}, each in 1..units")
    if m.kwta_boost < 0:
        raise ConfigError(f"model.kwta_boost={m.kwta_boost:g} must be >= 0")
    _one_of("train.optimizer", t.optimizer, OPTIMIZERS)
    _one_of("device", config.device, DEVICES)
    if not p.tasks or any(not task for task in p.tasks):
        raise ConfigError(f"protocol.tasks={[list(x) for x in p.tasks]}: every task needs a class")
    seen: set[int] = set()
    for task in p.tasks:
        for c in task:
            if c in seen:
                raise ConfigError(f"protocol.tasks: class {c} appears in more than one task")
            seen.add(c)
    if t.epochs < 1:
        raise ConfigError(f"train.epochs={t.epochs} must be >= 1")
    if t.iters < 0:
        raise ConfigError(f"train.iters={t.iters} must be >= 0 (0 = train.epochs passes per task)")
    if t.batch_size < 2:
        raise ConfigError(f"train.batch_size={t.batch_size} must be >= 2")
    if not config.seeds:
        raise ConfigError("seeds: give at least one seed")
    if any(s < 0 for s in config.seeds) or len(set(config.seeds)) != len(config.seeds):
        raise ConfigError(f"seeds={list(config.seeds)} must be distinct non-negative integers")
    for key in MEMBER_KEYS:
        _check_member_value(key, float(get(config, key)))
    for key, values in config.grid:
        if key not in MEMBER_KEYS:
            raise ConfigError(f"grid key {key!r} is not member-level; valid: {', '.join(MEMBER_KEYS)}")
        for v in values:
            _check_member_value(key, v)
    return config
