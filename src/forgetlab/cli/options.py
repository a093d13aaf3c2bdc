"""The options several commands share, each declared once here: an option means the same in every command
that takes it (only the help of ``--out`` and the defaults a command documents differ).

    add(parser, "seeds", "epochs", "lr", out="run directory (default runs/PRESET-TIMESTAMP)")
    api.make_config(preset, **config_options(args))
"""

from __future__ import annotations

import argparse
from typing import Any

from forgetlab.errors import ForgetlabError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise ForgetlabError(f"{message} (see '{self.prog} --help')")


DEVICES = ("auto", "cpu", "cuda")
SET_HELP = (
    "a config value (repeatable; every key: 'forgetlab keys'), e.g. train.l1=0.1, model.norm=batch, "
    "protocol.tasks=[[0,1],[2,3]]; a strategy.NAME.FIELD key applies to strategy NAME only"
)


def _workers_default() -> int:
    from forgetlab.workflows.pool import default_workers

    return default_workers()


# name -> (flag, argparse keywords); "help" may be replaced per command, nothing else
OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "strategy": (
        "--strategy",
        dict(
            metavar="NAME",
            help="continual-learning strategy (default naive; 'forgetlab keys' lists them), with the preset's "
            "settings for it; or a Strategy subclass of your own: path/to/file.py:ClassName or "
            "package.module:ClassName",
        ),
    ),
    "plugin": (
        "--plugin",
        dict(
            action="append",
            default=[],
            metavar="FILE_OR_MODULE",
            help="a Python file (path/to/file.py) or module (package.module) imported first, for the "
            "strategies, presets and datasets it registers (repeatable)",
        ),
    ),
    "seeds": (
        "--seeds",
        dict(type=int, nargs="+", metavar="S", help="seeds, e.g. --seeds 0 1 2 (default: the preset's, 0 1 2 3 4)"),
    ),
    "epochs": ("--epochs", dict(type=int, metavar="N", help="epochs per task (default: the preset's; 5)")),
    "batch-size": ("--batch-size", dict(type=int, metavar="N", help="examples per step (default: the preset's; 64)")),
    "lr": ("--lr", dict(type=float, metavar="LR", help="learning rate (default: the preset's; 0.01)")),
    "device": (
        "--device",
        dict(choices=DEVICES, help="where tensors live (default auto: $FORGETLAB_DEVICE, else cuda if available)"),
    ),
    "data-dir": (
        "--data-dir",
        dict(metavar="DIR", help="folder holding MNIST/raw (default $FORGETLAB_DATA or ./data)"),
    ),
    "config": (
        "--config",
        dict(metavar="FILE", help="JSON or TOML file of settings (the keys of --set), applied before --set"),
    ),
    "set": ("--set", dict(action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)),
    "threads": (
        "--threads",
        dict(
            type=int,
            metavar="N",
            help="torch CPU threads per process (default 1: as fast as more for these small networks, never "
            "slowed down by other busy processes, and the numbers the docs quote; more threads can speed up "
            "many seeds or LeNet-5 on an idle machine, and change the last bits of the results)",
        ),
    ),
    "workers": (
        "--workers",
        dict(
            type=int,
            metavar="N",
            help="local worker processes, programs largest first (default {workers}: one per core); results do "
            "not depend on it",
        ),
    ),
    "out": ("--out", dict(metavar="DIR", help="output directory")),
    "no-progress": ("--no-progress", dict(action="store_true", help="no progress bar")),
}

# the options that make a run's configuration, in the order --help lists them
CONFIG_OPTIONS = ("strategy", "plugin", "seeds", "epochs", "batch-size", "lr", "device", "data-dir", "config", "set")


def add(p: argparse.ArgumentParser, *names: str, **helps: str) -> None:
    """Declare the shared options ``names`` on ``p``; ``helps`` (``out=...``, ``no_progress=...``) replaces the
    help text of an option for this command."""
    for name in names:
        flag, kwargs = OPTIONS[name]
        kwargs = dict(kwargs, help=helps.pop(name.replace("-", "_"), kwargs["help"]))
        if name == "workers":
            kwargs["default"] = _workers_default()
            kwargs["help"] = kwargs["help"].format(workers=kwargs["default"])
        p.add_argument(flag, **kwargs)
    if helps:
        raise ValueError(f"help given for options not declared: {', '.join(helps)}")


# shared option -> make_config's keyword
_CONFIG_KEYWORDS = {
    "strategy": "strategy",
    "plugin": "plugins",
    "seeds": "seeds",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "device": "device",
    "data_dir": "data_dir",
    "config": "config_file",
    "set": "set",
}


def config_options(a: argparse.Namespace) -> dict[str, Any]:
    """``api.make_config``'s keyword arguments from the configuration options the command declared."""
    return {kw: getattr(a, attr) for attr, kw in _CONFIG_KEYWORDS.items() if getattr(a, attr, None) is not None}
