"""Elastic weight consolidation (Kirkpatrick et al. 2017) and online EWC (Schwarz et al. 2018): per-parameter
importances from the diagonal Fisher, a quadratic penalty towards the weights after each task."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from forgetlab.engine.hooks import Context
from forgetlab.engine.models import eval_mode
from forgetlab.errors import ConfigError
from forgetlab.strategies.base import Strategy, params, per_member, register, snapshot, task_sample


def fisher_diag(ctx: Context, idx: torch.Tensor, chunk: int = 32, method: str = "auto") -> list[torch.Tensor]:
    """Empirical diagonal Fisher per member: mean over examples of the squared per-example gradient of
    the log-likelihood of the true label.

    MLPs without normalisation ("auto"): for a linear layer, example i's weight gradient is the outer
    product h_i g_i^T of its input and output gradient, so the sum over i of its square is
    (h^2)^T (g^2): one bmm per layer, no per-example gradient is ever stored. Otherwise ("vmap"):
    per-example gradients from vmap(grad(.)) over examples. Either way every member comes out of one
    call, since the members' losses are summed and independent.
    """
    if method == "auto" and ctx.model.linear_stack() is not None:
        return _fisher_linear(ctx, idx)
    model, data, sc = ctx.model, ctx.data, ctx.scenario
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    theta = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())

    def loss_one(theta, x, y):  # one example shared by every member: x [784], y []
        logits = functional_call(model, (theta, buffers), (x.unsqueeze(0),)).logits  # [E, 1, U]
        yy = y.view(1, 1).expand(logits.shape[0], 1)
        logits, target = sc.logits(logits, yy), sc.targets(yy)
        return F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum")

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))
    total = {n: torch.zeros_like(p) for n, p in theta.items()}
    with eval_mode(model):
        for s in range(0, len(idx), chunk):
            g = per_example(theta, data.train.x[idx[s : s + chunk]], data.train.y[idx[s : s + chunk]])
            for n in names:
                total[n] += g[n].pow(2).sum(0)
    return [total[n] / len(idx) for n in names]


def _fisher_linear(ctx: Context, idx: torch.Tensor, chunk: int = 2048) -> list[torch.Tensor]:
    model, data, sc = ctx.model, ctx.data, ctx.scenario
    linears = model.linear_stack()
    assert linears is not None, "the closed-form Fisher needs a plain linear stack (checked by the caller)"
    fisher = {id(p): torch.zeros_like(p) for m in linears for p in (m.weight, m.bias)}
    E = model.n_members
    with eval_mode(model):
        for s in range(0, len(idx), chunk):
            x, y = data.train.x[idx[s : s + chunk]], data.train.y[idx[s : s + chunk]]
            io: list[tuple[torch.Tensor, torch.Tensor]] = []  # each linear layer's (input, output)
            out = model(x.expand(E, *x.shape), record=io)  # [E, N, 784]: every layer sees a per-member input
            yy = y.expand(E, -1)
            logits, target = sc.logits(out.logits, yy), sc.targets(yy)
            loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum")
            grads = torch.autograd.grad(loss, [o for _, o in io])
            for m, (h, _), g in zip(linears, io, grads, strict=True):
                h = h.detach()
                fisher[id(m.weight)] += torch.bmm(h.pow(2).transpose(1, 2), g.pow(2))
                fisher[id(m.bias)] += g.pow(2).sum(1, keepdim=True)
    return [fisher[id(p)] / len(idx) for p in model.parameters() if p.requires_grad]


@dataclass(frozen=True)
class EWCSettings:
    lam: float = field(default=100.0, metadata={"flat": "ewc_lambda"})  # penalty lambda/2 * sum F (theta - theta*)^2
    gamma: float = field(default=1.0, metadata={"flat": "ewc_gamma"})  # online EWC: decay of the running Fisher
    fisher_samples: int = 0  # examples of the task used for the Fisher; 0 = all of them


@register("ewc")
class EWC(Strategy):
    """Elastic weight consolidation: after each task, store (Fisher F_t, parameters theta_t); the penalty
    is lambda/2 * sum over stored tasks of sum F_t (theta - theta_t)^2."""

    adds_loss = True
    Settings = EWCSettings
    online = False

    def __init__(self, config):
        super().__init__(config)
        self.terms: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        s, name = config.strategy.params, config.strategy.name
        if s.lam < 0 or not 0 <= s.gamma <= 1:
            raise ConfigError(
                f"strategy.{name}.lam={s.lam:g} must be >= 0 and strategy.{name}.gamma={s.gamma:g} in [0, 1]"
            )

    def loss(self, ctx, out, x, y):
        if not self.terms:
            return None
        penalty = sum(
            per_member(f * (p - p0).pow(2))
            for fisher, anchor in self.terms
            for p, f, p0 in zip(params(ctx), fisher, anchor, strict=True)
        )
        return 0.5 * self.cfg.lam * penalty

    def after_task(self, ctx):
        fisher = fisher_diag(ctx, task_sample(ctx, self.cfg.fisher_samples))
        if self.online and self.terms:  # one running Fisher, decayed by gamma, anchored at the latest weights
            fisher = [self.cfg.gamma * f0 + f for f0, f in zip(self.terms[0][0], fisher, strict=True)]
            self.terms = []
        self.terms.append((fisher, snapshot(ctx)))


@register("online-ewc")
class OnlineEWC(EWC):
    """Online EWC: F <- gamma * F + F_t, one penalty anchored at the parameters after the latest task."""

    online = True
