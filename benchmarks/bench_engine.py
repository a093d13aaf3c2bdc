"""Engine speed: the mlp-sequential protocol (5 tasks x 5 epochs, batch 64, validation every epoch).

Measured side by side in one process, data loading excluded from every timing:
  baseline   the usual way: torchvision MNIST with ToTensor+Normalize, a DataLoader per task,
             nn.Module MLP, torch.optim.SGD, validation through a DataLoader
  forgetlab  resident tensors, 1 seed, and 5 seeds as one batched ensemble; and 1 seed once more with
             denormal floats kept (forgetlab flushes them to zero while training: training.flush_denormals)

Prints the wall and the CPU times (this process's user+system time: on a shared machine, where the
process gets only part of a core, the steadier measure) and the ratios (targets on the 2-core CPU:
baseline / forgetlab-1 >= 10, forgetlab-5 / forgetlab-1 <= 3), and each variant's arithmetic rate against
this machine's float32 matmul peak: the 5-seed run cannot take less than its FLOPs at that peak, which
bounds the lowest 5 seeds / 1 seed ratio any engine could reach for a given one-seed time.

    python benchmarks/bench_engine.py --data-dir ../shared/data [--epochs 5] [--repeat 1] [--device cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

import forgetlab
from forgetlab import api
from forgetlab.config import SPLIT_MNIST
from forgetlab.data import sources as data_sources
from forgetlab.engine import training
from work import matmul_peak, protocol_flops, sync


class MLP(nn.Module):  # the study's model, exactly as written there
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x.flatten(1)))
        z = F.relu(self.fc2(x))
        return self.fc3(z), z


def baseline(root: str, epochs: int, device: str = "cpu") -> float:
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set = datasets.MNIST(root, train=True, transform=tf)
    test_set = datasets.MNIST(root, train=False, transform=tf)
    # label masks computed up front, as anyone would (not timed)
    tr_idx = {c: (train_set.targets == c).nonzero().squeeze(1).tolist() for c in range(10)}
    te_idx = {c: (test_set.targets == c).nonzero().squeeze(1).tolist() for c in range(10)}
    torch.manual_seed(0)
    model = MLP().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    t0 = _clock(device)
    seen: list[int] = []
    for task in SPLIT_MNIST:
        seen += task
        loader = DataLoader(Subset(train_set, [i for c in task for i in tr_idx[c]]), batch_size=64, shuffle=True)
        val = DataLoader(Subset(test_set, [i for c in seen for i in te_idx[c]]), batch_size=1000)
        for _ in range(epochs):
            model.train()
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                opt.zero_grad()
                logits, _ = model(x)
                F.cross_entropy(logits, y).backward()
                opt.step()
            model.eval()
            correct = zeros = n = 0
            with torch.no_grad():
                for x, y in val:
                    x, y = x.to(device), y.to(device)
                    logits, z = model(x)
                    correct += (logits.argmax(1) == y).sum().item()
                    zeros += (z == 0).sum().item()
                    n += len(y)
    return _since(t0, device)


def ours(root: str, epochs: int, seeds: list[int], device: str = "cpu", denormals: bool = False) -> float:
    config = api.make_config("mlp-sequential", seeds=seeds, epochs=epochs, data_dir=root, device=device)
    data = data_sources.load_data(config, torch.device(device))  # cached: not timed
    flush = training.flush_denormals
    if denormals:  # what training costs without the flush
        training.flush_denormals = contextlib.nullcontext
    try:
        t0 = _clock(device)
        training.train(config, data)
        return _since(t0, device)
    finally:
        training.flush_denormals = flush


def _clock(device: str = "cpu") -> tuple[float, float]:
    sync(device)
    return time.perf_counter(), time.process_time()


def _since(t0: tuple[float, float], device: str = "cpu") -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a shared machine the CPU time is the steadier one."""
    sync(device)
    return time.perf_counter() - t0[0], time.process_time() - t0[1]


def _load() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeat", type=int, default=1, help="take the best of this many runs of each")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    a = p.parse_args()
    dev = a.device
    print(
        f"forgetlab {forgetlab.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), load average {_load()}"
    )
    ours(a.data_dir, 1, [0], dev)  # warm-up: data into memory, kernels initialised
    peak = matmul_peak(device=dev)
    config = api.make_config("mlp-sequential", epochs=a.epochs, data_dir=a.data_dir, device=dev)
    flops = protocol_flops(config, data_sources.load_data(config, torch.device(dev)))  # one member
    print(
        f"float32 matmul peak (2048^3 torch.mm, best of 10): {peak:.1f} GFLOP/s; "
        f"one member's work {flops / 1e9:.0f} GFLOP"
    )
    # interleaved, so that a change in the machine's load hits every variant alike; best of the repeats
    runs: dict[str, list[tuple[float, float]]] = {"base": [], "one": [], "five": [], "denormal": []}
    for _ in range(a.repeat):
        runs["base"].append(baseline(a.data_dir, a.epochs, dev))
        runs["one"].append(ours(a.data_dir, a.epochs, [0], dev))
        runs["five"].append(ours(a.data_dir, a.epochs, [0, 1, 2, 3, 4], dev))
        runs["denormal"].append(ours(a.data_dir, a.epochs, [0], dev, denormals=True))
    print(f"mlp-sequential on {dev}, 5 tasks x {a.epochs} epochs, batch 64, validation every epoch; best of {a.repeat}")
    for i, clock in enumerate(("wall", "CPU")):
        t_base, t_one, t_five, t_den = (min(r[i] for r in runs[k]) for k in ("base", "one", "five", "denormal"))
        print(f"{clock} time")
        print(f"  DataLoader baseline, 1 seed     {t_base:7.2f} s")
        print(f"  forgetlab, 1 seed               {t_one:7.2f} s")
        print(f"  forgetlab, 5 seeds (ensemble)   {t_five:7.2f} s")
        print(f"  forgetlab, 1 seed, denormals    {t_den:7.2f} s  (flushing them: {t_den / t_one:.2f}x faster)")
        print(f"  speed-up over the DataLoader loop: {t_base / t_one:.1f}x (target >= 10x)")
        print(f"  5 seeds / 1 seed:                  {t_five / t_one:.2f}x (target <= 3x)")
        print(f"  5 seeds vs 5 DataLoader runs:      {5 * t_base / t_five:.1f}x")
        if clock == "wall":
            for name, t, n in (("1 seed", t_one, 1), ("5 seeds", t_five, 5)):
                rate = n * flops / t / 1e9
                print(f"  forgetlab, {name:8s} {rate:6.1f} GFLOP/s = {100 * rate / peak:3.0f}% of the matmul peak")
            floor = 5 * flops / (peak * 1e9)
            print(
                f"  5 seeds at 100% of the peak would take {floor:.2f} s: "
                f"a 5 seeds / 1 seed ratio of at least {floor / t_one:.2f}x against this 1-seed time"
            )
    print(f"load average at the end: {_load()}")


if __name__ == "__main__":
    main()
