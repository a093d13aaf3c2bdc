"""forgetlab's command line: a thin layer over forgetlab.api.

Every error the user can cause ends as one line on stderr and exit status 2 (130 after Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from forgetlab.errors import ForgetlabError

EPILOG = """examples:
  forgetlab run mlp-sequential --seeds 0 1 2 3 4 --data-dir ../shared/data
  forgetlab run mlp-concurrent --epochs 3 --set model.hidden=256,128 --set train.l1=0.1
  forgetlab run mlp-sequential --grid train.lr=0.01,0.05 --seeds 0 1
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise ForgetlabError(f"{message} (see '{self.prog} --help')")


def _training_options(p: argparse.ArgumentParser, seeds_help: str) -> None:
    """The options shared by the commands that train a configuration: run and sweep."""
    p.add_argument("--seeds", type=int, nargs="+", metavar="S", help=seeds_help)
    p.add_argument("--epochs", type=int, help="epochs per task (default 5)")
    p.add_argument("--batch-size", type=int, help="examples per step (default 64)")
    p.add_argument("--lr", type=float, help="learning rate (default 0.01)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where tensors live (default auto)")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding MNIST/raw (default $FORGETLAB_DATA or ./data)")
    p.add_argument("--config", metavar="FILE", help="JSON or TOML file of settings, applied before --set")


def _threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch CPU threads per process (default 1: as fast as more for these small networks, "
        "never slowed down by other busy processes, and the numbers the docs quote; more "
        "threads can speed up many seeds or LeNet-5 on an idle machine, and change the last "
        "bits of the results)",
    )


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="forgetlab",
        description="Study catastrophic forgetting, fast: batched ensembles on resident tensors.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser(
        "run",
        help="train a preset and write a run directory",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
        description="Train every member (seeds x grid values) of PRESET as one batched program.",
    )
    r.add_argument("preset", metavar="PRESET", help="a preset name; 'forgetlab presets' lists them")
    r.add_argument(
        "--strategy",
        metavar="NAME",
        help="continual-learning strategy (default naive), with the "
        "preset's settings for it; 'forgetlab compare' runs several",
    )
    _training_options(r, "seeds of the ensemble (default: 0 1 2 3 4)")
    r.add_argument("--out", metavar="DIR", help="run directory (default runs/PRESET-TIMESTAMP)")
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config value, e.g. train.l1=0.1, model.norm=batch, protocol.tasks=[[0,1],[2,3]]",
    )
    r.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="train several values of a member-level key in the same program, e.g. train.l1=0,1",
    )
    r.add_argument(
        "--table",
        choices=("full", "last", "none"),
        default="full",
        help="print every epoch (full), each task's last epoch, or nothing",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument(
        "--log",
        choices=("tensorboard",),
        help="also write TensorBoard event files into "
        "RUN_DIR/tensorboard (scalars, histograms, projector); view with 'tensorboard --logdir RUN_DIR'",
    )
    r.add_argument(
        "--probes",
        nargs="?",
        const="all",
        metavar="NAME,...",
        help="record diagnostics into probes.npz (draw them with 'forgetlab plot'): all of them, or "
        "the ones named: curves, updates, sparsity, latent (the study's), linear, head, "
        "interference, units, drift (why it forgets)",
    )
    _threads_option(r)

    _compare_parser(sub)
    sub.add_parser("presets", help="list the presets, one line each")
    s = sub.add_parser("show", help="print the table of an existing run directory")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--table", choices=("full", "last"), default="full")

    pl = sub.add_parser("plot", help="draw the figures of a run directory recorded with --probes (no training)")
    pl.add_argument("run_dir", metavar="RUN_DIR")
    pl.add_argument("--out", metavar="DIR", help="where to write PNG and PDF files (default RUN_DIR/figures)")
    pl.add_argument(
        "--latent-tasks",
        choices=("all", "last"),
        default="all",
        help="t-SNE maps after every task or only the last (each map takes about a second)",
    )

    _reproduce_parser(sub)
    _sweep_parsers(sub)
    return p


def _reproduce_parser(sub) -> None:
    rp = sub.add_parser(
        "reproduce",
        help="re-run the whole study and write REPORT.md and report.html",
        description="Run every experiment of the study (cached by config), then write a report "
        "with our numbers beside the study's.",
    )
    rp.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds per experiment (default 3: 0..N-1)")
    rp.add_argument("--out", metavar="DIR", default="reproduce", help="output folder (default ./reproduce)")
    rp.add_argument("--data-dir", metavar="DIR", help="folder holding MNIST/raw (default $FORGETLAB_DATA or ./data)")
    rp.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    rp.add_argument("--epochs", type=int, help="epochs per task (default 5, as the study); fewer for a quick look")
    rp.add_argument(
        "--with-lenet",
        action="store_true",
        help="also run the LeNet-5 presets (no numbers in the study; about +4.5 min on 1 CPU thread "
        "with 3 seeds, over the 5-minute budget, so not in the default run)",
    )
    _threads_option(rp)
    rp.add_argument("--no-progress", action="store_true", help="no progress bar while the experiments train")
    rp.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config value for every experiment, as for run; the study-calibrated settings: "
        "--set train.optimizer=adam --set train.lr=0.001",
    )
    _workers_option(rp)


