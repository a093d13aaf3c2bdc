"""Any labelled data as resident tensors: NumPy arrays or torch tensors, a .npz file, or a torchvision
classification dataset by class name, each validated with one-line errors."""

from __future__ import annotations

from pathlib import Path

import torch

from forgetlab.data.dataset import Dataset, Split
from forgetlab.data.sampling import stratified_holdout
from forgetlab.errors import ConfigError, DataError

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


def from_arrays(
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    name: str = "arrays",
    device: torch.device | str = "cpu",
    eval_split: str = "test",
    holdout_fraction: float = 0.1,
) -> Dataset:
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
        held = stratified_holdout(ytr, holdout_fraction)
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
                raise DataError(
                    f"data.path={path} lacks array {missing[0]!r}; it needs {', '.join(_ARRAY_NAMES)} "
                    f"(it has: {', '.join(f.files) or 'nothing'})"
                )
            arrays = [f[k] for k in _ARRAY_NAMES]
    except FileNotFoundError:
        raise DataError(f"data.path={path} does not exist; give a .npz with {', '.join(_ARRAY_NAMES)}") from None
    except (ValueError, OSError) as e:  # not a zip, an object array (pickle), a truncated file
        raise DataError(
            f"data.path={path} is not a readable .npz of numeric arrays ({type(e).__name__}: {e})"
        ) from None
    return from_arrays(*arrays, name=path.stem, device=device, **options)


# torchvision datasets whose constructor takes more than (root, train=, download=)
_TV_SPLIT_WORD = {"SVHN": ("train", "test"), "STL10": ("train", "test")}  # split="train" / "test"
_TV_EXTRA = {"EMNIST": {"split": "balanced"}}  # EMNIST's 47-class balanced split


def check_torchvision_name(name: str, builtin: tuple[str, ...] = ()) -> None:
    """``name`` is a torchvision dataset class; else a ConfigError that names the ``builtin`` datasets too."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, name, None)
    if not (isinstance(cls, type) and issubclass(cls, tvd.VisionDataset)):
        known = " nor ".join(builtin or ("a built-in dataset",))
        raise ConfigError(
            f"data.dataset={name!r} is neither {known} nor a torchvision dataset class "
            f"(e.g. KMNIST, EMNIST, CIFAR10); arrays of your own go in data.path (a .npz)"
        )


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


def load_torchvision(
    name: str, root: str | Path, device: torch.device | str = "cpu", *, download: bool = True, **options
) -> Dataset:
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
            raise DataError(
                f"{name} not found under {root} {how} ({type(e).__name__}: {' '.join(str(e).split())[:160]}); point "
                f"--data-dir at a folder holding it, or save it as a .npz for data.path"
            ) from None
        splits.append(_tv_arrays(ds))
    (xtr, ytr), (xte, yte) = splits
    return from_arrays(xtr, ytr, xte, yte, name=name, device=device, **options)
