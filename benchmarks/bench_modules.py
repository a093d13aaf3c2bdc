"""What a user module costs: the same network through the built-in fast path and through model.module.

Side by side in one process, interleaved, data loading excluded:
  built-in MLP     model.arch=mlp: batched layers, the step without autograd (the default for the study's MLP)
  module MLP       the study's MLP class as model.module: torch.func.functional_call under torch.vmap, autograd
  built-in LeNet-5 grouped channels-last convolutions (model.arch=lenet5), autograd
  module LeNet     a LeNet-5-like nn.Module (tests/user_modules/lenet.py) under vmap, autograd

Each is trained on Split-MNIST (5 tasks, ITERS steps of batch 64 per task, evaluation on the 10,000 test
images after each task) with 1 seed and with 5 seeds as one program. Prints wall and CPU seconds, best of
--repeat, and each module path's time over its built-in counterpart's.

    python benchmarks/bench_modules.py --data-dir ../shared/data [--iters 200] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

import forgetlab
from forgetlab import api
from forgetlab.data import sources as data_sources
from forgetlab.engine.training import train

TESTS = Path(__file__).resolve().parents[1] / "tests" / "user_modules"
VARIANTS = {  # name -> (preset, extra settings)
    "built-in MLP": ("mlp-sequential", {}),
    "module MLP": ("mlp-sequential", {"model.module": f"{TESTS / 'study_mlp.py'}:MLP"}),
    "built-in LeNet-5": ("lenet-sequential", {}),
    "module LeNet": (
        "lenet-sequential",
        {"model.module": f"{TESTS / 'lenet.py'}:LeNet", "model.module_input": "image"},
    ),
}


def timed(root: str, preset: str, extra: dict, seeds: list[int], iters: int) -> tuple[float, float]:
    config = api.make_config(preset, seeds=seeds, data_dir=root, device="cpu", set={**extra, "train.iters": str(iters)})
    data = data_sources.load_data(config, torch.device("cpu"))  # cached after the first call: not timed
    t0 = time.perf_counter(), time.process_time()
    train(config, data)
    return time.perf_counter() - t0[0], time.process_time() - t0[1]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--iters", type=int, default=200, help="steps per task")
    p.add_argument("--repeat", type=int, default=2, help="best of this many runs of each")
    a = p.parse_args()
    print(
        f"forgetlab {forgetlab.__version__}, torch {torch.__version__}, {cpu_model()}, {torch.get_num_threads()} "
        f"threads (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), load average {load()}"
    )
    for preset, extra in VARIANTS.values():  # warm-up: data into memory, kernels initialised
        timed(a.data_dir, preset, extra, [0], 5)
    best: dict[tuple[str, int], tuple[float, float]] = {}
    for _ in range(a.repeat):  # interleaved, so a change in the machine's load hits every variant alike
        for name, (preset, extra) in VARIANTS.items():
            for n in (1, 5):
                t = timed(a.data_dir, preset, extra, list(range(n)), a.iters)
                old = best.get((name, n), (float("inf"), float("inf")))
                best[(name, n)] = (min(old[0], t[0]), min(old[1], t[1]))
    print(f"Split-MNIST, 5 tasks x {a.iters} steps of batch 64, test-set evaluation per task; best of {a.repeat}")
    print(f"{'':18s} {'1 seed wall':>12s} {'CPU':>8s} {'5 seeds wall':>13s} {'CPU':>8s}")
    for name in VARIANTS:
        (w1, c1), (w5, c5) = best[(name, 1)], best[(name, 5)]
        print(f"{name:18s} {w1:10.2f} s {c1:6.2f} s {w5:11.2f} s {c5:6.2f} s")
    for mod, ref in (("module MLP", "built-in MLP"), ("module LeNet", "built-in LeNet-5")):
        ratios = [best[(mod, n)][i] / best[(ref, n)][i] for n in (1, 5) for i in (0, 1)]
        print(
            f"{mod} / {ref}: 1 seed {ratios[0]:.2f}x wall ({ratios[1]:.2f}x CPU), "
            f"5 seeds {ratios[2]:.2f}x wall ({ratios[3]:.2f}x CPU)"
        )
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    sys.exit(main())