def _cmd_run(a) -> int:
    from forgetlab import api
    from forgetlab import config as cfg

    grid = {}
    for text in a.grid:
        key, values = cfg.parse_assignment(text)
        grid[key] = values
    options = dict(
        strategy=a.strategy,
        seeds=a.seeds,
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        device=a.device,
        data_dir=a.data_dir,
        config_file=a.config,
        set=a.set,
        grid=grid,
    )
    config = api.make_config(a.preset, **options)
    try:
        res = api.run(config, out=a.out, progress=not a.no_progress, probes=a.probes, log=a.log, threads=a.threads)
    except KeyboardInterrupt as e:
        print(f"interrupted: {e.args[0] if e.args else 'nothing was saved'}", file=sys.stderr)
        return 130
    if a.table != "none":
        print(res.table(last_epoch_only=a.table == "last"))
    print(f"{res.elapsed_s:.1f} s of training on {res.device}; results in {res.run_dir}/results.json", file=sys.stderr)
    return 0


def _cmd_presets(a) -> int:
    from forgetlab.config.presets import PRESETS

    width = max(map(len, PRESETS))
    for name, p in PRESETS.items():
        print(f"{name:<{width}}  {p.description}")
    return 0


def _cmd_show(a) -> int:
    from forgetlab.outputs.results import load

    print(load(a.run_dir).table(last_epoch_only=a.table == "last"))
    return 0


def _cmd_plot(a) -> int:
    from forgetlab.diagnostics import report as explain_report
    from forgetlab.diagnostics.figures import plot_run

    paths = plot_run(a.run_dir, a.out, latent_tasks=a.latent_tasks) + explain_report.plot_run(a.run_dir, a.out)
    print(f"{len(paths)} figures (PNG + PDF) in {paths[0].parent if paths else a.out}", file=sys.stderr)
    return 0


def _cmd_reproduce(a) -> int:
    from forgetlab.workflows.reproduce import reproduce

    out = reproduce(
        seeds=a.seeds,
        out=a.out,
        data_dir=a.data_dir,
        device=a.device,
        epochs=a.epochs,
        with_lenet=a.with_lenet,
        threads=a.threads,
        progress=not a.no_progress,
        workers=a.workers,
        set=a.set,
        log=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(f"{out / 'REPORT.md'}\n{out / 'report.html'}")
    return 0


# --- sweep and summarize ------------------------------------------------------------------------

SWEEP_EPILOG = """examples:
  forgetlab sweep mlp-sequential --grid train.l1=0,0.01,0.1,1,2 --seeds 0 1 2 3 --data-dir ../shared/data
  forgetlab sweep mlp-sequential --grid model.hidden=[120,84],[256,128] --grid train.lr=0.01,0.05 --dry-run
  forgetlab sweep mlp-l1-concurrent --seeds 0 1 2 --executor ray --address 10.0.0.1:6379
  forgetlab summarize sweeps/mlp-sequential-0123456789 --metric final_sparsity --x train.l1
Re-running the same command (or adding --resume) trains only the members not yet stored.
"""


def _workers_option(p: argparse.ArgumentParser) -> None:
    from forgetlab.workflows.pool import default_workers

    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        default=default_workers(),
        help=f"local worker processes, programs largest first (default {default_workers()}: one per "
        f"core); results do not depend on it",
    )


