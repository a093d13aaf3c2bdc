"""Baselines: naive fine-tuning, joint and cumulative training, and k-WTA hidden layers."""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import Strategy, register


@register("naive")
class Naive(Strategy):
    """Fine-tune on each task in turn: the study's sequential training, the lower bound."""


@register("joint")
class Joint(Strategy):
    """Every task period trains on every task's data at once: the upper bound at the same step budget."""

    def train_indices(self, ctx, idx: torch.Tensor) -> torch.Tensor:
        return ctx.data.train.indices_of([c for task in ctx.config.tasks for c in task])


@register("cumulative")
class Cumulative(Strategy):
    """Train on all data seen so far (the classes of this task and of every earlier one)."""

    def train_indices(self, ctx, idx: torch.Tensor) -> torch.Tensor:
        return ctx.data.train.indices_of(ctx.seen)


@register("kwta")
class KWinners(Strategy):
    """Naive training of a network whose hidden layers are k-winners-take-all (model.kwta, model.kwta_boost).

    The sparsity question of the study, as an architecture: only k units per layer may be active.
    """

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if not config.model.kwta:
            raise ConfigError("strategy 'kwta' needs model.kwta: one k per hidden layer, e.g. model.kwta=20,20")
