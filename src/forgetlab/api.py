"""The Python API: what the CLI does, one call away in a notebook.

    import forgetlab
    res = forgetlab.run("mlp-sequential", seeds=[0, 1, 2], data_dir="../shared/data")
    print(res.table())
"""
from __future__ import annotations

import dataclasses
import io
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from . import config as cfg
from . import data as data_mod
from . import modules, presets, strategies
from .errors import ConfigError, DataError, ForgetlabError
from .hooks import Hook
from .pool import check_positive, torch_threads
from .results import Results, atomic_write
from .training import train

_DATA_CACHE: dict[tuple, data_mod.Dataset] = {}


def resolve_device(name: str) -> torch.device:
    """A device name; "auto" is $FORGETLAB_DEVICE when set (cpu or cuda), else cuda when available, else cpu."""
    if name == "auto":
        name = os.environ.get("FORGETLAB_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
        if name not in ("cpu", "cuda"):
            raise ConfigError(f"FORGETLAB_DEVICE={name!r} is not valid; set it to cpu or cuda, or unset it")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch.cuda.is_available() is False; use --device cpu or auto")
    return torch.device(name)


def make_config(base: str | cfg.RunConfig = "mlp-sequential", *, strategy: str | None = None,
                config_file: str | Path | None = None,
                seeds: Sequence[int] | None = None, epochs: int | None = None, batch_size: int | None = None,
                lr: float | None = None, device: str | None = None, data_dir: str | Path | None = None,
                set: dict | Sequence[str] | None = None, grid: dict | None = None) -> cfg.RunConfig:
    """Resolve a preset name (or a config), then a config file, then the options, then ``set`` values.

    ``strategy``: a strategy name; with a preset name, the preset's settings for that strategy apply too.
    """
    if isinstance(base, str):
        config = presets.get(base, strategy)
    else:
        config = base if strategy is None else cfg.override(base, "strategy.name", strategy)
    if config_file is not None:
        config = cfg.load_file(config_file, config)
    shortcuts = {"seeds": seeds, "train.epochs": epochs, "train.batch_size": batch_size, "train.lr": lr,
                 "device": device, "data.root": None if data_dir is None else str(data_dir)}
    for key, value in shortcuts.items():
        if value is not None:
            config = cfg.override(config, key, list(value) if key == "seeds" else value)
    pairs = set.items() if isinstance(set, dict) else [cfg.parse_assignment(s) for s in (set or [])]
    for key, value in pairs:
        config = cfg.override(config, key, value)
    for key, values in (grid or {}).items():
        config = cfg.with_grid(config, key, values)
    config = cfg.validate(config)
    strategies.validate(config)  # the strategy's own checks
    return config


def load_data(config: cfg.RunConfig, device: torch.device) -> data_mod.Dataset:
    root = cfg.data_root(config)
    if not config.data.path and (config.data.root or os.environ.get("FORGETLAB_DATA")) and not root.is_dir():
        raise DataError(f"data directory {root} does not exist; pass --data-dir (or FORGETLAB_DATA) pointing at "
                        f"a folder with MNIST/raw, or leave both unset to download into ./data")
    d, p = config.data, config.protocol
    source = str(Path(d.path).expanduser().resolve()) if d.path else d.dataset
    key = (source, str(root.resolve()), str(device), d.eval_split, d.holdout_fraction, d.normalize)
    if key not in _DATA_CACHE:
        split = dict(eval_split=d.eval_split, holdout_fraction=d.holdout_fraction)
        if not d.normalize:  # raw pixels: the standardised tensors with the standardisation undone
            standard = dataclasses.replace(config, data=dataclasses.replace(d, normalize=True),
                                           protocol=dataclasses.replace(p, permuted=0))
            _DATA_CACHE[key] = data_mod.unnormalized(load_data(standard, device), d.dataset)
        elif d.path:
            _DATA_CACHE[key] = data_mod.load_npz(d.path, device, **split)
        elif d.dataset in cfg.DATASETS:
            _DATA_CACHE[key] = data_mod.load(d.dataset, root, device, download=d.download, **split)
        else:
            _DATA_CACHE[key] = data_mod.load_torchvision(d.dataset, root, device, download=d.download, **split)
    if not p.permuted:
        return _DATA_CACHE[key]
    pkey = key + (p.permuted, p.permutation_seed)
    if pkey not in _DATA_CACHE:  # Permuted-MNIST: p.permuted resident copies (see scenarios.permuted)
        from .scenarios import permuted

        _DATA_CACHE[pkey] = permuted(_DATA_CACHE[key], p.permuted, p.permutation_seed)
    return _DATA_CACHE[pkey]


def prepare_out(out: str | Path | None, name: str) -> Path:
    """Create (or reuse) the run directory and prove it is writable before any training starts."""
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{name}-{stamp}"
        i = 1
        while out.exists():
            out, i = Path("runs") / f"{name}-{stamp}-{i}", i + 1
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ForgetlabError(f"cannot write to output directory {out} ({e.strerror}); choose another with --out") from None
    return out


def _tqdm_progress(desc: str):
    from tqdm.auto import tqdm

    bar = None

    def update(done: int, total: int, status: str) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=False, disable=None)
        elif bar.total != total:  # a strategy widened a task's data
            bar.total = total
        bar.update(done - bar.n)
        if status:
            bar.set_postfix_str(status)
        if done >= total and status:
            bar.close()

    return update


