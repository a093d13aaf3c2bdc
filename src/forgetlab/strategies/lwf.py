"""Learning without forgetting (Li & Hoiem 2017): the earlier tasks' outputs on the current data
distilled from the network frozen at the start of the task."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from forgetlab.errors import ConfigError
from forgetlab.strategies.base import Strategy, register
from forgetlab.strategies.distillation import frozen_logits, old_units


@dataclass(frozen=True)
class LwFSettings:
    alpha: float = field(default=1.0, metadata={"flat": "lwf_alpha"})  # weight of the distillation term
    temp: float = field(default=2.0, metadata={"flat": "lwf_temp"})  # softmax temperature T


@register("lwf")
class LwF(Strategy):
    """Learning without forgetting: the earlier tasks' units on the current data are distilled from a copy
    of the network frozen at the start of the task: alpha * KL(old || new) between temperature-T softmaxes,
    averaged over the batch, without Hinton's T^2 factor.

    This is Avalanche's LwF (``kl_div(log_softmax(new / T), softmax(old / T), reduction="batchmean")``) and
    has the gradient of Mammoth's (the cross-entropy of the softened outputs: the KL plus the old outputs'
    entropy, a constant). Mammoth's wd_reg * sum(theta^2) is train.weight_decay = 2 * wd_reg (presets.py)."""

    adds_loss = True

    Settings = LwFSettings
    theta_old: dict | None = None

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.strategy.params.alpha < 0 or config.strategy.params.temp <= 0:
            raise ConfigError("strategy.lwf.alpha must be >= 0 and strategy.lwf.temp > 0")

    def before_task(self, ctx):
        if ctx.task > 0:
            self.theta_old = {n: p.detach().clone() for n, p in ctx.model.named_parameters()}

    def loss(self, ctx, out, x, y):
        units = old_units(ctx) if self.theta_old is not None else []
        if not units:
            return None
        return self.cfg.alpha * distillation_kl(
            frozen_logits(ctx, self.theta_old, x)[..., units], out.logits[..., units], self.cfg.temp
        )


def distillation_kl(old: torch.Tensor, new: torch.Tensor, T: float) -> torch.Tensor:
    """[E]: mean over the batch of KL(softmax(old / T) || softmax(new / T)), logits [E, B, U]."""
    p_old = F.softmax(old / T, -1)
    return (p_old * (F.log_softmax(old / T, -1) - F.log_softmax(new / T, -1))).sum(-1).mean(1)
