"""Datasets as resident tensors: loaded once onto the device; a batch is an index slice.

The raw IDX files are decoded here (torchvision only downloads them when they are missing) and cached,
normalised, as one tensor file; after that nothing in the hot path touches Python objects per example.
"""
from __future__ import annotations

import hashlib
import math
import os
import zlib
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
_COUNTS = {"train": 60000, "t10k": 10000}  # examples per split, as the IDX headers must say
_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


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


def _read_idx(path: Path, n: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, int]:
    """One IDX file of ``n`` uint8 records of ``shape`` (the format of the MNIST files), and its CRC-32.

    Decoded here rather than through torchvision, whose import costs about a second of every start.
    """
    data = path.read_bytes()
    dims = (n, *shape)
    header = bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    if len(data) != len(header) + math.prod(dims) or not data.startswith(header):
        got = f"{len(data)} bytes" if len(data) < len(header) else "header " + data[:len(header)].hex()
        raise DataError(f"{path} is corrupt or truncated ({got}; expected an IDX file of {n} uint8 records "
                        f"of {'x'.join(map(str, shape)) or 'one value'}, {len(header) + math.prod(dims)} "
                        f"bytes); replace it")
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
            raise DataError(f"{raw / f'{split}-labels-idx1-ubyte'} is corrupt: label {int(y.max())} (valid: 0-9); "
                            f"replace it")
        tensors[f"{split}_x"] = x.reshape(n, -1).float().div_(255).sub_(mean).div_(std)
        tensors[f"{split}_y"] = y.long()
    return tensors, crcs


# --- the decoded-tensor cache ------------------------------------------------------------------
# One torch file per dataset: the normalised tensors and, for each raw file, its size, mtime and CRC-32.
# It lives beside the raw folder, or under $XDG_CACHE_HOME/forgetlab when that folder is read-only
# (its permissions grant no write: respected even by root, as for a shared CI copy). A file whose
# size differs makes the cache stale; one whose mtime differs is checksummed and compared.

CACHE_VERSION = 1


def cache_paths(name: str, raw: Path) -> list[Path]:
    """Where the cache of ``raw`` may live, first choice first."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "forgetlab"
    key = hashlib.sha1(str(raw.resolve()).encode()).hexdigest()[:12]
    return [raw.parent / f"forgetlab-{name}-v{CACHE_VERSION}.pt", home / f"{name}-{key}-v{CACHE_VERSION}.pt"]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)
    except OSError:
        return False


def _cache_valid(cache, raw: Path) -> bool:
    if not isinstance(cache, dict) or cache.get("version") != CACHE_VERSION or set(cache.get("files", ())) != set(_FILES):
        return False
    for fname, (size, mtime_ns, crc) in cache["files"].items():
        st = (raw / fname).stat()
        if st.st_size != size:
            return False
        if st.st_mtime_ns != mtime_ns and zlib.crc32((raw / fname).read_bytes()) != crc:
            return False
    return True


def _load_cached(name: str, raw: Path) -> dict[str, torch.Tensor]:
    """The normalised tensors of ``raw``: from the cache when it is fresh, else decoded and cached."""
    for path in cache_paths(name, raw):
        try:  # mmap: the pages come from the OS file cache, shared by every process that loads them
            cache = torch.load(path, mmap=True, weights_only=True)
        except Exception:  # noqa: BLE001 - missing, truncated or foreign: rebuild it
            continue
        if _cache_valid(cache, raw):
            return cache["tensors"]
    tensors, crcs = _decode(name, raw)
    files = {f: [(raw / f).stat().st_size, (raw / f).stat().st_mtime_ns, c] for f, c in crcs.items()}
    for path in cache_paths(name, raw):
        if _writable(path.parent):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                torch.save({"version": CACHE_VERSION, "files": files, "tensors": tensors}, tmp)
                os.replace(tmp, path)
                break
            except OSError:  # a full disk: train from the decoded tensors without a cache
                tmp.unlink(missing_ok=True)
    return tensors


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
    raw = root / _DATASETS[name][1] / "raw"
    missing = [f for f in _FILES if not (raw / f).exists()]
    if missing and not download:
        raise DataError(f"{name} not found: {raw / missing[0]} is missing; copy the raw files there, "
                        f"or set data.download=true on a machine with internet access")
    if missing:
        _download(name, root, raw)
    t = _load_cached(name, raw)

    def split(x: torch.Tensor, y: torch.Tensor) -> Split:
        return Split(x.to(device), y.to(device))

    if eval_split == "holdout":
        held = _stratified_holdout(t["train_y"], holdout_fraction)
        return Dataset(name, split(t["train_x"][~held], t["train_y"][~held]),
                       split(t["train_x"][held], t["train_y"][held]), eval_split)
    return Dataset(name, split(t["train_x"], t["train_y"]), split(t["t10k_x"], t["t10k_y"]), eval_split)
