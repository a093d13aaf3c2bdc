"""The data layer: datasets as resident tensors (``dataset``), the built-in MNIST and Fashion-MNIST
(``builtin``, decoded once into ``cache``), any labelled arrays, .npz files or torchvision datasets
(``arrays``), datasets of plug-ins by name (``registry``: ``data.register``), where a run's data comes
from (``sources``), scenarios and benchmarks (``scenarios``),
stratified sampling and per-member random streams (``sampling``, ``seeding``).

    from forgetlab import data
    d = data.from_arrays(x_train, y_train, x_test, y_test)
"""

from __future__ import annotations

from forgetlab.data.arrays import from_arrays, load_npz, load_torchvision
from forgetlab.data.builtin import check_config, load, unnormalized
from forgetlab.data.dataset import Dataset, Split, check_tasks
from forgetlab.data.registry import DATASETS, register
from forgetlab.data.sources import load_data, resolve_device

__all__ = [
    "DATASETS",
    "Dataset",
    "Split",
    "check_config",
    "check_tasks",
    "from_arrays",
    "load",
    "load_data",
    "load_npz",
    "load_torchvision",
    "register",
    "resolve_device",
    "unnormalized",
]
