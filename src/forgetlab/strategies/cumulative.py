"""Cumulative training: each task trains on the data of every task seen so far."""

from __future__ import annotations

import torch

from forgetlab.strategies.base import Strategy, register


@register("cumulative")
class Cumulative(Strategy):
    """Train on all data seen so far (the classes of this task and of every earlier one)."""

    def train_indices(self, ctx, idx: torch.Tensor) -> torch.Tensor:
        return ctx.data.train.indices_of(ctx.seen)
