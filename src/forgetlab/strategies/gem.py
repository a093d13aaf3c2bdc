"""Gradient episodic memory (Lopez-Paz & Ranzato 2017): the step's gradient projected by a quadratic
programme so that no finished task's memory loss increases to first order."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forgetlab.errors import ConfigError
from forgetlab.strategies.base import MemorySettings, params, register
from forgetlab.strategies.rehearsal import EpisodicMemory, reference_gradient


def gem_dual(P: torch.Tensor, q: torch.Tensor, margin: float) -> torch.Tensor:
    """Per member, argmin over v >= margin of 1/2 v'Pv + q'v: GEM's dual quadratic programme (P [E, t, t]
    positive definite, q [E, t]; Mammoth solves the same one with quadprog).

    With u = v - margin it is min 1/2 u'Pu + c'u over u >= 0, c = q + P margin. Its solution is the one
    active set S whose equality solution (P_SS u_S = -c_S, u = 0 off S) has u >= 0 and P u + c >= 0 off S.
    Every subset is tried at once for t <= 10 tasks (2^t small systems); above that, projected Gauss-Seidel
    sweeps, which converge to the same point for positive definite P.
    """
    E, t = q.shape
    c = q + margin * P.sum(-1)
    if t <= 10:
        S = ((torch.arange(2**t, device=q.device).unsqueeze(1) >> torch.arange(t, device=q.device)) & 1).to(P.dtype)
        A = P.unsqueeze(1) * S[:, :, None] * S[:, None, :] + torch.diag_embed(1 - S)  # [E, 2^t, t, t]
        u = torch.linalg.solve(A, (-c.unsqueeze(1) * S).unsqueeze(-1)).squeeze(-1)  # [E, 2^t, t]
        slack = (P.unsqueeze(1) @ u.unsqueeze(-1)).squeeze(-1) + c.unsqueeze(1)
        scale = 1e-6 * (1 + c.abs().amax(-1, keepdim=True))
        violation = torch.maximum(-u * S, -slack * (1 - S)).amax(-1)  # [E, 2^t]
        best = (violation / scale).argmin(1)
        u = u[torch.arange(E), best]
    else:
        u = torch.zeros_like(c)
        diag = P.diagonal(dim1=-2, dim2=-1)
        for _ in range(2000):
            for i in range(t):
                u[:, i] = (u[:, i] - ((P[:, i] * u).sum(-1) + c[:, i]) / diag[:, i]).clamp_min(0)
    return u + margin


@dataclass(frozen=True)
class GEMSettings(MemorySettings):
    margin: float = 0.5  # lower bound of the dual variables (Mammoth's gamma, GEM's memory strength)


@register("gem")
class GEM(EpisodicMemory):
    """Gradient episodic memory: per step, the gradient on each finished task's memory; when the step's
    gradient g conflicts with any (g . g_k < 0), it becomes g + G'v with v from the dual quadratic
    programme (gem_dual, margin strategy.gem.margin), so that no memory loss increases to first order."""

    Settings = GEMSettings

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.strategy.params.margin < 0:
            raise ConfigError(f"strategy.gem.margin={config.strategy.params.margin:g} must be >= 0")

    def after_backward(self, ctx):
        if not self.per_task:
            return
        ps = params(ctx)
        g = [p.grad.clone() for p in ps]
        refs = [reference_gradient(ctx, ctx.data.train.x[idx], ctx.data.train.y[idx]) for idx in self.per_task]
        G = torch.stack([torch.cat([r.flatten(1) for r in ref], 1) for ref in refs], 1)  # [E, t, n_params]
        flat = torch.cat([a.flatten(1) for a in g], 1)  # [E, n_params]
        dots = (G @ flat.unsqueeze(-1)).squeeze(-1)  # [E, t]
        conflict = (dots < 0).any(1)
        P = (G @ G.transpose(1, 2)).double()
        P = 0.5 * (P + P.transpose(1, 2)) + 1e-3 * torch.eye(P.shape[-1], dtype=P.dtype, device=P.device)
        v = gem_dual(P, dots.double(), self.cfg.margin).to(flat.dtype)
        new = torch.where(conflict.unsqueeze(1), flat + (v.unsqueeze(-1) * G).sum(1), flat)
        for p, part in zip(ps, new.split([a[0].numel() for a in g], 1), strict=True):
            p.grad = part.view_as(p.grad)
