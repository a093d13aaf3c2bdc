"""The Python API: what the CLI does, one call away in a notebook.

    import forgetlab
    res = forgetlab.run("mlp-sequential", seeds=[0, 1, 2], data_dir="../shared/data")
    print(res.table())

``make_config`` and ``run`` live here; ``load`` reads a run directory back (``forgetlab.load``), and the
workflows are one call each: ``forgetlab.workflows.compare.compare``, ``forgetlab.workflows.sweep.sweep``,
``forgetlab.workflows.reproduce.reproduce``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forgetlab import config as cfg
from forgetlab import data as data_mod
from forgetlab import strategies
from forgetlab.config import presets
from forgetlab.data import sources as data_sources
from forgetlab.engine import modules
from forgetlab.engine.hooks import Hook
from forgetlab.engine.training import train
from forgetlab.errors import ConfigError
from forgetlab.outputs import progress as progress_mod
from forgetlab.outputs import run_dir as run_dir_mod
from forgetlab.outputs.files import nothing_left_on_error
from forgetlab.outputs.results import Results, load
from forgetlab.workflows.pool import check_positive, torch_threads

__all__ = ["make_config", "run", "load", "describe"]


def make_config(
    base: str | cfg.RunConfig = "mlp-sequential",
    *,
    strategy: str | None = None,
    config_file: str | Path | None = None,
    seeds: Sequence[int] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    device: str | None = None,
    data_dir: str | Path | None = None,
    set: dict | Sequence[str] | Sequence[tuple[str, Any]] | None = None,
    grid: dict | None = None,
    plugins: Sequence[str] = (),
) -> cfg.RunConfig:
    """Resolve a preset name (or a config), then a config file, then the options, then ``set`` values;
    validated (the config, its data source and its strategy) before it is returned.

    ``strategy``: a strategy name, or a ``path/to/file.py:Class`` / ``package.module:Class`` spec of one
    (forgetlab.plugins); with a preset name, the preset's settings for that strategy apply too.
    ``plugins``: files or modules imported first, for what they register (recorded in ``config.plugins``).
    """
    imported = cfg.with_plugins(cfg.RunConfig(), plugins).plugins
    if strategy is not None:
        strategy, target = strategies.resolve(strategy)
        imported += (target,) if target else ()
    if isinstance(base, str):
        config = presets.get(base, strategy)
    else:
        config = base if strategy is None else cfg.override(base, "strategy.name", strategy)
    config = cfg.with_plugins(config, imported)
    if config_file is not None:
        config = cfg.load_file(config_file, config)
    shortcuts = {
        "seeds": seeds,
        "train.epochs": epochs,
        "train.batch_size": batch_size,
        "train.lr": lr,
        "device": device,
        "data.root": None if data_dir is None else str(data_dir),
    }
    for key, value in shortcuts.items():
        if value is not None:
            config = cfg.override(config, key, value)
    for key, value in cfg.assignments(set):
        config = cfg.override(config, key, value)
    for key, values in (grid or {}).items():
        config = cfg.with_grid(config, key, values)
    config = cfg.validate(config)
    data_mod.check_config(config)  # the data set exists; a built-in one has the tasks' classes
    strategies.validate(config)  # the strategy's own checks
    return config


def describe(config: cfg.RunConfig) -> str:
    n = len(cfg.members(config))
    axes = "".join(f" x {len(v)} {k}" for k, v in config.grid)
    return (
        f"{config.name}: {n} member{'s' * (n > 1)} ({len(config.seeds)} seeds{axes}) as one program, "
        f"{len(config.tasks)} task(s) x {config.train.epochs} epochs"
    )


def _logger(log: str | None, run_dir: Path | None):
    """The TensorBoard hook of ``log`` ("tensorboard" or "tensorboard:DIR"), or None."""
    if not log:
        return None
    kind, _, where = log.partition(":")
    if kind != "tensorboard":
        raise ConfigError(f"log={log!r} is not valid; choose tensorboard or tensorboard:DIR")
    if where:
        path = Path(where)
    elif run_dir is not None:
        path = run_dir / "tensorboard"
    else:
        raise ConfigError("log=tensorboard writes into the run directory; with save=False give tensorboard:DIR")
    from forgetlab.outputs.tensorboard import TensorBoardLogger

    return TensorBoardLogger(path)


def _prepare(base, probes, model, options: dict):
    """Everything ``run`` checks before any work: the config, the probe names, the user's network."""
    if model is not None:
        options["set"] = [*cfg.assignments(options.get("set")), ("model.module", modules.register(model))]
    config = make_config(base, **options)
    if probes:
        from forgetlab.diagnostics import probe_config

        probes = probe_config(probes)  # a wrong name fails here, before any work
    modules.check(config.model, config.grid)
    if config.model.module:
        modules.resolve(config.model.module)  # a bad spec fails before any data is loaded
    return config, probes


