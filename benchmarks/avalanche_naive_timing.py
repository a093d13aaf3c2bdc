"""forgetlab against Avalanche's Naive strategy, wall time, on one machine.

Two comparisons:

  whole (default)  whole processes, interleaved, median of --repeat: `forgetlab run mlp-sequential --seeds 0`
                   (its own interpreter, `--forgetlab-python`) against this file's `avalanche` mode run by
                   the interpreter that has avalanche-lib (`--avalanche-python`), both on the mlp-sequential
                   protocol: MLP 784-120-84-10, SGD lr 0.01 momentum 0.9, batch 64, 5 epochs per task,
                   Split-MNIST [1,2] [3,4] [5,6] [7,8] [9,0] with one shared head, the seen classes' test
                   data evaluated after every epoch and the whole test set after every task. Each time
                   counts everything a user waits for: start-up, imports, data, training, writing.
  protocol-b       in one process, as before: protocol (b) (MLP 2x100, SGD lr 0.03, batch 10, one epoch per
                   task, test set after each task), Avalanche Naive then forgetlab 1 and 5 seeds.

    python benchmarks/avalanche_naive_timing.py --data-dir /work/shared/data \\
        --forgetlab-python /work/venv/bin/python --avalanche-python /work/venv-aval/bin/python [--repeat 3]
    /work/venv-aval/bin/python benchmarks/avalanche_naive_timing.py protocol-b --data-dir /work/shared/data

Every process gets OMP_NUM_THREADS (default 1). Prints wall and CPU (user + system) times, the CPU model
(lscpu) and the load average: on a shared machine the CPU times are the steadier measure.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 0]]


def avalanche_mlp_sequential(root: str) -> None:
    """Avalanche's Naive on the mlp-sequential protocol (run in the avalanche interpreter)."""
    import torch
    from avalanche.benchmarks.classic import SplitMNIST
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.supervised import Naive
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)
    )
    bench = SplitMNIST(n_experiences=5, seed=0, fixed_class_order=[c for t in TASKS for c in t], dataset_root=root)
    strategy = Naive(
        model,
        torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
        nn.CrossEntropyLoss(),
        train_mb_size=64,
        train_epochs=5,
        eval_mb_size=1000,
        device="cpu",
        eval_every=1,
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
    )
    for t, exp in enumerate(bench.train_stream):
        strategy.train(exp, eval_streams=[bench.test_stream[: t + 1]])  # seen classes, after every epoch
        res = strategy.eval(bench.test_stream)  # every class, after the task
    acc = [v for k, v in res.items() if k.startswith("Top1_Acc_Stream")][0]
    print(f"avalanche Naive final accuracy {acc:.4f}")


def protocol_b(root: str) -> None:
    import torch
    from avalanche.benchmarks.classic import SplitMNIST
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.models import SimpleMLP
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.supervised import Naive

    torch.manual_seed(0)
    bench = SplitMNIST(n_experiences=5, seed=0, fixed_class_order=list(range(10)), dataset_root=root)
    model = SimpleMLP(num_classes=10, input_size=784, hidden_size=100, hidden_layers=2, drop_rate=0.0)
    strategy = Naive(
        model,
        torch.optim.SGD(model.parameters(), lr=0.03),
        torch.nn.CrossEntropyLoss(),
        train_mb_size=10,
        train_epochs=1,
        eval_mb_size=1000,
        device="cpu",
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
    )
    t0 = time.perf_counter()
    for exp in bench.train_stream:
        strategy.train(exp)
        res = strategy.eval(bench.test_stream)
    acc = [v for k, v in res.items() if k.startswith("Top1_Acc_Stream")][0]
    print(f"avalanche Naive, 1 seed: {time.perf_counter() - t0:.1f} s, final accuracy {acc:.4f}")
    sys.path.insert(0, str(ROOT / "src"))
    from forgetlab import api

    for seeds in ([0], [0, 1, 2, 3, 4]):
        t0 = time.perf_counter()
        res = api.run(
            api.presets.get("buzzega2020-seq-mnist-200", "naive"),
            seeds=seeds,
            data_dir=root,
            device="cpu",
            save=False,
            progress=False,
        )
        acc = sum(m.tasks[-1].val_acc[-1] for m in res.members) / len(res.members)
        print(
            f"forgetlab naive, {len(seeds)} seed(s) batched: {time.perf_counter() - t0:.1f} s, final accuracy {acc:.4f}"
        )


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "unknown")


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds: the process's user + system time, steadier on a busy machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[:4])} ... exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def whole(a) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "PYTHONPATH": str(ROOT / "src")}
    times: dict[str, list[tuple[float, float]]] = {"forgetlab": [], "avalanche": []}
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; OMP_NUM_THREADS={a.threads}; load average at start: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeat):
            fl = [
                a.forgetlab_python,
                "-m",
                "forgetlab",
                "run",
                "mlp-sequential",
                "--seeds",
                "0",
                "--data-dir",
                a.data_dir,
                "--table",
                "last",
                "--no-progress",
                "--out",
                f"{tmp}/run{i}",
            ]
            av = [a.avalanche_python, __file__, "avalanche", "--data-dir", a.data_dir]
            order = [("forgetlab", fl), ("avalanche", av)]
            for name, cmd in order if i % 2 == 0 else order[::-1]:  # interleaved, alternating who goes first
                times[name].append(timed(cmd, env))
                wall, cpu = times[name][-1]
                print(
                    f"  round {i + 1}: {name:<9} {wall:6.1f} s wall, {cpu:6.1f} s CPU; load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    for j, clock in enumerate(("wall", "CPU")):
        f, av = (statistics.median(t[j] for t in times[k]) for k in ("forgetlab", "avalanche"))
        print(f"median of {a.repeat}, {clock}: forgetlab {f:.1f} s, Avalanche Naive {av:.1f} s, ratio {av / f:.2f}x")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", default="whole", choices=("whole", "protocol-b", "avalanche"))
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--forgetlab-python", default=sys.executable)
    p.add_argument("--avalanche-python", default="/work/venv-aval/bin/python")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    if a.mode == "avalanche":
        avalanche_mlp_sequential(a.data_dir)
    elif a.mode == "protocol-b":
        protocol_b(a.data_dir)
    else:
        whole(a)


if __name__ == "__main__":
    main()
