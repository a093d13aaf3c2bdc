"""Optimizers whose hyperparameters are per-member tensors [E], so a grid over lr or momentum is one program.

Same update rules as torch.optim.SGD (momentum buffer initialised to the first gradient) and
torch.optim.Adam (bias-corrected, L2 weight decay added to the gradient).
"""

from __future__ import annotations

from typing import cast

import torch

from forgetlab.config.registry import Registry

OPTIMIZERS: Registry[type[BatchedOptimizer]] = Registry("optimizer")


def _per_member(values: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """[E] -> [E, 1, 1, ...] broadcastable against a parameter with a leading member axis."""
    return values.view(-1, *([1] * (p.dim() - 1)))


class BatchedOptimizer:
    def __init__(self, params, lr: torch.Tensor, momentum: torch.Tensor, weight_decay: torch.Tensor):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.has_decay = bool((weight_decay != 0).any())
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]
        # broadcastable per-member views, built once: the step itself is a few fused in-place ops
        self._neg_lr = [_per_member(-lr, p) for p in self.params]
        self._mom = [_per_member(momentum, p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError  # each optimizer's update

    def _grad(self, p: torch.Tensor) -> torch.Tensor:
        g = cast(torch.Tensor, p.grad)  # step() runs after backward: every parameter has its gradient
        if self.has_decay:
            g = g + _per_member(self.weight_decay, p) * p
        return g


@OPTIMIZERS.register("sgd")
class SGD(BatchedOptimizer):
    """Momentum SGD: buf <- momentum * buf + g; p <- p - lr * buf. The step consumes the gradients: each
    gradient tensor becomes the new momentum buffer in place (two passes over memory instead of three),
    and ``p.grad`` is cleared."""

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        params = [self.params[i] for i in live]
        grads = [self._grad(p) for p in params]
        old = [(g, self.state[i]["momentum"], self._mom[i]) for i, g in zip(live, grads, strict=True) if self.state[i]]
        if old:  # one C++ loop per operation instead of one Python call per parameter
            torch._foreach_addcmul_(*map(list, zip(*old, strict=True)))  # g <- g + buf * momentum
        for i, g in zip(
            live, grads, strict=True
        ):  # on the first step the buffer is the gradient (as in torch.optim.SGD)
            self.state[i]["momentum"] = g
        torch._foreach_addcmul_(params, [self._neg_lr[i] for i in live], grads)
        for p in params:
            p.grad = None


@OPTIMIZERS.register("adam")
class Adam(BatchedOptimizer):
    beta2, eps = 0.999, 1e-8

    @torch.no_grad()
    def step(self) -> None:
        for p, st, neg_lr, b1 in zip(self.params, self.state, self._neg_lr, self._mom, strict=True):
            if p.grad is None:
                continue
            g = self._grad(p)
            if not st:
                st["t"] = torch.zeros((), device=p.device)
                st["m"], st["v"] = torch.zeros_like(p), torch.zeros_like(p)
            st["t"] += 1
            st["m"].mul_(b1).add_((1 - b1) * g)
            st["v"].mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            m_hat = st["m"] / (1 - b1 ** st["t"])
            v_hat = st["v"] / (1 - self.beta2 ** st["t"])
            p.addcmul_(neg_lr, m_hat / (v_hat.sqrt() + self.eps))