def run(
    base: str | cfg.RunConfig = "mlp-sequential",
    *,
    out: str | Path | None = None,
    save: bool = True,
    progress=True,
    hooks: Sequence[Hook] = (),
    dataset: data_mod.Dataset | None = None,
    probes=None,
    model=None,
    log: str | None = None,
    threads: int | None = None,
    **options,
) -> Results:
    """Train a preset (or a config) and return its Results; with ``save``, also write the run directory.

    ``options`` are those of ``make_config``: seeds, epochs, batch_size, lr, device, data_dir, config_file,
    set (dict of dotted keys) and grid (dict of member-level key -> values). ``dataset`` replaces the
    configured one (any ``data.Dataset`` of resident tensors).
    ``progress``: True draws a bar; a callable(done_steps, total_steps, status) receives the progress instead.
    ``probes``: True (every probe), probe names (``["linear", "head"]`` or "linear,head"; ``diagnostics.PROBE_NAMES``)
    or a ``diagnostics.ProbeConfig`` records diagnostics (``results.probes``, and probes.npz/probes.json in the
    run directory).
    ``model``: a ``torch.nn.Module`` class or factory trained instead of the configured network (its keyword
    arguments in ``set={"model.module_args": '{...}'}``; see forgetlab.engine.modules).
    ``log="tensorboard"`` writes TensorBoard event files into RUN_DIR/tensorboard (or ``log="tensorboard:DIR"``).
    ``threads``: torch threads while training (default 1, ``workflows.pool.DEFAULT_THREADS``; the previous
    count is restored afterwards).
    On Ctrl-C the finished epochs are saved (status "interrupted") and KeyboardInterrupt is raised again.
    """
    check_positive(threads=threads)
    config, probes = _prepare(base, probes, model, options)
    if not save:
        return _train(config, None, progress, hooks, dataset, probes, log, threads)
    run_dir = run_dir_mod.choose(out, config.name)
    with nothing_left_on_error(run_dir):  # a run that fails before any file is written leaves no folder
        run_dir_mod.prepare(run_dir, config.name)
        return _train(config, run_dir, progress, hooks, dataset, probes, log, threads)


def _train(config, run_dir: Path | None, progress, hooks, dataset, probes, log, threads) -> Results:
    """``run`` after its checks: the data, the hooks, training, then every file of the run into ``run_dir``."""
    logger = _logger(log, run_dir)
    device = data_sources.resolve_device(config.device)
    dataset = dataset or data_sources.load_data(config, device)
    data_mod.check_tasks(dataset, config.tasks)
    if progress is True:
        print(describe(config), file=sys.stderr)
    recorder = None
    if probes:
        from forgetlab.diagnostics import Probes

        recorder = Probes(probes)
        hooks = [*hooks, *recorder.hooks]
    if logger is not None:
        hooks = [*hooks, logger]
    step = progress if callable(progress) else progress_mod.run_bar(config.name) if progress else None
    with torch_threads(threads):
        results = train(config, dataset, hooks, step)
    if recorder is not None:
        members = [{"seed": m.seed, "hparams": m.hparams} for m in results.members]
        results.probes = recorder.data(members, config.tasks)
    if logger is not None:
        logger.close(results)
    if run_dir is not None:
        run_dir_mod.write(run_dir, results)
    if results.status == "interrupted":
        raise KeyboardInterrupt(f"interrupted; finished epochs saved in {run_dir}")
    return results
