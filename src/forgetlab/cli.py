"""forgetlab's command line: a thin layer over forgetlab.api.

Every error the user can cause ends as one line on stderr and exit status 2 (130 after Ctrl-C).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .errors import ForgetlabError

EPILOG = """examples:
  forgetlab run mlp-sequential --seeds 0 1 2 3 4 --data-dir ../shared/data
  forgetlab run mlp-concurrent --epochs 3 --set model.hidden=256,128 --set train.l1=0.1
  forgetlab run mlp-sequential --grid train.lr=0.01,0.05 --seeds 0 1
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise ForgetlabError(f"{message} (see '{self.prog} --help')")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="forgetlab", description="Study catastrophic forgetting, fast: batched ensembles on "
                "resident tensors.", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser("run", help="train a preset and write a run directory",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Train every member (seeds x grid values) of PRESET as one batched program.")
    r.add_argument("preset", metavar="PRESET", help="a preset name; 'forgetlab presets' lists them")
    r.add_argument("--strategy", metavar="NAME", help="continual-learning strategy (default naive), with the "
                   "preset's settings for it; 'forgetlab compare' runs several")
    r.add_argument("--seeds", type=int, nargs="+", metavar="S", help="seeds of the ensemble (default: 0 1 2 3 4)")
    r.add_argument("--epochs", type=int, help="epochs per task (default 5)")
    r.add_argument("--batch-size", type=int, help="examples per step (default 64)")
    r.add_argument("--lr", type=float, help="learning rate (default 0.01)")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where tensors live (default auto)")
    r.add_argument("--data-dir", metavar="DIR", help="folder holding MNIST/raw (default $FORGETLAB_DATA or ./data)")
    r.add_argument("--out", metavar="DIR", help="run directory (default runs/PRESET-TIMESTAMP)")
    r.add_argument("--config", metavar="FILE", help="JSON or TOML file of settings, applied before --set")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config value, e.g. train.l1=0.1, model.norm=batch, protocol.tasks=[[0,1],[2,3]]")
    r.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="train several values of a member-level key in the same program, e.g. train.l1=0,1")
    r.add_argument("--table", choices=("full", "last", "none"), default="full",
                   help="print every epoch (full), each task's last epoch, or nothing")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--probes", action="store_true",
                   help="record the study's diagnostics (forgetting/probability curves, relative updates, "
                        "sparsity, latent activations) into probes.npz; draw them with 'forgetlab plot'")

    _compare_parser(sub)
    sub.add_parser("presets", help="list the presets, one line each")
    s = sub.add_parser("show", help="print the table of an existing run directory")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--table", choices=("full", "last"), default="full")

    pl = sub.add_parser("plot", help="draw the figures of a run directory recorded with --probes (no training)")
    pl.add_argument("run_dir", metavar="RUN_DIR")
    pl.add_argument("--out", metavar="DIR", help="where to write PNG and PDF files (default RUN_DIR/figures)")
    pl.add_argument("--latent-tasks", choices=("all", "last"), default="all",
                    help="t-SNE maps after every task or only the last (each map takes about a second)")

    rp = sub.add_parser("reproduce", help="re-run the whole study and write REPORT.md and report.html",
                        description="Run every experiment of the study (cached by config), then write a report "
                                    "with our numbers beside the study's.")
    rp.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds per experiment (default 3: 0..N-1)")
    rp.add_argument("--out", metavar="DIR", default="reproduce", help="output folder (default ./reproduce)")
    rp.add_argument("--data-dir", metavar="DIR", help="folder holding MNIST/raw (default $FORGETLAB_DATA or ./data)")
    rp.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    rp.add_argument("--epochs", type=int, help="epochs per task (default 5, as the study); fewer for a quick look")
    rp.add_argument("--with-lenet", action="store_true",
                    help="also run the LeNet-5 presets (not in the study's text; slow on a CPU)")
    rp.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: on a shared 2-core machine more threads spin and lose)")
    return p


