"""Stratified sampling: a random subset of each class's examples (hold-out splits, probe sets, replay memories)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


def per_class(
    y: torch.Tensor, classes: Iterable[int], n: int | Callable[[int], int], generator: torch.Generator
) -> list[torch.Tensor]:
    """For each class c of ``classes``, in order: the indices of ``n`` of y's examples of class c, in random
    order (every one if the class has fewer). ``n`` may be a function of the class's count (a fraction of it).
    The permutations are drawn on the CPU from ``generator``, one class after another."""
    out = []
    for c in classes:
        pool = (y == c).nonzero().squeeze(1)
        k = n(len(pool)) if callable(n) else n
        out.append(pool[torch.randperm(len(pool), generator=generator)[:k].to(pool.device)])
    return out


def stratified_holdout(y: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """Boolean mask of a fixed, class-stratified hold-out (the same for every run and member)."""
    g = torch.Generator().manual_seed(seed)
    held = torch.zeros(len(y), dtype=torch.bool)
    for take in per_class(y, range(int(y.max()) + 1), lambda n: round(fraction * n), g):
        held[take] = True
    return held
