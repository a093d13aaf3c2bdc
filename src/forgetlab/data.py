"""Datasets as resident tensors: loaded once onto the device; a batch is an index slice.

The raw IDX files are decoded here (torchvision only downloads them when they are missing) and cached,
normalised, as one tensor file; after that nothing in the hot path touches Python objects per example.
"""
from __future__ import annotations

import hashlib
import math
import os
import zlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from . import sampling
from .errors import ConfigError, DataError

# name -> (torchvision class name, folder under the root, per-pixel mean and std of the train set)
_DATASETS = {
    "mnist": ("MNIST", "MNIST", 0.1307, 0.3081),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST", 0.2860, 0.3530),
}
_COUNTS = {"train": 60000, "t10k": 10000}  # examples per split, as the IDX headers must say
_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # [N, features] float32, normalised (an image flattened; Dataset.image_shape restores it)
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
    image_shape: tuple[int, ...] = (1, 28, 28)  # one example: (C, H, W), or (features,) for plain vectors


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


# ---------------------------------------------------------------------------------------------
# Any labelled data: arrays, a .npz file, a torchvision classification dataset by name
# ---------------------------------------------------------------------------------------------

_ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")


def _as_tensor(name: str, a) -> torch.Tensor:
    import numpy as np

    if isinstance(a, np.ndarray):
        if a.dtype.kind not in "biuf":
            raise DataError(f"{name} has dtype {a.dtype}; give numbers (integers or floats)")
        return torch.from_numpy(np.ascontiguousarray(a))
    if isinstance(a, torch.Tensor):
        return a.detach().cpu()
    raise DataError(f"{name} is a {type(a).__name__}; give a NumPy array or a torch tensor")


def _labels(name: str, y: torch.Tensor, n: int, x_name: str) -> torch.Tensor:
    if y.dim() != 1:
        raise DataError(f"{name} has shape {list(y.shape)}; labels must be one integer per example, shape [N]")
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.dtype.is_complex:
        raise DataError(f"{name} has dtype {y.dtype}; labels must be integers 0..classes-1")
    if len(y) != n:
        raise DataError(f"{x_name} has {n} examples but {name} has {len(y)} labels; they must match")
    if len(y) and int(y.min()) < 0:
        raise DataError(f"{name} holds label {int(y.min())}; labels must be integers >= 0")
    return y.long()