def _cmd_run(a) -> int:
    from . import api, config as cfg

    grid = {}
    for text in a.grid:
        key, values = cfg.parse_assignment(text)
        grid[key] = values
    options = dict(strategy=a.strategy, seeds=a.seeds, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, device=a.device,
                   data_dir=a.data_dir, config_file=a.config, set=a.set, grid=grid)
    config = api.make_config(a.preset, **options)
    try:
        res = api.run(config, out=a.out, progress=not a.no_progress, probes=a.probes)
    except KeyboardInterrupt as e:
        print(f"interrupted: {e.args[0] if e.args else 'nothing was saved'}", file=sys.stderr)
        return 130
    if a.table != "none":
        print(res.table(last_epoch_only=a.table == "last"))
    print(f"{res.elapsed_s:.1f} s of training on {res.device}; results in {res.run_dir}/results.json", file=sys.stderr)
    return 0


def _cmd_presets(a) -> int:
    from .presets import PRESETS

    width = max(map(len, PRESETS))
    for name, p in PRESETS.items():
        print(f"{name:<{width}}  {p.description}")
    return 0


def _cmd_show(a) -> int:
    from .results import load

    print(load(a.run_dir).table(last_epoch_only=a.table == "last"))
    return 0


def _cmd_plot(a) -> int:
    from .figures import plot_run

    paths = plot_run(a.run_dir, a.out, latent_tasks=a.latent_tasks)
    print(f"{len(paths)} figures (PNG + PDF) in {paths[0].parent if paths else a.out}", file=sys.stderr)
    return 0


def _cmd_reproduce(a) -> int:
    from .report import reproduce

    out = reproduce(seeds=a.seeds, out=a.out, data_dir=a.data_dir, device=a.device, epochs=a.epochs,
                    with_lenet=a.with_lenet, threads=a.threads, log=lambda text: print(text, file=sys.stderr, flush=True))
    print(f"{out / 'REPORT.md'}\n{out / 'report.html'}")
    return 0


COMMANDS = {"run": _cmd_run, "presets": _cmd_presets, "show": _cmd_show, "plot": _cmd_plot,
            "reproduce": _cmd_reproduce}


# --- forgetlab compare: several strategies under one preset (forgetlab.compare) -----------------

def _compare_parser(sub) -> None:
    c = sub.add_parser("compare", help="run several strategies under one preset; write a table and figures",
                       description="Train each strategy (all seeds batched) under PRESET, with the preset's "
                       "settings for that strategy; write compare.md, compare.csv and figures.")
    c.add_argument("preset", metavar="PRESET")
    c.add_argument("--strategies", required=True, metavar="A,B,C",
                   help="comma-separated strategy names, e.g. naive,er,derpp ('all' = every registered one)")
    c.add_argument("--seeds", type=int, nargs="+", metavar="S", help="seeds (default: 0 1 2 3 4)")
    c.add_argument("--device", choices=("auto", "cpu", "cuda"))
    c.add_argument("--data-dir", metavar="DIR")
    c.add_argument("--out", metavar="DIR", help="report directory (default runs/compare-PRESET-TIMESTAMP)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="applied to every strategy")
    c.add_argument("--gap-steps", type=int, default=50, help="steps of each task probed for the stability gap")
    c.add_argument("--no-progress", action="store_true")


def _cmd_compare(a) -> int:
    from .compare import compare
    from .strategies import STRATEGIES

    names = list(STRATEGIES) if a.strategies == "all" else [n.strip() for n in a.strategies.split(",") if n.strip()]
    for n in names:
        STRATEGIES[n]  # unknown names: one-line error before any work
    compare(a.preset, names, seeds=a.seeds, out=a.out, data_dir=a.data_dir, device=a.device, set=a.set,
            gap_steps=a.gap_steps, progress=not a.no_progress, log=lambda s: print(s, file=sys.stderr))
    return 0


COMMANDS["compare"] = _cmd_compare



def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except ForgetlabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
