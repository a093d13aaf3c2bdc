"""Where a run's data comes from: the configured source (a built-in dataset, a .npz, a plug-in's dataset,
a torchvision class) loaded once per process onto the chosen device, and kept for the next run that asks
for the same."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

import forgetlab.data.arrays as arrays
import forgetlab.data.builtin as builtin
import forgetlab.data.registry as registry
from forgetlab import config as cfg
from forgetlab.data.dataset import Dataset
from forgetlab.errors import ConfigError, DataError
from forgetlab.outputs.files import nothing_left_on_error

_LOADED: dict[tuple, Dataset] = {}


def resolve_device(name: str) -> torch.device:
    """A device name; "auto" is $FORGETLAB_DEVICE when set (cpu or cuda), else cuda when available, else cpu."""
    if name == "auto":
        name = os.environ.get("FORGETLAB_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
        if name not in ("cpu", "cuda"):
            raise ConfigError(f"FORGETLAB_DEVICE={name!r} is not valid; set it to cpu or cuda, or unset it")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch.cuda.is_available() is False; use --device cpu or auto")
    return torch.device(name)


def _load(config: cfg.RunConfig, root: Path, device: torch.device) -> Dataset:
    d = config.data
    split: dict[str, Any] = dict(eval_split=d.eval_split, holdout_fraction=d.holdout_fraction)
    if not d.normalize:  # raw pixels: the standardised tensors with the standardisation undone
        protocol = dataclasses.replace(config.protocol, permuted=0)
        standard = dataclasses.replace(config, data=dataclasses.replace(d, normalize=True), protocol=protocol)
        return builtin.unnormalized(load_data(standard, device), d.dataset)
    if d.path:
        return arrays.load_npz(d.path, device, **split)
    if d.dataset in cfg.DATASETS:
        return builtin.load(d.dataset, root, device, download=d.download, **split)
    if d.dataset in registry.DATASETS:
        return registry.load(d.dataset, root, device=device, **split)
    return arrays.load_torchvision(d.dataset, root, device, download=d.download, **split)


def load_data(config: cfg.RunConfig, device: torch.device) -> Dataset:
    """The configured data on ``device``; loaded at most once per process for each source and split."""
    root = cfg.data_root(config)
    if not config.data.path and (config.data.root or os.environ.get("FORGETLAB_DATA")) and not root.is_dir():
        raise DataError(
            f"data directory {root} does not exist; pass --data-dir (or FORGETLAB_DATA) pointing at "
            f"a folder with MNIST/raw, or leave both unset to download into ./data"
        )
    d, p = config.data, config.protocol
    source = str(Path(d.path).expanduser().resolve()) if d.path else d.dataset
    key = (source, str(root.resolve()), str(device), d.eval_split, d.holdout_fraction, d.normalize)
    if key not in _LOADED:
        with nothing_left_on_error(root):  # a failed download leaves no empty MNIST/raw behind
            _LOADED[key] = _load(config, root, device)
    if not p.permuted:
        return _LOADED[key]
    pkey = key + (p.permuted, p.permutation_seed)
    if pkey not in _LOADED:  # Permuted-MNIST: p.permuted resident copies (see scenarios.permuted)
        from forgetlab.data.scenarios import permuted

        _LOADED[pkey] = permuted(_LOADED[key], p.permuted, p.permutation_seed)
    return _LOADED[pkey]
