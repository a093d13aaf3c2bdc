"""Score training settings by one distance to the study's table, across the study presets.

    python benchmarks/calibrate_study.py --data-dir ../shared/data --seeds 0 1
    python benchmarks/calibrate_study.py --data-dir ../shared/data --settings default adam-1e-3

The study (src/forgetlab/study.py) states no optimizer, learning rate, batch size or epochs. Each
setting below trains every scored preset (mlp-sequential, mlp-bn-concurrent, mlp-dropout-sequential,
mlp-l1-concurrent, mlp-l1-sequential) with the same seeds, then compares the seed mean of each number
the study prints to the study's value.

The distance: the mean absolute difference over every validation accuracy and every population
sparsity the study prints for these presets (last epoch of each task; one number per task, per lambda),
all of them fractions in [0, 1], each counted once. Lower is better. Per preset the same mean is
printed, and the number of seeds whose lambda = 2 concurrent run collapsed (val acc < 0.5).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from forgetlab import api
from forgetlab.data import sources as data_sources
from forgetlab.engine.training import train
from forgetlab.studies.mnist_mlp import STUDY

PRESETS = ("mlp-sequential", "mlp-bn-concurrent", "mlp-dropout-sequential", "mlp-l1-concurrent", "mlp-l1-sequential")
METRICS = ("val_acc", "sparsity")

# name -> config overrides (``--set`` values); "default" is forgetlab's defaults unchanged
SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "adam-1e-3": {"train.optimizer": "adam", "train.lr": "0.001"},
    "sgd-0.1-nomom": {"train.momentum": "0", "train.lr": "0.1"},
    "sgd-b32": {"train.batch_size": "32"},
    "sgd-b128": {"train.batch_size": "128"},
    "sgd-0.005": {"train.lr": "0.005"},
    "adam-1e-3-b128": {"train.optimizer": "adam", "train.lr": "0.001", "train.batch_size": "128"},
}


def label(hparams: dict) -> str:
    """The study table's member-group label for a member of an L1 preset, e.g. "l1=0.001"."""
    return f"l1={hparams['train.l1']:g}" if "train.l1" in hparams else ""


def score_preset(preset: str, overrides: dict, seeds: list[int], data_dir: str | None) -> tuple[list[float], int]:
    """Train ``preset`` under ``overrides``; return |ours - study| per study number, and lambda-2 collapses."""
    config = api.make_config(preset, seeds=seeds, data_dir=data_dir, device="cpu", set=overrides)
    res = train(config, data_sources.load_data(config, torch.device("cpu")))
    ours: dict[str, list] = {}
    for m in res.members:
        ours.setdefault(label(m.hparams), []).append(m)
    diffs, collapsed = [], 0
    for group, tasks in STUDY[preset].items():
        members = res.members if group == "" else ours[group]
        for k, study_row in enumerate(tasks):
            for metric in METRICS:
                if metric not in study_row:
                    continue
                if metric == "val_acc":
                    values = [m.tasks[k].val_acc[-1] for m in members]
                else:
                    values = [m.tasks[k].sparsity_all[-1] for m in members]
                diffs.append(abs(float(np.mean(values)) - study_row[metric]))
        if group == "l1=2":
            collapsed = sum(m.tasks[0].val_acc[-1] < 0.5 for m in members)
    return diffs, collapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    short = {
        "mlp-sequential": "seq",
        "mlp-bn-concurrent": "bn-conc",
        "mlp-dropout-sequential": "drop-seq",
        "mlp-l1-concurrent": "l1-conc",
        "mlp-l1-sequential": "l1-seq",
    }
    print(f"seeds {a.seeds}; distance: mean |ours - study| over the study's val acc and sparsity numbers")
    print(
        f"{'setting':<16} {'overrides':<58} "
        + " ".join(f"{short[p]:>8}" for p in PRESETS)
        + f" {'ALL':>7} {'n':>3} {'l1=2 collapsed':>14} {'time':>6}"
    )
    for name in a.settings:
        t0 = time.perf_counter()
        per, everything, collapsed = [], [], 0
        for preset in PRESETS:
            diffs, c = score_preset(preset, SETTINGS[name], a.seeds, a.data_dir)
            per.append(float(np.mean(diffs)))
            everything += diffs
            collapsed += c
        overrides = " ".join(f"{k}={v}" for k, v in SETTINGS[name].items()) or "(sgd m=0.9 lr=0.01 b=64 e=5)"
        print(
            f"{name:<16} {overrides:<58} "
            + " ".join(f"{d:8.4f}" for d in per)
            + f" {np.mean(everything):7.4f} {len(everything):3d} {collapsed:>6d}/{len(a.seeds):<7d}"
            f" {time.perf_counter() - t0:5.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
