"""Joint training: every task period trains on every task's data (the upper bound at the same step budget)."""

from __future__ import annotations

import torch

from forgetlab.strategies.base import Strategy, register


@register("joint")
class Joint(Strategy):
    """Every task period trains on every task's data at once: the upper bound at the same step budget."""

    def train_indices(self, ctx, idx: torch.Tensor) -> torch.Tensor:
        return ctx.data.train.indices_of([c for task in ctx.config.tasks for c in task])
