"""Averaged GEM (Chaudhry et al. 2019): the step's gradient projected so that it does not increase the
loss on a batch of the finished tasks' memory; A-GEM-R (Mammoth's agem_r) with a reservoir memory."""

from __future__ import annotations

import operator
from functools import reduce

import torch

from forgetlab.strategies.base import params, per_member, register
from forgetlab.strategies.rehearsal import EpisodicMemory, Rehearsal, reference_gradient


def agem_project(g: list[torch.Tensor], g_ref: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per member: where g . g_ref < 0, remove g's component along g_ref (so g_proj . g_ref = 0)."""
    dot = reduce(operator.add, (per_member(a * b) for a, b in zip(g, g_ref, strict=True)))  # [E]
    norm = reduce(operator.add, (per_member(b * b) for b in g_ref))
    coef = torch.where(dot < 0, dot / norm.clamp_min(1e-12), torch.zeros_like(dot))
    return [a - coef.view(-1, *([1] * (a.dim() - 1))) * b for a, b in zip(g, g_ref, strict=True)]


@register("agem")
class AGEM(EpisodicMemory):
    """Averaged GEM: the step's gradient is projected so it does not increase the loss on a batch of
    replay_batch examples drawn from the memory of the finished tasks."""

    def after_backward(self, ctx):
        if len(self.memory) == 0:
            return
        _, xm, ym = self.draw(ctx)
        ps = params(ctx)
        for p, new in zip(ps, agem_project([p.grad for p in ps], reference_gradient(ctx, xm, ym)), strict=True):
            p.grad = new


@register("agem-r")
class AGEMReservoir(AGEM):
    """A-GEM with a reservoir memory over every step (Mammoth's agem_r): it holds the current task too."""

    def after_step(self, ctx):
        Rehearsal.after_step(self, ctx)

    def after_task(self, ctx):
        Rehearsal.after_task(self, ctx)
