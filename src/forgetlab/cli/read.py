"""The commands that read what was trained (show, plot, summarize) and list what can be configured
(presets, keys). None of them trains, so none takes the configuration options (--set and the like)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from forgetlab.cli.options import add


def add_show(sub) -> None:
    s = sub.add_parser("show", help="print the table of an existing run directory")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--table", choices=("full", "last"), default="full")


def cmd_show(a) -> int:
    from forgetlab.outputs.results import load

    print(load(a.run_dir).table(last_epoch_only=a.table == "last"))
    return 0


def add_plot(sub) -> None:
    pl = sub.add_parser("plot", help="draw the figures of a run directory recorded with --probes (no training)")
    pl.add_argument("run_dir", metavar="RUN_DIR")
    add(pl, "out", out="where to write PNG and PDF files (default RUN_DIR/figures)")
    pl.add_argument(
        "--latent-tasks",
        choices=("all", "last"),
        default="all",
        help="t-SNE maps after every task or only the last (each map takes about a second)",
    )


def cmd_plot(a) -> int:
    from forgetlab.diagnostics import report as explain_report
    from forgetlab.diagnostics.figures import plot_run
    from forgetlab.outputs.files import nothing_left_on_error

    with nothing_left_on_error(Path(a.out) if a.out else Path(a.run_dir) / "figures"):
        paths = plot_run(a.run_dir, a.out, latent_tasks=a.latent_tasks) + explain_report.plot_run(a.run_dir, a.out)
    print(f"{len(paths)} figures (PNG + PDF) in {paths[0].parent if paths else a.out}", file=sys.stderr)
    return 0


def add_summarize(sub) -> None:
    from forgetlab.cli.train import SWEEP_EPILOG

    m = sub.add_parser(
        "summarize",
        help="mean, std and 95%% CI per configuration of a sweep; plots",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=SWEEP_EPILOG,
    )
    m.add_argument("sweep_dir", metavar="SWEEP_DIR")
    m.add_argument(
        "--metric",
        action="append",
        metavar="NAME",
        help="final_val_acc, final_val_loss, final_train_loss, final_sparsity, avg_acc, forgetting, bwt "
        "(repeatable; default final_val_acc, final_sparsity, forgetting)",
    )
    m.add_argument("--x", action="append", metavar="KEY", help="swept key on the plots' x axis (default: each one)")
    m.add_argument("--err", choices=("ci", "std"), default="ci", help="error bars: 95%% CI (default) or std")
    m.add_argument("--no-plots", action="store_true", help="only the table and the CSV/Parquet files")


def cmd_summarize(a) -> int:
    from forgetlab.workflows.summary import PARQUET_NOTE, parquet_available, summarize

    text, paths = summarize(a.sweep_dir, a.metric, a.x, a.err, plots=not a.no_plots)
    print(text)
    if not parquet_available():
        print(PARQUET_NOTE, file=sys.stderr)
    if paths:
        print(f"plots: {len(paths)} files in {paths[0].parent}", file=sys.stderr)
    return 0


def add_presets(sub) -> None:
    p = sub.add_parser("presets", help="list the presets, one line each")
    add(p, "plugin")


def cmd_presets(a) -> int:
    from forgetlab import config as cfg
    from forgetlab.config.presets import PRESETS

    cfg.with_plugins(cfg.RunConfig(), a.plugin)
    width = max(map(len, PRESETS))
    for name, p in PRESETS.items():
        print(f"{name:<{width}}  {p.description}")
    return 0


def add_keys(sub) -> None:
    k = sub.add_parser(
        "keys",
        help="list every config key (for --set, --grid and config files) with its type and default",
        description="Every key --set, --grid and --config accept, with its type and default; member-level "
        "keys (marked *) may take several values inside one batched program (--grid on run).",
    )
    add(k, "plugin", "strategy", strategy="also list the settings of this strategy (default: every strategy's)")


def _type_name(typ) -> str:
    return str(typ).replace("typing.", "") if getattr(typ, "__args__", None) else typ.__name__


def _shown(v) -> str:
    from forgetlab.outputs.formatting import value

    return value(v) or '""'


def keys_table(strategies: list[str]) -> str:
    """Every config key with its type and its default (without a preset), then each strategy's settings."""
    import dataclasses
    from typing import get_type_hints

    from forgetlab import config as cfg
    from forgetlab.config.strategy import STRATEGY_SETTINGS

    base = cfg.RunConfig()
    rows = [
        (k + " *" * (k in cfg.MEMBER_KEYS), _type_name(cfg.key_type(k)), _shown(cfg.get(base, k)))
        for k in cfg.valid_keys()
        if k.count(".") < 2 or not k.startswith("strategy.")
    ]
    for name in strategies:
        settings = STRATEGY_SETTINGS[name]
        types = get_type_hints(settings)
        rows += [
            (f"strategy.{name}.{f.name}", _type_name(types[f.name]), _shown(getattr(settings(), f.name)))
            for f in dataclasses.fields(settings)
        ]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{k:<{widths[0]}}  {t:<{widths[1]}}  {d}" for k, t, d in rows]
    note = "defaults without a preset (a preset sets some: 'forgetlab presets'); * member-level (--grid on run)"
    return "\n".join([note, *lines, *_names()])


def _names() -> list[str]:
    """What strategy.name and data.dataset accept."""
    from forgetlab import config as cfg
    from forgetlab.data import DATASETS
    from forgetlab.strategies import STRATEGIES

    return [
        f"strategy.name / --strategy: {', '.join(STRATEGIES)}, or path/to/file.py:ClassName, package.module:ClassName",
        f"data.dataset: {', '.join([*cfg.DATASETS, *DATASETS])}, or a torchvision dataset class "
        "(KMNIST, EMNIST, CIFAR10, ...); data.path: a .npz of x_train, y_train, x_test, y_test",
    ]


def cmd_keys(a) -> int:
    from forgetlab import config as cfg
    from forgetlab import strategies

    cfg.with_plugins(cfg.RunConfig(), a.plugin)
    names = [strategies.resolve(a.strategy)[0]] if a.strategy else list(strategies.STRATEGIES)
    print(keys_table(names))
    return 0


COMMANDS = {
    "show": (add_show, cmd_show),
    "plot": (add_plot, cmd_plot),
    "summarize": (add_summarize, cmd_summarize),
    "presets": (add_presets, cmd_presets),
    "keys": (add_keys, cmd_keys),
}
