"""The commands that train: run (one batched program), sweep (a grid of programs), compare (several
strategies under one preset) and reproduce (the whole study). Each is its parser and its handler."""

from __future__ import annotations

import argparse
import sys

from forgetlab.cli.options import CONFIG_OPTIONS, add, config_options
from forgetlab.errors import ForgetlabError

RAW = argparse.RawDescriptionHelpFormatter
RUN_EPILOG = """examples:
  forgetlab run mlp-sequential --seeds 0 1 2 3 4 --data-dir ../shared/data
  forgetlab run mlp-concurrent --epochs 3 --set model.hidden=256,128 --set train.l1=0.1
  forgetlab run mlp-sequential --grid train.lr=0.01,0.05 --seeds 0 1
  forgetlab run mlp-sequential --strategy my_strategy.py:MyReplay --set strategy.my-replay.memory=200
"""
SWEEP_EPILOG = """examples:
  forgetlab sweep mlp-sequential --grid train.l1=0,0.01,0.1,1,2 --seeds 0 1 2 3 --data-dir ../shared/data
  forgetlab sweep mlp-sequential --grid model.hidden=[120,84],[256,128] --grid train.lr=0.01,0.05 --dry-run
  forgetlab sweep mlp-l1-concurrent --seeds 0 1 2 --executor ray --address 10.0.0.1:6379
  forgetlab summarize sweeps/mlp-sequential-0123456789 --metric final_sparsity --x train.l1
Re-running the same command (or adding --resume) trains only the members not yet stored.
"""
COMPARE_EPILOG = """examples:
  forgetlab compare buzzega2020-seq-mnist-200 --strategies naive,er,derpp --seeds 0 1 2
  forgetlab compare mlp-sequential --strategies naive,er,my_strategy.py:MyReplay --set strategy.er.memory=200
"""


def _interrupted(message: str) -> int:
    print(f"interrupted: {message}", file=sys.stderr)
    return 130


# --- run ------------------------------------------------------------------------------------------


def add_run(sub) -> None:
    r = sub.add_parser(
        "run",
        help="train a preset and write a run directory",
        formatter_class=RAW,
        epilog=RUN_EPILOG,
        description="Train every member (seeds x grid values) of PRESET as one batched program.",
    )
    r.add_argument("preset", metavar="PRESET", help="a preset name; 'forgetlab presets' lists them")
    add(r, *CONFIG_OPTIONS)
    r.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="train several values of a member-level key in the same program, e.g. train.l1=0,1",
    )
    add(r, "out", "threads", "no-progress", out="run directory (default runs/PRESET-TIMESTAMP)")
    r.add_argument(
        "--table",
        choices=("full", "last", "none"),
        default="full",
        help="print every epoch (full), each task's last epoch, or nothing",
    )
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


def cmd_run(a) -> int:
    from forgetlab import api
    from forgetlab import config as cfg

    grid = dict(cfg.parse_assignment(text) for text in a.grid)
    config = api.make_config(a.preset, grid=grid, **config_options(a))
    try:
        res = api.run(config, out=a.out, progress=not a.no_progress, probes=a.probes, log=a.log, threads=a.threads)
    except KeyboardInterrupt as e:
        return _interrupted(e.args[0] if e.args else "nothing was saved")
    if a.table != "none":
        print(res.table(last_epoch_only=a.table == "last"))
    print(f"{res.elapsed_s:.1f} s of training on {res.device}; results in {res.run_dir}/results.json", file=sys.stderr)
    return 0


# --- sweep ----------------------------------------------------------------------------------------


def add_sweep(sub) -> None:
    w = sub.add_parser(
        "sweep",
        help="run a grid of any config values x seeds, cached and resumable",
        formatter_class=RAW,
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
    add(w, *CONFIG_OPTIONS)
    w.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="any config key and its values, e.g. train.l1=0,0.1,1 or model.hidden=[256,128],[120,84]",
    )
    add(w, "out", "threads", "workers", "no-progress", out="sweep directory (default sweeps/PRESET-PLANHASH)")
    w.add_argument("--resume", action="store_true", help="continue the sweep recorded in --out (fails if none)")
    w.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    w.add_argument("--group-size", type=int, metavar="N", help="at most N members per program (default: no limit)")
    w.add_argument("--executor", choices=("local", "ray"), default="local", help="where programs run (default local)")
    w.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster address (HOST:PORT, ray://HOST:PORT or auto); default: start a local Ray instance",
    )


def _plan(a):
    from forgetlab import config as cfg
    from forgetlab.workflows import sweep as sw

    if a.preset is None:
        if not (a.resume and a.out):
            raise ForgetlabError("give a PRESET, or --resume --out SWEEP_DIR to continue a recorded sweep")
        return sw.plan_from_spec(sw.load_spec(a.out))
    base = sw.base_config(a.preset, dict(cfg.parse_assignment(t) for t in a.grid), **config_options(a))
    return sw.make_plan(base, sw.parse_grid(a.grid, base))


