"""The training step, chosen once per run: ``step(x, y) -> (loss [E], logits [E, B, U], target [E, B])``
with every parameter's gradient in ``p.grad`` afterwards.

- ``FusedMLPStep``: the plain MLP (Linear+ReLU ... Linear, no norm, k-WTA or dropout) under the plain
  cross-entropy, its gradient written by hand: the same products autograd would run, without the autograd
  engine, which costs 20-25% of a small one-member step.
- ``AutogradStep``: anything else: the model's forward, the loss (a hook's replacement of the
  cross-entropy, the L1 penalty, every hook's penalty), then backward through autograd.

Which one runs is decided from what the hooks declare (``Hook.adds_loss``, ``Hook.replaces_loss``), the
scenario and the model; never from which methods a hook happens to override.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from forgetlab.engine.hooks import Context, Hook
from forgetlab.engine.models import EnsembleNet, member_cross_entropy, stack_backward

if TYPE_CHECKING:
    from forgetlab.engine.modules import ModuleEnsemble


class L1Penalty:
    """lambda_e * sum over hidden layers of mean |h| (over the batch and the layer's units), per member e.

    Defined here once, as a value for autograd and with its gradient for the fused step."""

    def __init__(self, lam: torch.Tensor):
        self.lam = lam  # [E]

    def add_to(self, loss: torch.Tensor, hidden: Sequence[torch.Tensor]) -> torch.Tensor:
        for h in hidden:
            loss = loss + self.lam * h.abs().mean((1, 2))
        return loss

    def grad(self, h: torch.Tensor) -> torch.Tensor:
        """d(value)/dh for a ReLU output h >= 0: lambda / (B H) wherever h > 0 (the caller's ReLU mask
        zeroes the rest, as the subgradient 0 of |h| at 0 would)."""
        E, B, H = h.shape
        return (self.lam / (B * H)).view(E, 1, 1).expand_as(h)


def choose(ctx: Context, hooks: Sequence[Hook], l1: L1Penalty | None):
    """The step of this run: the fused one where the model, the scenario and every hook allow it."""
    plain_loss = not any(h.adds_loss or h.replaces_loss for h in hooks)
    model = ctx.model
    if plain_loss and ctx.scenario.identity and isinstance(model, EnsembleNet) and FusedMLPStep.fits(model):
        return FusedMLPStep(model, l1)
    return AutogradStep(ctx, hooks, l1)


class AutogradStep:
    def __init__(self, ctx: Context, hooks: Sequence[Hook], l1: L1Penalty | None):
        self.ctx, self.l1 = ctx, l1
        self.replacing = [h for h in hooks if h.replaces_loss]
        self.adding = [h for h in hooks if h.adds_loss]

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        ctx, scenario = self.ctx, self.ctx.scenario
        out = ctx.model(x)
        logits, target = out.logits, y
        if not scenario.identity:
            logits, target = scenario.logits(logits, y), scenario.targets(y)
        loss = None
        for h in self.replacing:  # a strategy may replace the cross-entropy (iCaRL's binary one): the first wins
            loss = h.base_loss(ctx, out, x, y)
            if loss is not None:
                break
        if loss is None:
            loss = member_cross_entropy(logits, target).mean(1)
        if self.l1 is not None:
            loss = self.l1.add_to(loss, out.hidden)
        for h in self.adding:
            extra = h.loss(ctx, out, x, y)
            if extra is not None:
                loss = loss + extra
        ctx.optimizer.zero_grad()
        loss.sum().backward()  # members are independent: d(sum)/d(theta_e) = d(loss_e)/d(theta_e)
        return loss, logits, target


class FusedMLPStep:
    """Forward, mean cross-entropy (+ L1) and backward of the plain MLP, by hand.

    Forward: baddbmm per layer, each ReLU in place on its fresh product; the head's product is computed
    transposed (classes first, [E, C, B]): a softmax over 10 classes is several times faster across a
    strided dimension than along a contiguous one of size 10. Backward: ``models.stack_backward``, the one
    the autograd path's stack node runs too.
    """

    def __init__(self, model: EnsembleNet, l1: L1Penalty | None):
        self.model, self.l1 = model, l1
        layers = model.linear_stack()
        assert layers is not None, "FusedMLPStep needs a plain linear stack (FusedMLPStep.fits)"
        self.params = [t for fc in layers for t in (fc.weight, fc.bias)]

    @staticmethod
    def fits(model: EnsembleNet | ModuleEnsemble) -> bool:
        """Pixels straight into Linear+ReLU layers (no k-WTA), and no dropout: what this step computes."""
        return (
            isinstance(model, EnsembleNet)
            and model.linear_stack() is not None
            and model.kwta is None
            and not model.dropout_active
        )

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        ws, bs = self.params[0::2], self.params[1::2]
        E, B = y.shape
        hidden, h = [], x
        for w, b in zip(ws[:-1], bs[:-1], strict=True):
            h = torch.baddbmm(b, h, w).clamp_min_(0)
            hidden.append(h)
        logits = torch.baddbmm(bs[-1].transpose(1, 2), ws[-1].transpose(1, 2), h.transpose(1, 2)).transpose(1, 2)
        log_p = torch.log_softmax(logits.transpose(1, 2), 1)  # [E, C, B]
        target = y.unsqueeze(1)
        loss = log_p.gather(1, target).mean((1, 2)).neg_()
        # d(mean CE)/d(logits) = (softmax - onehot) / B
        g = log_p.exp_().mul_(1 / B).scatter_add_(1, target, torch.full_like(target, -1 / B, dtype=logits.dtype))
        g = g.transpose(1, 2)
        if self.l1 is not None:
            loss = self.l1.add_to(loss, hidden)
        g_hidden = [None if self.l1 is None else self.l1.grad(h) for h in hidden]
        grads, _ = stack_backward(x, ws, hidden, g, g_hidden, need_gx=False)
        for p, grad in zip(self.params, grads, strict=True):
            p.grad = grad
        return loss, logits, y
