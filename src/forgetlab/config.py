"""Typed, frozen run configuration, validated before any work starts.

A run is an *ensemble*: the cross product of ``grid`` (values of member-level hyperparameters)
and ``seeds``. Every member shares the tensor shapes of the network, so the whole ensemble trains
as one batched program; members differ only in the values listed in ``MEMBER_KEYS``.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from .errors import ConfigError
from . import strategy_settings
from .strategy_settings import StrategyConfig

SPLIT_MNIST: tuple[tuple[int, ...], ...] = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 0))
N_CLASSES = 10

DATASETS = ("mnist", "fashion-mnist")
ARCHS = ("mlp", "lenet5")
NORMS = ("none", "batch", "layer")
INITS = ("torch", "xavier")
PROTOCOLS = ("concurrent", "sequential")
SCENARIOS = ("class", "task", "domain")  # van de Ven et al.'s three types of incremental learning
OPTIMIZERS = ("sgd", "adam")
EVAL_SPLITS = ("test", "holdout")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"
    root: str = ""  # "" -> $FORGETLAB_DATA, else ./data
    eval_split: str = "test"  # "test": the study's validation; "holdout": held out from train
    holdout_fraction: float = 0.1  # of each class's training examples, when eval_split=holdout
    download: bool = True  # fetch through torchvision when the files are missing
    path: str = ""  # a .npz of x_train, y_train, x_test, y_test (replaces data.dataset)
    normalize: bool = True  # built-in data: pixels standardised by the train set's mean and std; false: [0, 1]


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "mlp"
    hidden: tuple[int, ...] = (120, 84)  # units per hidden layer (LeNet-5: its fully connected part)
    norm: str = "none"  # none | batch | layer, after each hidden linear layer, before ReLU
    dropout: float = 0.0  # probability of zeroing a hidden unit during training
    kwta: tuple[int, ...] = ()  # k-winners-take-all: active units kept per hidden layer; () = plain ReLU
    kwta_boost: float = 0.0  # boosting strength beta (Ahmad & Scheinkman 2019); 0 = no boosting
    module: str = ""  # a user network (package.module:Class or file.py:Class) instead of model.arch
    module_args: str = ""  # its keyword arguments as a JSON object
    module_input: str = "flat"  # flat: x [B, features]; image: x [B, C, H, W] (the data's image shape)
    init: str = "torch"  # linear layers: torch (nn.Linear's uniform) | xavier (Xavier-uniform, zero biases)


@dataclass(frozen=True)
class ProtocolConfig:
    kind: str = "sequential"  # concurrent: one task with every class; sequential: tasks in order
    tasks: tuple[tuple[int, ...], ...] = SPLIT_MNIST
    scenario: str = "class"  # class: one shared head; task: task id given (logits masked); domain: shared units
    permuted: int = 0  # > 0: Permuted-MNIST with this many tasks of all ten digits (replaces tasks)
    permutation_seed: int = 0  # seed of the fixed pixel permutations (task 1 is unpermuted)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5  # per task
    iters: int = 0  # > 0: this many steps per task instead of epochs (batches drawn from reshuffled passes)
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9  # SGD momentum; Adam's beta1
    weight_decay: float = 0.0
    l1: float = 0.0  # lambda of the L1 penalty: lambda * sum over hidden layers of mean |h|


@dataclass(frozen=True)
class RunConfig:
    name: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    seeds: tuple[int, ...] = (0,)
    # member-level axes: ((key, (v1, v2, ...)), ...); crossed with each other and with the seeds
    grid: tuple[tuple[str, tuple[float, ...]], ...] = ()
    device: str = "auto"

    @property
    def tasks(self) -> tuple[tuple[int, ...], ...]:
        """The tasks actually trained: concurrent training is one task holding every class."""
        tasks = self.protocol.tasks
        if self.protocol.permuted:  # task t holds the ten digits under permutation t, labelled 10t..10t+9
            tasks = tuple(tuple(range(10 * t, 10 * t + 10)) for t in range(self.protocol.permuted))
        if self.protocol.kind == "concurrent":
            return (tuple(sorted({c for t in tasks for c in t})),)
        return tasks


# Keys whose values may differ between members of one batched program (no shape depends on them).
MEMBER_KEYS = ("train.lr", "train.momentum", "train.weight_decay", "train.l1", "model.dropout")

SECTIONS = {"data": DataConfig, "model": ModelConfig, "protocol": ProtocolConfig, "train": TrainConfig}


@dataclass(frozen=True)
class Member:
    """One ensemble member: a seed and its values of the member-level keys."""

    seed: int
    hparams: dict[str, float]


def members(config: RunConfig) -> list[Member]:
    """Members in a fixed order: grid values outermost (in the order given), seeds innermost."""
    base = {k: float(get(config, k)) for k in MEMBER_KEYS}
    keys = [k for k, _ in config.grid]
    out = []
    for values in itertools.product(*(vs for _, vs in config.grid)):
        hp = dict(base) | dict(zip(keys, map(float, values)))
        out.extend(Member(seed, hp) for seed in config.seeds)
    return out


# ---------------------------------------------------------------------------------------------
# Reading values: dotted keys, strings from the command line, JSON/TOML files
# ---------------------------------------------------------------------------------------------


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
    return keys + ["strategy.name", *strategy, "name", "seeds", "device"]


def _key_type(key: str):
    if key in ("name", "device"):
        return str
    if key == "seeds":
        return tuple[int, ...]
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
        return dataclasses.replace(config, strategy=strategy_settings.set_value(
            config.strategy, key.partition(".")[2], value, _convert))
    typ = _key_type(key)
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
    """Apply a nested dict (as in a JSON/TOML config file or results.json) on top of ``base``."""
    config = base or RunConfig()
    for key, value in data.items():
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


def load_file(path: str | Path, base: RunConfig | None = None) -> RunConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        if path.suffix == ".toml":
            import tomllib

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
    return d


def _digest(obj) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


# The fields identities were first published with. The rule for every other field, present or future: it
# enters an identity only where it differs from its default, so adding a field changes no identity.
# data.root and data.download change no number: the first is left out, the second held at its default.
_FIRST_FIELDS = {"data": ("dataset", "eval_split", "holdout_fraction", "download"),
                 "model": ("arch", "hidden", "norm", "dropout"), "protocol": ("kind", "tasks"),
                 "train": ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "l1")}


def _identity_dict(config: RunConfig) -> dict:
    d, out = to_dict(config), {}
    for section in SECTIONS:
        default = json.loads(json.dumps(dataclasses.asdict(type(getattr(config, section))())))  # tuples as lists
        out[section] = {k: v for k, v in d[section].items() if k in _FIRST_FIELDS[section] or v != default[k]}
    out["data"].pop("root", None)
    out["data"]["download"] = DataConfig.download
    strategy = strategy_settings.identity_dict(config.strategy)
    if strategy is not None:
        out["strategy"] = strategy
    return out


def identity(config: RunConfig) -> str:
    """Stable id of everything that determines a run's numbers (seeds and grid values included)."""
    return _digest({**_identity_dict(config), "seeds": list(config.seeds), "grid": {k: list(v) for k, v in config.grid}})


def member_identity(config: RunConfig, member: Member) -> str:
    """Stable id of one (config, seed) member, independent of which other members train beside it."""
    d = _identity_dict(config)
    for key, value in member.hparams.items():
        section, _, name = key.partition(".")
        d[section][name] = value
    d["seed"] = member.seed
    return _digest(d)


def data_root(config: RunConfig) -> Path:
    return Path(config.data.root or os.environ.get("FORGETLAB_DATA") or "data").expanduser()


# ---------------------------------------------------------------------------------------------
# Validation: every impossible value, named, with what would be valid
# ---------------------------------------------------------------------------------------------


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
    from .data import check_config  # names torchvision's datasets, classes of the built-in ones

    check_config(config)
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
    if m.kwta and (len(m.kwta) != len(m.hidden) or any(not 0 < k <= h for k, h in zip(m.kwta, m.hidden))):
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
