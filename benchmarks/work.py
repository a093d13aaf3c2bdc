"""What the benchmarks divide by: this machine's float32 matrix-multiply peak, and the model's FLOPs.

FLOPs are counted analytically for the MLP, layer by layer, 2 * in * out per example for each product:
the forward pass; in training also the weight gradient of every layer and the input gradient of every
layer but the first (nothing needs the gradient of the pixels). Evaluation is one forward pass.
"""

from __future__ import annotations

import time
from itertools import pairwise

import torch


def sync(device: str) -> None:
    """Wait for the device's queued work (GPU kernels run asynchronously); nothing to wait for on the CPU."""
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(n: int = 2048, repeat: int = 10, device: str = "cpu") -> float:
    """Best GFLOP/s of an n x n float32 matrix product (2 n^3 FLOPs) with torch's current threads
    (on a GPU: TF32 off, as in forgetlab's float32 training)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def protocol_flops(config, data) -> float:
    """FLOPs of one member over the whole protocol: training steps plus the evaluation of every epoch."""
    sizes = (784, *config.model.hidden, data.n_classes)
    layers = [2 * a * b for a, b in pairwise(sizes)]
    fwd = sum(layers)
    train_step = 3 * fwd - layers[0]  # forward, weight gradients, input gradients but the first layer's
    train_examples = eval_examples = 0
    seen: list[int] = []
    for task in config.tasks:
        seen += task
        train_examples += len(data.train.indices_of(task)) * config.train.epochs
        # every epoch but the task's last evaluates the seen classes; the last one every class
        eval_examples += len(data.eval.indices_of(seen)) * (config.train.epochs - 1) + len(data.eval)
    return train_step * train_examples + fwd * (eval_examples + len(data.eval))  # + the untrained network's
