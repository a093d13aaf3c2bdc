"""Named configurations: one per experiment of the study (../shared/study/mnist-mlp-forgetting-study.md).

Shared defaults (RunConfig): plain SGD, momentum 0.9, learning rate 0.01, batch 64, 5 epochs per task,
the study's MLP 784-120-84-10, Split-MNIST tasks [1,2] [3,4] [5,6] [7,8] [9,0], seeds 0-4.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import config as cfg
from .registry import Registry


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    settings: dict  # nested, as in a config file

    def config(self) -> cfg.RunConfig:
        return cfg.from_dict({"name": self.name, **self.settings}, cfg.RunConfig(seeds=DEFAULT_SEEDS))


DEFAULT_SEEDS = (0, 1, 2, 3, 4)
PRESETS: Registry[Preset] = Registry("preset")


def _add(name: str, description: str, **settings) -> None:
    PRESETS.register(name)(Preset(name, description, settings))


CONCURRENT = {"kind": "concurrent"}

_add("mlp-concurrent", "MLP 784-120-84-10, all ten classes at once (the upper bound)", protocol=CONCURRENT)
_add("mlp-sequential", "MLP on Split-MNIST [1,2] [3,4] [5,6] [7,8] [9,0], one shared head (the lower bound)")
_add("mlp-bn-concurrent", "MLP with batch norm after each hidden layer, all classes at once",
     protocol=CONCURRENT, model={"norm": "batch"})
_add("mlp-bn-sequential", "MLP with batch norm on Split-MNIST", model={"norm": "batch"})
_add("mlp-ln-sequential", "MLP with layer norm on Split-MNIST", model={"norm": "layer"})
_add("mlp-dropout-sequential", "MLP with dropout p=0.5 on both hidden layers, Split-MNIST", model={"dropout": 0.5})
_add("mlp-l1-concurrent", "MLP with an L1 penalty on hidden activations, lambda in 0, 0.001, 0.1, 1, 2; all classes",
     protocol=CONCURRENT, grid={"train.l1": [0, 0.001, 0.1, 1, 2]})
_add("mlp-l1-sequential", "MLP with an L1 penalty on hidden activations, lambda in 0, 1; Split-MNIST",
     grid={"train.l1": [0, 1]})
_add("lenet-concurrent", "LeNet-5 conv net, all ten classes at once", protocol=CONCURRENT, model={"arch": "lenet5"})
_add("lenet-sequential", "LeNet-5 conv net on Split-MNIST", model={"arch": "lenet5"})


def get(name: str) -> cfg.RunConfig:
    return PRESETS[name].config()
