"""A strategy's settings in the run configuration: ``strategy.name`` and the named strategy's own
hyperparameters, ``strategy.<name>.<field>`` (e.g. ``strategy.lwf.alpha=0.5``).

Each strategy declares its hyperparameters as a small frozen dataclass next to its code and registers it
with the strategy (``strategies.register``), into ``STRATEGY_SETTINGS`` here; this module and config.py
import no strategy. A field may carry ``metadata={"flat": "lwf_alpha"}``: the name the setting had when all
strategies shared one flat section (``strategy.lwf_alpha``), still accepted on input and used in identities.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from forgetlab.config.registry import Registry
from forgetlab.errors import ConfigError

STRATEGY_SETTINGS: Registry[type] = Registry("strategy", group="strategies")

# The flat settings every strategy shared when run identities were first published, with their defaults:
# an identity spells a setting by its flat name, so identities of those runs stay what they were.
FLAT_DEFAULTS: dict[str, Any] = {
    "memory": 0,
    "memory_per_class": 0,
    "replay_batch": 0,
    "ewc_lambda": 100.0,
    "ewc_gamma": 1.0,
    "fisher_samples": 0,
    "si_c": 1.0,
    "si_xi": 0.1,
    "lwf_alpha": 1.0,
    "lwf_temp": 2.0,
    "der_alpha": 0.5,
    "der_beta": 0.5,
}


@dataclass(frozen=True)
class StrategyConfig:
    """The continual-learning strategy (see forgetlab.strategies) and its settings: an instance of the
    strategy's registered settings dataclass, or None when every setting is at its default."""

    name: str = "naive"
    settings: Any = None

    @property
    def params(self):
        """The strategy's settings, defaults filled in."""
        return self.settings if self.settings is not None else STRATEGY_SETTINGS[self.name]()


def flat_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flat", f.name)


def _fields(name: str) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(STRATEGY_SETTINGS[name])}


def keys(name: str) -> list[str]:
    """Valid dotted keys of strategy ``name``'s settings."""
    return [f"strategy.{name}.{f}" for f in _fields(name)] if name in STRATEGY_SETTINGS else []


def owner(key: str) -> str | None:
    """The strategy a ``strategy.<name>.<field>`` key belongs to; None for any other key (including the flat
    ``strategy.<field>`` spelling of older files, which means the config's own strategy)."""
    parts = key.split(".")
    return parts[1] if len(parts) >= 3 and parts[0] == "strategy" else None


def set_value(sc: StrategyConfig, key: str, value: Any, convert: Callable[[str, Any, Any], Any]) -> StrategyConfig:
    """``sc`` with ``key`` (after "strategy.") set; ``convert(full_key, value, type)`` parses the value."""
    if key == "name":
        name = convert("strategy.name", value, str)
        STRATEGY_SETTINGS[name]  # noqa: B018 - an unknown name fails here, listing the valid ones
        return StrategyConfig(name) if name != sc.name else sc
    fields = _fields(sc.name)
    target, dot, field_name = key.partition(".")
    if not dot:  # a flat name: strategy.ewc_lambda
        by_flat = {flat_name(f): f.name for f in fields.values()}
        if key in by_flat:
            target, field_name = sc.name, by_flat[key]
        elif key in FLAT_DEFAULTS and convert(f"strategy.{key}", value, type(FLAT_DEFAULTS[key])) == FLAT_DEFAULTS[key]:
            return sc  # a flat setting of another strategy, at its default: nothing to apply (old results.json)
        else:
            target = key
    if target != sc.name and target in STRATEGY_SETTINGS:
        raise ConfigError(
            f"strategy.{key} applies to strategy {target!r} only, and this config's strategy is {sc.name!r} "
            f"(its settings: {', '.join(keys(sc.name)) or 'none'}); choose {target} (--strategy {target}, or "
            f"strategy.name={target} first) or drop the setting"
        )
    if target != sc.name:
        raise ConfigError(
            f"strategy.{key}: not a setting of strategy {sc.name!r}; "
            f"its settings: {', '.join(keys(sc.name)) or 'none'} (set strategy.name first)"
        )
    if field_name not in fields:
        raise ConfigError(
            f"unknown setting strategy.{key}; strategy {sc.name!r} has: {', '.join(keys(sc.name)) or 'none'}"
        )
    typ = get_type_hints(STRATEGY_SETTINGS[sc.name])[field_name]
    new = dataclasses.replace(sc.params, **{field_name: convert(f"strategy.{target}.{field_name}", value, typ)})
    return dataclasses.replace(sc, settings=None if new == STRATEGY_SETTINGS[sc.name]() else new)  # one spelling


def from_dict(sc: StrategyConfig, data: dict, convert) -> StrategyConfig:
    """Apply {"name": ..., "<name>": {field: value}} (or the flat {"memory": ...} of older files)."""
    for key, value in data.items():
        if isinstance(value, dict):
            for field_name, v in value.items():
                sc = set_value(sc, f"{key}.{field_name}", v, convert)
        else:
            sc = set_value(sc, key, value, convert)
    return sc


def to_dict(sc: StrategyConfig) -> dict:
    if sc.name not in STRATEGY_SETTINGS:
        return {"name": sc.name}
    return {"name": sc.name, sc.name: dataclasses.asdict(sc.params)}


def identity_dict(sc: StrategyConfig) -> dict | None:
    """What of the strategy goes into an identity: None for naive training at its defaults; else the flat
    settings with their defaults, the strategy's own values under their flat names, and any setting without
    a flat name only where it differs from its default (a new setting changes no existing identity)."""
    d = {"name": sc.name, **FLAT_DEFAULTS}
    default = STRATEGY_SETTINGS[sc.name]()
    for f in _fields(sc.name).values():
        value = getattr(sc.params, f.name)
        if flat_name(f) in FLAT_DEFAULTS:
            d[flat_name(f)] = value
        elif value != getattr(default, f.name):
            d[f"{sc.name}.{f.name}"] = value
    return None if d == {"name": "naive", **FLAT_DEFAULTS} else d
