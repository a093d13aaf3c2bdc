"""Datasets from plug-ins, by name: ``data.dataset=NAME`` loads the dataset a plug-in registered as NAME.

A dataset plug-in is a function ``load(root, **options) -> forgetlab.data.Dataset``: ``root`` is the data
folder (``--data-dir``), ``options`` the keywords of ``forgetlab.data.from_arrays`` that depend on the
run (``device``, ``eval_split``, ``holdout_fraction``), ready to pass on:

    from forgetlab import data

    @data.register("two-moons")
    def two_moons(root, **options):
        x, y, xt, yt = ...  # NumPy arrays or torch tensors
        return data.from_arrays(x, y, xt, yt, name="two-moons", **options)

It joins the registry when its file or module is imported (``--plugin``), or through an installed
package's entry point in the group ``forgetlab.datasets`` (an entry point naming the function registers it
under the entry point's name). The built-in MNIST and Fashion-MNIST, and torchvision's datasets by class
name, need no registration.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from forgetlab import plugins
from forgetlab.config.registry import Registry
from forgetlab.errors import ConfigError, DataError

DatasetLoader = Callable[..., object]  # load(root, **options) -> Dataset
DATASETS: Registry[DatasetLoader] = Registry("dataset", group="datasets")


def register(name: str) -> Callable[[DatasetLoader], DatasetLoader]:
    """Function decorator: the dataset ``load(root, **options)`` under ``name`` (``data.dataset=NAME``)."""
    return DATASETS.register(name)


def _adopt(name: str, load) -> None:
    if not callable(load):
        raise ConfigError(f"dataset {name!r}: {load!r} is not a function returning a forgetlab.data.Dataset")
    register(name)(load)


plugins.set_adopter("datasets", _adopt)


def load(name: str, root: Path, **options):
    """The registered dataset ``name``, checked to be a ``Dataset`` (else one DataError naming the plug-in)."""
    from forgetlab.data.dataset import Dataset

    loader = DATASETS[name]
    try:
        data = loader(root, **options)
    except (ConfigError, DataError):
        raise
    except Exception as e:  # noqa: BLE001 - any failure inside the plug-in is the plug-in's
        raise DataError(f"data.dataset={name!r}: the plug-in's loader failed ({type(e).__name__}: {e})") from None
    if not isinstance(data, Dataset):
        raise DataError(
            f"data.dataset={name!r}: the plug-in's loader returned a {type(data).__name__}, not a "
            "forgetlab.data.Dataset (build one with forgetlab.data.from_arrays)"
        )
    return data
