"""Independent random streams per member, derived from its seed (init, shuffling, dropout, ...)."""

from __future__ import annotations

import numpy as np
import torch

INIT, SHUFFLE, DROPOUT, STRATEGY, PERMUTATION = range(5)


def stream_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for one purpose; streams of different seeds and purposes do not collide."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def generators(seeds: list[int], stream: int, device="cpu") -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(stream_seed(s, stream)) for s in seeds]
