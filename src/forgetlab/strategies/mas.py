"""Memory aware synapses (Aljundi, Babiloni, Elhoseiny, Rohrbach & Tuytelaars 2018, ECCV).

The pattern of a strategy in one file: a frozen dataclass of its hyperparameters, the strategy class
registered with it under one name (``--strategy mas --set strategy.mas.lam=...``), a ``check`` of the
config, and the hooks it needs (``adds_loss`` declares the penalty).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forgetlab.engine.models import eval_mode
from forgetlab.errors import ConfigError
from forgetlab.strategies.base import Strategy, params, per_member, register, snapshot, task_sample


@dataclass(frozen=True)
class MASSettings:
    # penalty lambda/2 * sum Omega (theta - theta*)^2. The paper uses 1; with Omega unnormalised, lambda 1 at
    # lr 0.1 diverges on tests/test_strategies.py's toy data, where 0.1 keeps the first task and learns the second
    lam: float = 0.1
    samples: int = 0  # examples of the task the importance is averaged over; 0 = all of them


def importance(ctx, idx: torch.Tensor, chunk: int = 2048) -> list[torch.Tensor]:
    """Omega per parameter and member: the mean over examples of |d ||f(x)||^2 / d theta|, f the logits.

    For a linear layer, example i's weight gradient is the outer product h_i g_i^T of the layer's input and
    its output's gradient, so the sum over i of its absolute value is |h|^T |g|: one product per layer."""
    model, x_all = ctx.model, ctx.data.train.x
    linears = model.linear_stack()
    omega = [torch.zeros_like(p) for m in linears for p in (m.weight, m.bias)]
    with eval_mode(model):
        for s in range(0, len(idx), chunk):
            x = x_all[idx[s : s + chunk]]
            io: list[tuple[torch.Tensor, torch.Tensor]] = []
            out = model(x.expand(model.n_members, *x.shape), record=io)
            grads = torch.autograd.grad(out.logits.pow(2).sum(), [o for _, o in io])
            for i, ((h, _), g) in enumerate(zip(io, grads, strict=True)):
                omega[2 * i] += torch.bmm(h.detach().abs().transpose(1, 2), g.abs())
                omega[2 * i + 1] += g.abs().sum(1, keepdim=True)
    return [w / len(idx) for w in omega]


@register("mas")
class MAS(Strategy):
    """After each task, Omega += importance on its data and theta* = the current parameters; the penalty
    lambda/2 * sum Omega (theta - theta*)^2 keeps important parameters near theta*."""

    Settings = MASSettings
    adds_loss = True

    def __init__(self, config):
        super().__init__(config)
        self.omega: list[torch.Tensor] | None = None
        self.anchor: list[torch.Tensor] | None = None

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.model.arch != "mlp" or config.model.norm != "none" or config.model.module:
            raise ConfigError(
                "strategy 'mas' needs the built-in model.arch=mlp with model.norm=none and no model.module "
                "(its importance is per linear layer)"
            )
        if config.strategy.params.lam < 0:
            raise ConfigError(f"strategy.mas.lam={config.strategy.params.lam:g} must be >= 0")

    def loss(self, ctx, out, x, y):
        if self.omega is None:
            return None
        penalty = sum(
            per_member(w * (p - p0).pow(2)) for p, w, p0 in zip(params(ctx), self.omega, self.anchor, strict=True)
        )
        return 0.5 * self.cfg.lam * penalty

    def after_task(self, ctx):
        new = importance(ctx, task_sample(ctx, self.cfg.samples))
        self.omega = new if self.omega is None else [a + b for a, b in zip(self.omega, new, strict=True)]
        self.anchor = snapshot(ctx)