def cmd_sweep(a) -> int:
    from forgetlab.workflows import sweep as sw
    from forgetlab.workflows.pool import check_positive

    plan = _plan(a)
    check_positive(threads=a.threads, workers=a.workers)
    if a.dry_run:
        done = sw.Store(a.out).done(m.id for m in plan.members) if a.out else set()
        print(plan.describe(done, a.group_size))
        print(f"store: {a.out or sw.default_out(plan)} (dry run: nothing trained)")
        return 0
    options = dict(group_size=a.group_size, resume=a.resume, progress=not a.no_progress, workers=a.workers)
    try:
        res = sw.run_plan(plan, a.out, executor=a.executor, address=a.address, threads=a.threads, **options)
    except KeyboardInterrupt:
        out = a.out or sw.default_out(plan)
        n = len(sw.Store(out).done(m.id for m in plan.members))
        return _interrupted(f"{n} of {len(plan.members)} members stored in {out}; run the same command to resume")
    print(
        f"{res.trained} trained, {res.reused} reused; 'forgetlab summarize {res.out}' for statistics and plots",
        file=sys.stderr,
    )
    return 0


# --- compare --------------------------------------------------------------------------------------


def add_compare(sub) -> None:
    c = sub.add_parser(
        "compare",
        help="run several strategies under one preset; write a table and figures",
        formatter_class=RAW,
        epilog=COMPARE_EPILOG,
        description="Train each strategy (all seeds batched) under PRESET, with the preset's "
        "settings for that strategy; write compare.md, compare.csv and figures.",
    )
    c.add_argument("preset", metavar="PRESET")
    c.add_argument(
        "--strategies",
        required=True,
        metavar="A,B,C",
        help="comma-separated strategies: registered names, e.g. naive,er,derpp ('all' = every registered "
        "one), or your own as path/to/file.py:ClassName or package.module:ClassName",
    )
    add(c, *(o for o in CONFIG_OPTIONS if o != "strategy"))
    add(c, "out", "threads", "workers", "no-progress", out="report directory (default runs/compare-PRESET-TIMESTAMP)")
    c.add_argument(
        "--gap-steps",
        type=int,
        default=50,
        help="steps of each task probed for min-ACC and WC-ACC (De Lange et al. 2023)",
    )


def _strategy_names(text: str, plugins) -> list[str]:
    from forgetlab import config as cfg
    from forgetlab.strategies import STRATEGIES

    cfg.with_plugins(cfg.RunConfig(), plugins)  # their strategies count for 'all' and for the names
    names = list(STRATEGIES) if text == "all" else [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ForgetlabError(f"--strategies {text!r} names no strategy; valid: all, {', '.join(STRATEGIES)}")
    return names


def cmd_compare(a) -> int:
    from forgetlab.workflows.compare import compare

    names = _strategy_names(a.strategies, a.plugin)
    compare(
        a.preset,
        names,
        out=a.out,
        gap_steps=a.gap_steps,
        progress=not a.no_progress,
        log=lambda s: print(s, file=sys.stderr),
        workers=a.workers,
        threads=a.threads,
        **config_options(a),
    )
    return 0


# --- reproduce ------------------------------------------------------------------------------------


def add_reproduce(sub) -> None:
    rp = sub.add_parser(
        "reproduce",
        help="re-run the whole study and write REPORT.md and report.html",
        description="Run every experiment of the study (cached by config), then write a report "
        "with our numbers beside the study's.",
    )
    add(
        rp,
        *(o for o in CONFIG_OPTIONS if o != "strategy"),
        "out",
        "threads",
        "workers",
        "no-progress",
        seeds="seeds of every experiment, e.g. --seeds 0 1 2 3 4 (default 0 1 2)",
        epochs="epochs per task (default 5, as the study); fewer for a quick look",
        set="a config value for every experiment (repeatable; every key: 'forgetlab keys'), named in the "
        "report; the study-calibrated settings: --set train.optimizer=adam --set train.lr=0.001",
        out="output folder (default ./reproduce)",
    )
    rp.add_argument(
        "--with-lenet",
        action="store_true",
        help="also run the LeNet-5 presets (no numbers in the study; about +4.5 min on 1 CPU thread "
        "with 3 seeds, over the 5-minute budget, so not in the default run)",
    )


def cmd_reproduce(a) -> int:
    from forgetlab.workflows.reproduce import reproduce

    out = reproduce(
        out=a.out or "reproduce",
        with_lenet=a.with_lenet,
        threads=a.threads,
        progress=not a.no_progress,
        workers=a.workers,
        log=lambda text: print(text, file=sys.stderr, flush=True),
        **config_options(a),
    )
    print(f"{out / 'REPORT.md'}\n{out / 'report.html'}")
    return 0


COMMANDS = {
    "run": (add_run, cmd_run),
    "sweep": (add_sweep, cmd_sweep),
    "compare": (add_compare, cmd_compare),
    "reproduce": (add_reproduce, cmd_reproduce),
}
