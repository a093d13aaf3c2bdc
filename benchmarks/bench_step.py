"""Where one training step of the plain MLP goes (mlp-sequential: 784-120-84-10, batch 64), for 1 and 5
members: the whole loop body (gather the batch, fused step, optimizer, bookkeeping) and each part alone,
in CPU microseconds per step (best of 5 x 300 steps: on a shared machine CPU time is the steadier measure),
with the whole step's arithmetic rate against this machine's float32 matmul peak (2048^3 torch.mm, CPU time).

    OMP_NUM_THREADS=1 python benchmarks/bench_step.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from itertools import pairwise

import torch

from forgetlab import api
from forgetlab.data import sources as data_sources
from forgetlab.engine.models import build
from forgetlab.engine.optim import OPTIMIZERS
from forgetlab.engine.steps import FusedMLPStep

N = 300


def cpu_matmul_peak(n: int = 2048, repeat: int = 10) -> float:
    """Best GFLOP/s of an n x n float32 product in CPU time (the same clock as the steps)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        torch.mm(a, b)
        best = min(best, time.process_time() - t0)
    return 2 * n**3 / best / 1e9


def per_step_us(fn) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(N):
            fn()
        best = min(best, (time.process_time() - t0) / N)
    return best * 1e6


def parts(config, data, E: int) -> dict[str, float]:
    model = build(config.model, list(range(E)), torch.zeros(E), "cpu")
    opt = OPTIMIZERS["sgd"](model.parameters(), torch.full((E,), 0.01), torch.full((E,), 0.9), torch.zeros(E))
    step = FusedMLPStep(model, None)
    g = torch.Generator().manual_seed(0)
    order = torch.stack([torch.randperm(len(data.train), generator=g) for _ in range(E)])
    pos = [0]

    def gather():
        s = pos[0] = (pos[0] + 64) % (order.shape[1] - 64)
        flat = order[:, s : s + 64].reshape(-1)
        return data.train.x.index_select(0, flat).view(E, 64, -1), data.train.y.index_select(0, flat).view(E, 64)

    x, y = gather()
    loss_sum, correct = torch.zeros(E), torch.zeros(E, dtype=torch.long)

    def book(loss, logits, target):
        loss_sum.add_(loss, alpha=64)
        correct.add_((logits.max(-1).indices == target).sum(1))

    def whole():
        xx, yy = gather()
        out = step(xx, yy)
        opt.step()
        book(*out)

    w, b = [p.detach() for p in step.params[0::2]], [p.detach() for p in step.params[1::2]]
    h1, h2, gl = torch.randn(E, 64, 120), torch.randn(E, 64, 84), torch.randn(E, 64, 10)

    def products():  # the step's 8 products alone: 3 forward, 3 weight gradients, 2 input gradients
        torch.baddbmm(b[0], x, w[0]), torch.baddbmm(b[1], h1, w[1]), torch.baddbmm(b[2], h2, w[2])
        torch.bmm(x.transpose(1, 2), h1), torch.bmm(h1.transpose(1, 2), h2), torch.bmm(h2.transpose(1, 2), gl)
        torch.bmm(gl, w[2].transpose(1, 2)), torch.bmm(h2, w[1].transpose(1, 2))

    out = step(x, y)
    step_us = per_step_us(lambda: step(x, y))
    return {
        "whole step": per_step_us(whole),
        "gather": per_step_us(gather),
        "fused step": step_us,
        "optimizer": per_step_us(lambda: (step(x, y), opt.step())) - step_us,
        "bookkeeping": per_step_us(lambda: book(*out)),
        "products alone": per_step_us(products),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    a = p.parse_args()
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if ln.startswith("Model name")
        ),
        "unknown",
    )
    config = api.make_config("mlp-sequential", data_dir=a.data_dir, device="cpu")
    data = data_sources.load_data(config, torch.device("cpu"))
    peak = cpu_matmul_peak()
    sizes = (784, 120, 84, 10)
    layers = [2 * 64 * i * o for i, o in pairwise(sizes)]
    flops = 3 * sum(layers) - layers[0]  # forward, weight gradients, input gradients but the first layer's
    print(
        f"CPU: {model}; {torch.get_num_threads()} thread(s); float32 matmul peak {peak:.0f} GFLOP/s (CPU time); "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    for E in (1, 5):
        r = parts(config, data, E)
        rate = E * flops / r["whole step"] / 1e3
        prod = E * flops / r["products alone"] / 1e3
        print(f"{E} member(s): " + ", ".join(f"{k} {v:.0f} us" for k, v in r.items()))
        print(
            f"  whole step {rate:.0f} GFLOP/s = {100 * rate / peak:.0f}% of the peak; its products alone "
            f"{prod:.0f} GFLOP/s = {100 * prod / peak:.0f}%"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
