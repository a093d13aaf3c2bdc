"""What the distillation strategies share (LwF, iCaRL): the logits of a frozen copy of the network, and
the output units of the earlier tasks."""

from __future__ import annotations

import torch
from torch.func import functional_call

from forgetlab.engine.hooks import Context
from forgetlab.engine.models import eval_mode


def frozen_logits(ctx: Context, theta: dict, x: torch.Tensor) -> torch.Tensor:
    """Logits of the network with parameters ``theta`` (a snapshot), in evaluation mode, without gradients."""
    with eval_mode(ctx.model), torch.no_grad():
        return functional_call(ctx.model, theta, (x,)).logits


def old_units(ctx: Context) -> list[int]:
    """Output units of the earlier tasks: their classes, or every unit in the domain scenario."""
    if ctx.scenario.kind == "domain":
        return list(range(ctx.scenario.n_units))
    return [c for c in ctx.seen if c not in ctx.classes]