def _sweep_parsers(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    w = sub.add_parser(
        "sweep",
        help="run a grid of any config values x seeds, cached and resumable",
        formatter_class=fmt,
        epilog=SWEEP_EPILOG,
        description="Cross --grid values with --seeds; members differing only in lr, momentum, "
        "weight decay, L1 lambda, dropout and seed train as one batched program.",
    )
    w.add_argument(
        "preset",
        metavar="PRESET",
        nargs="?",
        help="a preset name (may be left out with --resume: the sweep in --out is resumed)",
    )
    w.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="any config key and its values, e.g. train.l1=0,0.1,1 or model.hidden=[256,128],[120,84]",
    )
    _training_options(w, "seeds (default: the preset's, 0 1 2 3 4)")
    w.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config value, as for run")
    w.add_argument("--out", metavar="DIR", help="sweep directory (default sweeps/PRESET-PLANHASH)")
    w.add_argument("--resume", action="store_true", help="continue the sweep recorded in --out (fails if none)")
    w.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    w.add_argument("--group-size", type=int, metavar="N", help="at most N members per program (default: no limit)")
    w.add_argument("--executor", choices=("local", "ray"), default="local", help="where programs run (default local)")
    w.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster address (HOST:PORT, ray://HOST:PORT or auto); default: start a local Ray instance",
    )
    _threads_option(w)
    _workers_option(w)
    w.add_argument("--no-progress", action="store_true", help="no progress bar")

    m = sub.add_parser(
        "summarize",
        help="mean, std and 95%% CI per configuration of a sweep; plots",
        formatter_class=fmt,
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


def _cmd_sweep(a) -> int:
    from forgetlab import api
    from forgetlab.workflows import sweep as sw

    if a.preset is None:
        if not (a.resume and a.out):
            raise ForgetlabError("give a PRESET, or --resume --out SWEEP_DIR to continue a recorded sweep")
        plan = sw.plan_from_spec(sw.load_spec(a.out))
    else:
        axes = sw.parse_grid(a.grid)
        config = api.make_config(
            a.preset,
            seeds=a.seeds,
            epochs=a.epochs,
            batch_size=a.batch_size,
            lr=a.lr,
            device=a.device,
            data_dir=a.data_dir,
            config_file=a.config,
            set=a.set,
        )
        plan = sw.make_plan(config, axes)
    from forgetlab.workflows.pool import check_positive

    check_positive(threads=a.threads, workers=a.workers)
    if a.dry_run:
        done = sw.Store(a.out).done(m.id for m in plan.members) if a.out else set()
        print(plan.describe(done, a.group_size))
        print(f"store: {a.out or sw.default_out(plan)} (dry run: nothing trained)")
        return 0
    try:
        res = sw.run_plan(
            plan,
            a.out,
            executor=a.executor,
            address=a.address,
            group_size=a.group_size,
            resume=a.resume,
            progress=not a.no_progress,
            workers=a.workers,
            threads=a.threads,
        )
    except KeyboardInterrupt:
        out = a.out or sw.default_out(plan)
        n = len(sw.Store(out).done(m.id for m in plan.members))
        print(
            f"interrupted: {n} of {len(plan.members)} members stored in {out}; run the same command to resume",
            file=sys.stderr,
        )
        return 130
    print(
        f"{res.trained} trained, {res.reused} reused; 'forgetlab summarize {res.out}' for statistics and plots",
        file=sys.stderr,
    )
    return 0


def _cmd_summarize(a) -> int:
    from forgetlab.workflows.summary import summarize

    text, paths = summarize(a.sweep_dir, a.metric, a.x, a.err, plots=not a.no_plots)
    print(text)
    if paths:
        print(f"plots: {len(paths)} files in {paths[0].parent}", file=sys.stderr)
    return 0


COMMANDS = {
    "run": _cmd_run,
    "presets": _cmd_presets,
    "show": _cmd_show,
    "plot": _cmd_plot,
    "reproduce": _cmd_reproduce,
    "sweep": _cmd_sweep,
    "summarize": _cmd_summarize,
}


# --- forgetlab compare: several strategies under one preset (forgetlab.workflows.compare) -----------------


def _compare_parser(sub) -> None:
    c = sub.add_parser(
        "compare",
        help="run several strategies under one preset; write a table and figures",
        description="Train each strategy (all seeds batched) under PRESET, with the preset's "
        "settings for that strategy; write compare.md, compare.csv and figures.",
    )
    c.add_argument("preset", metavar="PRESET")
    c.add_argument(
        "--strategies",
        required=True,
        metavar="A,B,C",
        help="comma-separated strategy names, e.g. naive,er,derpp ('all' = every registered one)",
    )
    c.add_argument("--seeds", type=int, nargs="+", metavar="S", help="seeds (default: 0 1 2 3 4)")
    c.add_argument("--device", choices=("auto", "cpu", "cuda"))
    c.add_argument("--data-dir", metavar="DIR")
    c.add_argument("--out", metavar="DIR", help="report directory (default runs/compare-PRESET-TIMESTAMP)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="applied to every strategy")
    c.add_argument(
        "--gap-steps",
        type=int,
        default=50,
        help="steps of each task probed for min-ACC and WC-ACC (De Lange et al. 2023)",
    )
    c.add_argument("--no-progress", action="store_true")
    _workers_option(c)
    _threads_option(c)


def _cmd_compare(a) -> int:
    from forgetlab.strategies import STRATEGIES
    from forgetlab.workflows.compare import compare

    names = list(STRATEGIES) if a.strategies == "all" else [n.strip() for n in a.strategies.split(",") if n.strip()]
    if not names:
        raise ForgetlabError(f"--strategies {a.strategies!r} names no strategy; valid: all, {', '.join(STRATEGIES)}")
    for n in names:
        STRATEGIES[n]  # unknown names: one-line error before any work
    compare(
        a.preset,
        names,
        seeds=a.seeds,
        out=a.out,
        data_dir=a.data_dir,
        device=a.device,
        set=a.set,
        gap_steps=a.gap_steps,
        progress=not a.no_progress,
        log=lambda s: print(s, file=sys.stderr),
        workers=a.workers,
        threads=a.threads,
    )
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
