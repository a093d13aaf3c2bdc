"""Datasets as resident tensors: loaded once onto the device; a batch is an index slice.

torchvision reads (and, when online, downloads) the raw IDX files; after that nothing in the hot
path touches Python objects per example.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import sampling
from .errors import DataError

# name -> (torchvision class name, folder under the root, per-pixel mean and std of the train set)
_DATASETS = {
    "mnist": ("MNIST", "MNIST", 0.1307, 0.3081),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST", 0.2860, 0.3530),
}
_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_SIZES = {True: 60000, False: 10000}


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # [N, 784] float32, normalised
    y: torch.Tensor  # [N] int64

    def __len__(self) -> int:
        return len(self.y)

    def indices_of(self, classes) -> torch.Tensor:
        """Indices of the examples whose label is in ``classes`` (a task is a label mask)."""
        mask = torch.isin(self.y, torch.as_tensor(list(classes), device=self.y.device))
        return mask.nonzero().squeeze(1)


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    eval: Split  # the test set (the study) or a stratified hold-out of the training set
    eval_split: str
    n_classes: int = 10
    image_shape: tuple[int, int, int] = (1, 28, 28)


def _load_split(name: str, root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    import torchvision.datasets as tvd

    cls_name, folder, _, _ = _DATASETS[name]
    raw = root / folder / "raw"
    missing = [f for f in _FILES if not (raw / f).exists()]
    cls = getattr(tvd, cls_name)
    if missing:
        if not download:
            raise DataError(f"{name} not found: {raw / missing[0]} is missing; copy the raw files there, "
                            f"or set data.download=true on a machine with internet access")
        try:
            ds = cls(str(root), train=train, download=True)
        except Exception as e:  # noqa: BLE001 - any network or disk failure means "no data"
            raise DataError(
                f"{name} not found under {raw} and the download failed ({type(e).__name__}); copy the raw "
                f"files there, or point --data-dir / FORGETLAB_DATA at a folder holding {folder}/raw"
            ) from None
    else:
        try:
            ds = cls(str(root), train=train, download=False)
        except Exception as e:  # noqa: BLE001 - truncated or garbled IDX files fail in many ways
            raise DataError(
                f"{name} files under {raw} are corrupt or truncated ({type(e).__name__}: {e}); delete them "
                f"and download again, or point --data-dir at a good copy"
            ) from None
    x, y = ds.data, ds.targets
    if x.shape != (_SIZES[train], 28, 28) or y.shape != (_SIZES[train],) or int(y.max()) > 9 or int(y.min()) < 0:
        which = "train" if train else "t10k"
        raise DataError(
            f"{name} files under {raw} are corrupt or truncated ({which}: images {tuple(x.shape)}, labels "
            f"{tuple(y.shape)}, expected {_SIZES[train]} examples of 28x28 with labels 0-9); replace them"
        )
    return x, y


def _stratified_holdout(y: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """Boolean mask of a fixed, class-stratified hold-out (the same for every run and member)."""
    g = torch.Generator().manual_seed(seed)
    held = torch.zeros(len(y), dtype=torch.bool)
    for take in sampling.per_class(y, range(int(y.max()) + 1), lambda n: round(fraction * n), g):
        held[take] = True
    return held


def load(name: str, root: str | Path, device: torch.device | str = "cpu", *, eval_split: str = "test",
         holdout_fraction: float = 0.1, download: bool = True) -> Dataset:
    if name not in _DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(_DATASETS)}")
    root = Path(root)
    if not root.is_dir() and not download:
        raise DataError(f"data directory {root} does not exist; pass --data-dir or set FORGETLAB_DATA")
    _, _, mean, std = _DATASETS[name]
    xtr, ytr = _load_split(name, root, True, download)
    xte, yte = _load_split(name, root, False, download)

    def to_split(x: torch.Tensor, y: torch.Tensor) -> Split:
        x = (x.reshape(len(x), -1).float().div_(255).sub_(mean).div_(std))
        return Split(x.to(device), y.long().to(device))

    if eval_split == "holdout":
        held = _stratified_holdout(ytr, holdout_fraction)
        return Dataset(name, to_split(xtr[~held], ytr[~held]), to_split(xtr[held], ytr[held]), eval_split)
    return Dataset(name, to_split(xtr, ytr), to_split(xte, yte), eval_split)
