"""Synaptic intelligence (Zenke et al. 2017): importances from the path integral of each parameter's
contribution to the loss decrease, a quadratic penalty towards the weights after each task."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from forgetlab.errors import ConfigError
from forgetlab.strategies.base import Strategy, params, per_member, register, snapshot


@dataclass(frozen=True)
class SISettings:
    c: float = field(default=1.0, metadata={"flat": "si_c"})  # penalty strength c
    xi: float = field(default=0.1, metadata={"flat": "si_xi"})  # damping xi
    clip: float = 0.0  # > 0: every gradient value clipped to [-clip, clip] before the step (Mammoth: 1)


@register("si")
class SI(Strategy):
    """Synaptic intelligence: omega accumulates -g * delta(theta) along the training path (the path
    integral of each parameter's contribution to the loss decrease); at a task's end
    Omega += omega / (delta_task(theta)^2 + xi); penalty c * sum Omega (theta - theta*)^2.

    With clip > 0 every gradient value is clipped to [-clip, clip] before the step and omega accumulates
    the clipped gradient (Mammoth's si: clip_grad_value_ 1, then small_omega += lr g^2, the same sum for
    plain SGD)."""

    Settings = SISettings
    adds_loss = True

    def __init__(self, config):
        super().__init__(config)
        self.omega = self.importance = self.start = self.prev = self.grad = None

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        s = config.strategy.params
        if s.c < 0 or s.xi <= 0 or s.clip < 0:
            raise ConfigError(
                f"strategy.si.c={s.c:g} and strategy.si.clip={s.clip:g} must be >= 0 and strategy.si.xi={s.xi:g} > 0"
            )

    def before_task(self, ctx):
        if self.start is None:
            self.start = snapshot(ctx)
            self.omega = [torch.zeros_like(p) for p in self.start]

    def loss(self, ctx, out, x, y):
        if self.importance is None:
            return None
        return self.cfg.c * sum(
            per_member(w * (p - p0).pow(2)) for p, w, p0 in zip(params(ctx), self.importance, self.start, strict=True)
        )

    def after_backward(self, ctx):
        if self.cfg.clip > 0:
            for p in params(ctx):
                p.grad.clamp_(-self.cfg.clip, self.cfg.clip)
        self.grad = [p.grad.detach().clone() for p in params(ctx)]
        self.prev = snapshot(ctx)

    def after_step(self, ctx):
        with torch.no_grad():
            for w, g, p, p0 in zip(self.omega, self.grad, params(ctx), self.prev, strict=True):
                w.sub_(g * (p - p0))

    def after_task(self, ctx):
        end = snapshot(ctx)
        new = [w / ((p1 - p0).pow(2) + self.cfg.xi) for w, p1, p0 in zip(self.omega, end, self.start, strict=True)]
        self.importance = new if self.importance is None else [a + b for a, b in zip(self.importance, new, strict=True)]
        self.start, self.omega = end, [torch.zeros_like(p) for p in end]
