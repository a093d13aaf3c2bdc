"""Typed, frozen run configuration: what a run is, before any value is read or checked.

A run is an *ensemble*: the cross product of ``grid`` (values of member-level hyperparameters)
and ``seeds``. Every member shares the tensor shapes of the network, so the whole ensemble trains
as one batched program; members differ only in the values listed in ``MEMBER_KEYS``.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from forgetlab.config.strategy import StrategyConfig

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
    # plug-ins this run imports first (a .py file by absolute path, or a dotted module): what they register
    # (strategies, diagnostics, presets, datasets) is then known by name; not part of any identity
    plugins: tuple[str, ...] = ()
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


def _member_value(config: RunConfig, key: str) -> float:
    section, _, name = key.partition(".")
    return getattr(getattr(config, section), name)


def members(config: RunConfig) -> list[Member]:
    """Members in a fixed order: grid values outermost (in the order given), seeds innermost."""
    base = {k: float(_member_value(config, k)) for k in MEMBER_KEYS}
    keys = [k for k, _ in config.grid]
    out: list[Member] = []
    for values in itertools.product(*(vs for _, vs in config.grid)):
        hp = dict(base) | dict(zip(keys, map(float, values), strict=True))
        out.extend(Member(seed, hp) for seed in config.seeds)
    return out


def data_root(config: RunConfig) -> Path:
    return Path(config.data.root or os.environ.get("FORGETLAB_DATA") or "data").expanduser()