def multi_progress(desc: str):
    """One bar over several programs that report (key, done_steps, total_steps, status), e.g. from worker
    processes: the steps of every program started so far, the latest status beside them."""
    from tqdm.auto import tqdm

    bar = tqdm(total=0, desc=desc, unit="step", dynamic_ncols=True, leave=False, disable=None)
    steps: dict = {}

    def update(key, done: int, total: int, status: str) -> None:
        steps[key] = (done, total)
        bar.total = sum(t for _, t in steps.values())
        bar.update(sum(d for d, _ in steps.values()) - bar.n)
        if status:
            bar.set_postfix_str(f"{key}: {status}")

    update.close = bar.close
    return update


def describe(config: cfg.RunConfig) -> str:
    n = len(cfg.members(config))
    axes = "".join(f" x {len(v)} {k}" for k, v in config.grid)
    return (f"{config.name}: {n} member{'s' * (n > 1)} ({len(config.seeds)} seeds{axes}) as one program, "
            f"{len(config.tasks)} task(s) x {config.train.epochs} epochs")


def _as_dict(pairs: dict | Sequence[str] | None) -> dict:
    return dict(pairs) if isinstance(pairs, dict) else dict(cfg.parse_assignment(s) for s in (pairs or []))


def _logger(log: str | None, run_dir: Path | None):
    """The TensorBoard hook of ``log`` ("tensorboard" or "tensorboard:DIR"), or None."""
    if not log:
        return None
    kind, _, where = log.partition(":")
    if kind != "tensorboard":
        raise ConfigError(f"log={log!r} is not valid; choose tensorboard or tensorboard:DIR")
    if not where and run_dir is None:
        raise ConfigError("log=tensorboard writes into the run directory; with save=False give tensorboard:DIR")
    from .tensorboard import TensorBoardLogger

    return TensorBoardLogger(Path(where) if where else run_dir / "tensorboard")


def run(base: str | cfg.RunConfig = "mlp-sequential", *, out: str | Path | None = None, save: bool = True,
        progress=True, hooks: Sequence[Hook] = (), dataset: data_mod.Dataset | None = None,
        probes=None, model=None, log: str | None = None, threads: int | None = None, **options) -> Results:
    """Train a preset (or a config) and return its Results; with ``save``, also write the run directory.

    ``options`` are those of ``make_config``: seeds, epochs, batch_size, lr, device, data_dir, config_file,
    set (dict of dotted keys) and grid (dict of member-level key -> values). ``dataset`` replaces the
    configured one (any ``data.Dataset`` of resident tensors).
    ``progress``: True draws a bar; a callable(done_steps, total_steps, status) receives the progress instead.
    ``probes``: True (every probe), probe names (``["linear", "head"]`` or "linear,head"; ``probes.PROBE_NAMES``)
    or a ``probes.ProbeConfig`` records diagnostics (``results.probes``, and probes.npz/probes.json in the run
    directory).
    ``model``: a ``torch.nn.Module`` class or factory trained instead of the configured network (its keyword
    arguments in ``set={"model.module_args": '{...}'}``; see forgetlab.modules).
    ``log="tensorboard"`` writes TensorBoard event files into RUN_DIR/tensorboard (or ``log="tensorboard:DIR"``).
    ``threads``: torch threads while training (default 1, ``pool.DEFAULT_THREADS``; the previous count is
    restored afterwards).
    On Ctrl-C the finished epochs are saved (status "interrupted") and KeyboardInterrupt is raised again.
    """
    if model is not None:
        options["set"] = {**_as_dict(options.get("set")), "model.module": modules.register(model)}
    check_positive(threads=threads)
    config = make_config(base, **options)
    if probes:
        from .probes import probe_config

        probes = probe_config(probes)  # a wrong name fails here, before any work
    modules.check(config.model, config.grid)
    if config.model.module:
        modules.resolve(config.model.module)  # a bad spec fails before any data is loaded
    run_dir = prepare_out(out, config.name) if save else None
    logger = _logger(log, run_dir)
    device = resolve_device(config.device)
    dataset = dataset or load_data(config, device)
    data_mod.check_tasks(dataset, config.tasks)
    if progress is True:
        print(describe(config), file=sys.stderr)
    recorder = None
    if probes:
        from .probes import Probes

        recorder = Probes(probes)
        hooks = [*hooks, *recorder.hooks]
    if logger is not None:
        hooks = [*hooks, logger]
    step = progress if callable(progress) else _tqdm_progress(config.name) if progress else None
    with torch_threads(threads):
        results = train(config, dataset, hooks, step)
    if recorder is not None:
        members = [{"seed": m.seed, "hparams": m.hparams} for m in results.members]
        results.probes = recorder.data(members, config.tasks)
    if logger is not None:
        logger.close(results)
    if run_dir is not None:
        results.save(run_dir)
        buf = io.BytesIO()
        members = [{"seed": m.seed, "hparams": m.hparams} for m in results.members]
        torch.save({"members": members, "state_dict": results.model.state_dict()}, buf)
        atomic_write(run_dir / "weights.pt", buf.getvalue())
        if results.probes is not None:
            results.probes.save(run_dir)
    if results.status == "interrupted":
        raise KeyboardInterrupt(f"interrupted; finished epochs saved in {run_dir}")
    return results