def _image_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-example shape -> what a model receives: (features,), (H, W) -> (1, H, W), or (C, H, W)."""
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) in (1, 3):
        return shape
    raise DataError(f"examples of shape {list(shape)}: give [N, features], [N, H, W] or [N, C, H, W] arrays")


def from_arrays(x_train, y_train, x_test, y_test, *, name: str = "arrays", device: torch.device | str = "cpu",
                eval_split: str = "test", holdout_fraction: float = 0.1) -> Dataset:
    """A Dataset from NumPy arrays or torch tensors: x [N, features], [N, H, W] or [N, C, H, W]; y [N] integers.

    Integer pixels (uint8 images) are scaled to [0, 1], then standardised with the training set's mean and
    std (one value, as for MNIST); float inputs are used as given. The class count is the largest label + 1.
    Every problem (shape, dtype, label range, non-finite value, mismatched lengths) is a one-line DataError.
    """
    xs = {"x_train": _as_tensor("x_train", x_train), "x_test": _as_tensor("x_test", x_test)}
    ys = {"y_train": _as_tensor("y_train", y_train), "y_test": _as_tensor("y_test", y_test)}
    for split in ("train", "test"):
        x = xs[f"x_{split}"]
        if x.dim() < 2 or not len(x):
            raise DataError(f"x_{split} has shape {list(x.shape)}; give at least one example, shape [N, ...]")
        ys[f"y_{split}"] = _labels(f"y_{split}", ys[f"y_{split}"], len(x), f"x_{split}")
    shape = tuple(xs["x_train"].shape[1:])
    image_shape = _image_shape(shape)
    if tuple(xs["x_test"].shape[1:]) != shape:
        raise DataError(f"x_test examples have shape {list(xs['x_test'].shape[1:])} but x_train's have {list(shape)}")
    integer = not xs["x_train"].dtype.is_floating_point
    for key, x in xs.items():
        x = x.float()
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise DataError(f"{key} holds {bad} non-finite values (NaN or inf); clean or drop those examples")
        xs[key] = x.div_(255) if integer else x
    n_classes = int(max(ys["y_train"].max(), ys["y_test"].max())) + 1
    mean, std = (float(xs["x_train"].mean()), float(xs["x_train"].std())) if integer else (0.0, 1.0)

    def to_split(x: torch.Tensor, y: torch.Tensor) -> Split:
        x = x.reshape(len(x), -1)
        if integer:
            x = (x - mean) / (std or 1.0)
        return Split(x.to(device), y.to(device))

    xtr, ytr = xs["x_train"], ys["y_train"]
    if eval_split == "holdout":
        held = _stratified_holdout(ytr, holdout_fraction)
        train, evaluation = to_split(xtr[~held], ytr[~held]), to_split(xtr[held], ytr[held])
    else:
        train, evaluation = to_split(xtr, ytr), to_split(xs["x_test"], ys["y_test"])
    return Dataset(name, train, evaluation, eval_split, n_classes, image_shape)


def load_npz(path: str | Path, device: torch.device | str = "cpu", **options) -> Dataset:
    """A .npz holding the arrays x_train, y_train, x_test, y_test (see ``from_arrays``)."""
    import numpy as np

    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in _ARRAY_NAMES if k not in f.files]
            if missing:
                raise DataError(f"data.path={path} lacks array {missing[0]!r}; it needs {', '.join(_ARRAY_NAMES)} "
                                f"(it has: {', '.join(f.files) or 'nothing'})")
            arrays = [f[k] for k in _ARRAY_NAMES]
    except FileNotFoundError:
        raise DataError(f"data.path={path} does not exist; give a .npz with {', '.join(_ARRAY_NAMES)}") from None
    except (ValueError, OSError) as e:  # not a zip, an object array (pickle), a truncated file
        raise DataError(f"data.path={path} is not a readable .npz of numeric arrays ({type(e).__name__}: {e})") from None
    return from_arrays(*arrays, name=path.stem, device=device, **options)


# torchvision datasets whose constructor takes more than (root, train=, download=)
_TV_SPLIT_WORD = {"SVHN": ("train", "test"), "STL10": ("train", "test")}  # split="train" / "test"
_TV_EXTRA = {"EMNIST": {"split": "balanced"}}  # EMNIST's 47-class balanced split


def check_torchvision_name(name: str) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, name, None)
    if not (isinstance(cls, type) and issubclass(cls, tvd.VisionDataset)):
        raise ConfigError(f"data.dataset={name!r} is neither {' nor '.join(_DATASETS)} nor a torchvision dataset class "
                        f"(e.g. KMNIST, EMNIST, CIFAR10); arrays of your own go in data.path (a .npz)")


def _tv_arrays(ds) -> tuple:
    """(images, labels) of a torchvision dataset: its resident ``data`` array, else one example at a time."""
    import numpy as np

    labels = getattr(ds, "targets", None)
    labels = getattr(ds, "labels", None) if labels is None else labels
    data = getattr(ds, "data", None)
    if data is not None and labels is not None and len(data) == len(labels) and hasattr(data, "shape"):
        x, y = np.asarray(data), np.asarray(labels)
    else:
        pairs = [ds[i] for i in range(len(ds))]
        x, y = np.stack([np.asarray(p[0]) for p in pairs]), np.asarray([int(p[1]) for p in pairs])
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)  # channels-last images (CIFAR's, PIL's) -> [N, C, H, W]
    return x, y


def load_torchvision(name: str, root: str | Path, device: torch.device | str = "cpu", *, download: bool = True,
                     **options) -> Dataset:
    """Any torchvision classification dataset by class name (KMNIST, EMNIST, CIFAR10, ...), via ``from_arrays``."""
    import torchvision.datasets as tvd

    check_torchvision_name(name)
    cls = getattr(tvd, name)
    splits = []
    for train in (True, False):
        words = _TV_SPLIT_WORD.get(name)
        kw = {"split": words[0 if train else 1]} if words else {"train": train}
        try:
            ds = cls(str(root), download=download, **kw, **_TV_EXTRA.get(name, {}))
        except Exception as e:  # noqa: BLE001 - missing files, no network, a corrupt archive
            how = "and the download failed" if download else "(data.download=false)"
            raise DataError(f"{name} not found under {root} {how} ({type(e).__name__}: {' '.join(str(e).split())[:160]}); point "
                            f"--data-dir at a folder holding it, or save it as a .npz for data.path") from None
        splits.append(_tv_arrays(ds))
    (xtr, ytr), (xte, yte) = splits
    return from_arrays(xtr, ytr, xte, yte, name=name, device=device, **options)


def check_config(config) -> None:
    """Before any work: a data set named in the config exists; tasks of a built-in one name its classes 0-9
    (other data are checked against their labels once loaded, ``check_tasks``)."""
    d = config.data
    if not d.normalize and (d.path or d.dataset not in _DATASETS):
        raise ConfigError(f"data.normalize=false needs a built-in dataset ({', '.join(_DATASETS)}), whose "
                          f"pixel statistics are known; {d.path or d.dataset} is given as it is")
    if d.path:
        return
    if d.dataset not in _DATASETS:  # any torchvision classification dataset by its class name
        check_torchvision_name(d.dataset)
        return
    for c in (c for task in config.protocol.tasks for c in task):
        if not 0 <= c < 10:
            raise ConfigError(f"protocol.tasks: class {c} is out of range; {d.dataset} has classes 0-9")


def unnormalized(data: Dataset, name: str) -> Dataset:
    """A built-in dataset's images as [0, 1] pixels (the standardisation undone), as Mammoth feeds them."""
    _, _, mean, std = _DATASETS[name]

    def raw(split: Split) -> Split:
        return Split(split.x * std + mean, split.y)

    return dataclasses.replace(data, name=f"{data.name} (pixels in [0, 1])", train=raw(data.train),
                               eval=raw(data.eval))


def check_tasks(data: Dataset, tasks) -> None:
    """Every class of the tasks has training and evaluation examples in ``data``; else a one-line DataError."""
    counts = {s: torch.bincount(split.y.cpu(), minlength=data.n_classes)
              for s, split in (("training", data.train), ("evaluation", data.eval))}
    for task in tasks:
        for c in task:
            if not 0 <= c < data.n_classes:
                raise DataError(f"protocol.tasks: class {c} is out of range; {data.name} has classes "
                                f"0-{data.n_classes - 1}")
            for which, count in counts.items():
                if not int(count[c]):
                    raise DataError(f"protocol.tasks: class {c} has no {which} examples in {data.name}; "
                                    f"set protocol.tasks to classes the data holds")
