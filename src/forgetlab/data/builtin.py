"""The built-in datasets, MNIST and Fashion-MNIST: the raw IDX files decoded (torchvision only downloads
them when they are missing), standardised and cached as one tensor file (``cache.py``); after that nothing
in the hot path touches Python objects per example.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from pathlib import Path

import torch

from forgetlab.data.arrays import check_torchvision_name
from forgetlab.data.cache import load_cached
from forgetlab.data.dataset import Dataset, Split
from forgetlab.data.registry import DATASETS
from forgetlab.data.sampling import stratified_holdout
from forgetlab.errors import ConfigError, DataError

# name -> (torchvision class name, folder under the root, per-pixel mean and std of the train set)
_DATASETS = {
    "mnist": ("MNIST", "MNIST", 0.1307, 0.3081),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST", 0.2860, 0.3530),
}
_COUNTS = {"train": 60000, "t10k": 10000}  # examples per split, as the IDX headers must say
_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _read_idx(path: Path, n: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, int]:
    """One IDX file of ``n`` uint8 records of ``shape`` (the format of the MNIST files), and its CRC-32.

    Decoded here rather than through torchvision, whose import costs about a second of every start.
    """
    data = path.read_bytes()
    dims = (n, *shape)
    header = bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    if len(data) != len(header) + math.prod(dims) or not data.startswith(header):
        got = f"{len(data)} bytes" if len(data) < len(header) else "header " + data[: len(header)].hex()
        raise DataError(
            f"{path} is corrupt or truncated ({got}; expected an IDX file of {n} uint8 records "
            f"of {'x'.join(map(str, shape)) or 'one value'}, {len(header) + math.prod(dims)} "
            f"bytes); replace it"
        )
    x = torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=len(header)).view(dims)
    return x, zlib.crc32(data)


def _download(name: str, root: Path, raw: Path) -> None:
    import torchvision.datasets as tvd  # only when files are missing: its import alone takes ~1 s

    cls_name, folder, _, _ = _DATASETS[name]
    try:
        for train in (True, False):
            getattr(tvd, cls_name)(str(root), train=train, download=True)
    except Exception as e:  # noqa: BLE001 - any network or disk failure means "no data"
        raise DataError(
            f"{name} not found under {raw} and the download failed ({type(e).__name__}); copy the raw "
            f"files there, or point --data-dir / FORGETLAB_DATA at a folder holding {folder}/raw"
        ) from None


def _decode(name: str, raw: Path) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """The four raw files as normalised tensors, and each file's CRC-32."""
    _, _, mean, std = _DATASETS[name]
    tensors, crcs = {}, {}
    for split, n in _COUNTS.items():
        x, crcs[f"{split}-images-idx3-ubyte"] = _read_idx(raw / f"{split}-images-idx3-ubyte", n, (28, 28))
        y, crcs[f"{split}-labels-idx1-ubyte"] = _read_idx(raw / f"{split}-labels-idx1-ubyte", n, ())
        if int(y.max()) > 9:
            raise DataError(
                f"{raw / f'{split}-labels-idx1-ubyte'} is corrupt: label {int(y.max())} (valid: 0-9); replace it"
            )
        tensors[f"{split}_x"] = x.reshape(n, -1).float().div_(255).sub_(mean).div_(std)
        tensors[f"{split}_y"] = y.long()
    return tensors, crcs


def load(
    name: str,
    root: str | Path,
    device: torch.device | str = "cpu",
    *,
    eval_split: str = "test",
    holdout_fraction: float = 0.1,
    download: bool = True,
) -> Dataset:
    if name not in _DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(_DATASETS)}")
    root = Path(root)
    if not root.is_dir() and not download:
        raise DataError(f"data directory {root} does not exist; pass --data-dir or set FORGETLAB_DATA")
    raw = root / _DATASETS[name][1] / "raw"
    missing = [f for f in _FILES if not (raw / f).exists()]
    if missing and not download:
        raise DataError(
            f"{name} not found: {raw / missing[0]} is missing; copy the raw files there, "
            f"or set data.download=true on a machine with internet access"
        )
    if missing:
        _download(name, root, raw)
    t = load_cached(name, raw, _FILES, lambda: _decode(name, raw), constants=_DATASETS[name][2:])

    def split(x: torch.Tensor, y: torch.Tensor) -> Split:
        return Split(x.to(device), y.to(device))

    if eval_split == "holdout":
        held = stratified_holdout(t["train_y"], holdout_fraction)
        return Dataset(
            name,
            split(t["train_x"][~held], t["train_y"][~held]),
            split(t["train_x"][held], t["train_y"][held]),
            eval_split,
        )
    return Dataset(name, split(t["train_x"], t["train_y"]), split(t["t10k_x"], t["t10k_y"]), eval_split)


def check_config(config) -> None:
    """Before any work: a data set named in the config exists; tasks of a built-in one name its classes 0-9
    (other data are checked against their labels once loaded, ``check_tasks``)."""
    d = config.data
    if not d.normalize and (d.path or d.dataset not in _DATASETS):
        raise ConfigError(
            f"data.normalize=false needs a built-in dataset ({', '.join(_DATASETS)}), whose "
            f"pixel statistics are known; {d.path or d.dataset} is given as it is"
        )
    if d.path:
        return
    if d.dataset in DATASETS:  # a plug-in's: its loader checks its own data
        return
    if d.dataset not in _DATASETS:  # any torchvision classification dataset by its class name
        check_torchvision_name(d.dataset, tuple(_DATASETS))
        return
    for c in (c for task in config.protocol.tasks for c in task):
        if not 0 <= c < 10:
            raise ConfigError(f"protocol.tasks: class {c} is out of range; {d.dataset} has classes 0-9")


def unnormalized(data: Dataset, name: str) -> Dataset:
    """A built-in dataset's images as [0, 1] pixels (the standardisation undone), as Mammoth feeds them."""
    _, _, mean, std = _DATASETS[name]

    def raw(split: Split) -> Split:
        return Split(split.x * std + mean, split.y)

    return dataclasses.replace(data, name=f"{data.name} (pixels in [0, 1])", train=raw(data.train), eval=raw(data.eval))
