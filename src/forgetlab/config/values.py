"""Reading values into a run configuration: dotted keys, strings from the command line, JSON/TOML files,
and the nested dict a results.json holds."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, get_type_hints

import forgetlab.config.strategy as strategy_settings
from forgetlab.config.run import MEMBER_KEYS, SECTIONS, RunConfig
from forgetlab.errors import ConfigError


def get(config: RunConfig, key: str) -> Any:
    obj: Any = config
    if key.startswith("strategy.") and key != "strategy.name":  # strategy.<name>.<field>
        obj, key = config.strategy.params, key.rsplit(".", 1)[1]
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _field_types(cls) -> dict[str, Any]:
    return get_type_hints(cls)


def valid_keys() -> list[str]:
    keys = [f"{s}.{f}" for s, cls in SECTIONS.items() for f in _field_types(cls)]
    strategy = [k for name in strategy_settings.STRATEGY_SETTINGS for k in strategy_settings.keys(name)]
    return keys + ["strategy.name", *strategy, "name", "seeds", "device", "plugins"]


def key_type(key: str):
    """The type of a config key (a strategy's own settings aside: ``strategy.<name>.<field>``), or a
    ConfigError listing the valid keys."""
    if key in ("name", "device", "strategy.name"):
        return str
    if key == "seeds":
        return tuple[int, ...]
    if key == "plugins":
        return tuple[str, ...]
    section, _, name = key.partition(".")
    cls = SECTIONS.get(section)
    types = _field_types(cls) if cls else {}
    if name not in types:
        raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(valid_keys())}")
    return types[name]


def _convert(key: str, value: Any, typ) -> Any:
    """Turn a CLI string (or a JSON value) into the field's type, or say what was expected."""
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ in (int, float, str):
            if typ is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            if typ is int and isinstance(value, str):
                return int(value)
            if typ is float and not abs(float(value)) < float("inf"):  # NaN, inf
                raise ConfigError(f"{key}={value!r} is not a finite number")
            return typ(value)
        # tuples: "120,84", "[120, 84]" or [[1,2],[3,4]] (JSON) for nested ones
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v]
        inner = typ.__args__[0]
        return tuple(_convert(key, v, inner) for v in value)
    except (ValueError, TypeError, json.JSONDecodeError):
        name = getattr(typ, "__name__", str(typ)).replace("typing.", "")
        raise ConfigError(f"{key}={value!r} is not a valid {name}") from None


def override(config: RunConfig, key: str, value: Any) -> RunConfig:
    """A copy of ``config`` with one dotted key set; ``value`` may be a string from the CLI."""
    if key.startswith("strategy."):
        return dataclasses.replace(
            config, strategy=strategy_settings.set_value(config.strategy, key.partition(".")[2], value, _convert)
        )
    typ = key_type(key)
    value = _convert(key, value, typ)
    if "." not in key:
        return dataclasses.replace(config, **{key: value})
    section, _, name = key.partition(".")
    sub = dataclasses.replace(getattr(config, section), **{name: value})
    return dataclasses.replace(config, **{section: sub})


def parse_assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"expected key=value, got {text!r} (for example train.lr=0.05)")
    return key.strip(), value.strip()


def assignments(values) -> list[tuple[str, Any]]:
    """(key, value) pairs, in order, of a dict, of "KEY=VALUE" strings (the CLI's --set) or of pairs."""
    if isinstance(values, dict):
        return list(values.items())
    return [parse_assignment(v) if isinstance(v, str) else (v[0], v[1]) for v in values or ()]


def with_grid(config: RunConfig, key: str, values: str | list) -> RunConfig:
    """Add (or replace) one member-level grid axis."""
    if key not in MEMBER_KEYS:
        raise ConfigError(f"cannot vary {key!r} inside one batched run; member-level keys: {', '.join(MEMBER_KEYS)}")
    vals = _convert(key, values, tuple[float, ...])
    if not vals:
        raise ConfigError(f"grid {key} has no values; give at least one, e.g. {key}=0,1")
    grid = tuple((k, v) for k, v in config.grid if k != key) + ((key, vals),)
    return dataclasses.replace(config, grid=grid)


def from_dict(data: dict, base: RunConfig | None = None) -> RunConfig:
    """Apply a nested dict (as in a JSON/TOML config file or results.json) on top of ``base``.

    Its ``plugins`` are imported first, so that the names they register (a strategy, a preset) are known
    when the other keys are read."""
    config = base or RunConfig()
    if data.get("plugins"):
        config = with_plugins(config, data["plugins"])
    for key, value in data.items():
        if key == "plugins":
            continue
        if key == "grid":
            items = value.items() if isinstance(value, dict) else value
            config = dataclasses.replace(config, grid=())
            for k, vs in items:
                config = with_grid(config, k, list(vs))
        elif key == "strategy" and isinstance(value, dict):
            config = dataclasses.replace(config, strategy=strategy_settings.from_dict(config.strategy, value, _convert))
        elif key in SECTIONS and isinstance(value, dict):
            for name, v in value.items():
                config = override(config, f"{key}.{name}", v)
        else:
            config = override(config, key, value)
    return config


def with_plugins(config: RunConfig, targets) -> RunConfig:
    """``config`` with these plug-ins imported and recorded (after its own, without repeats)."""
    from forgetlab import plugins

    if isinstance(targets, str):
        targets = [t for t in targets.split(",") if t]
    imported = plugins.import_plugins(targets)
    return dataclasses.replace(config, plugins=tuple(dict.fromkeys((*config.plugins, *imported))))


def load_file(path: str | Path, base: RunConfig | None = None) -> RunConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # the same parser, as a package before Python 3.11 (a dependency there)
                import tomli as tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001 - any parse error is the user's file
        raise ConfigError(f"config file {path} is not valid {path.suffix[1:] or 'JSON'}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table/object of settings")
    return from_dict(data, base)


def to_dict(config: RunConfig) -> dict:
    d = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}  # in the fields' order
    d |= {s: dataclasses.asdict(d[s]) for s in SECTIONS} | {"strategy": strategy_settings.to_dict(config.strategy)}
    d["grid"] = {k: list(v) for k, v in config.grid}
    d["protocol"]["tasks"] = [list(t) for t in config.protocol.tasks]
    d["model"]["hidden"] = list(config.model.hidden)
    d["model"]["kwta"] = list(config.model.kwta)
    d["seeds"] = list(config.seeds)
    d["plugins"] = list(config.plugins)
    return d
