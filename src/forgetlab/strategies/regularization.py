"""Parameter regularisation: EWC (Kirkpatrick et al. 2017), online EWC (Schwarz et al. 2018) and
SI (Zenke et al. 2017). Each keeps per-parameter importances [E, ...] and adds a quadratic penalty."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from .. import seeding
from ..errors import ConfigError
from ..hooks import Context
from ..models import eval_mode
from .base import Strategy, params, per_member, register, snapshot


def fisher_diag(ctx: Context, idx: torch.Tensor, chunk: int = 32, method: str = "auto") -> list[torch.Tensor]:
    """Empirical diagonal Fisher per member: mean over examples of the squared per-example gradient of
    the log-likelihood of the true label.

    MLPs without normalisation ("auto"): for a linear layer, example i's weight gradient is the outer
    product h_i g_i^T of its input and output gradient, so the sum over i of its square is
    (h^2)^T (g^2): one bmm per layer, no per-example gradient is ever stored. Otherwise ("vmap"):
    per-example gradients from vmap(grad(.)) over examples. Either way every member comes out of one
    call, since the members' losses are summed and independent.
    """
    m = ctx.config.model
    if method == "auto" and m.arch == "mlp" and m.norm == "none" and not m.module:
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
            g = per_example(theta, data.train.x[idx[s:s + chunk]], data.train.y[idx[s:s + chunk]])
            for n in names:
                total[n] += g[n].pow(2).sum(0)
    return [total[n] / len(idx) for n in names]


def _fisher_linear(ctx: Context, idx: torch.Tensor, chunk: int = 2048) -> list[torch.Tensor]:
    model, data, sc = ctx.model, ctx.data, ctx.scenario
    linears = [*model.fcs, model.head]
    fisher = {id(p): torch.zeros_like(p) for m in linears for p in (m.weight, m.bias)}
    E = model.n_members
    with eval_mode(model):
        for s in range(0, len(idx), chunk):
            x, y = data.train.x[idx[s:s + chunk]], data.train.y[idx[s:s + chunk]]
            io: list[tuple[torch.Tensor, torch.Tensor]] = []  # each linear layer's (input, output)
            out = model(x.expand(E, *x.shape), record=io)  # [E, N, 784]: every layer sees a per-member input
            yy = y.expand(E, -1)
            logits, target = sc.logits(out.logits, yy), sc.targets(yy)
            loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum")
            grads = torch.autograd.grad(loss, [o for _, o in io])
            for m, (h, _), g in zip(linears, io, grads):
                h = h.detach()
                fisher[id(m.weight)] += torch.bmm(h.pow(2).transpose(1, 2), g.pow(2))
                fisher[id(m.bias)] += g.pow(2).sum(1, keepdim=True)
    return [fisher[id(p)] / len(idx) for p in model.parameters() if p.requires_grad]


def task_sample(ctx: Context, n: int) -> torch.Tensor:
    """The current task's training examples, or a fixed sample of n of them.

    The sample depends only on the task, not on the members: a member's numbers must not depend on which
    other members share its program (sweeps cache members one by one).
    """
    idx = ctx.data.train.indices_of(ctx.classes)
    if n and n < len(idx):
        g = torch.Generator().manual_seed(seeding.stream_seed(ctx.task, seeding.STRATEGY))
        idx = idx[torch.randperm(len(idx), generator=g)[:n].to(idx.device)]
    return idx


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
            raise ConfigError(f"strategy.{name}.lam={s.lam:g} must be >= 0 and strategy.{name}.gamma={s.gamma:g} in [0, 1]")

    def loss(self, ctx, out, x, y):
        if not self.terms:
            return None
        penalty = sum(per_member(f * (p - p0).pow(2))
                      for fisher, anchor in self.terms for p, f, p0 in zip(params(ctx), fisher, anchor))
        return 0.5 * self.cfg.lam * penalty

    def after_task(self, ctx):
        fisher = fisher_diag(ctx, task_sample(ctx, self.cfg.fisher_samples))
        if self.online and self.terms:  # one running Fisher, decayed by gamma, anchored at the latest weights
            fisher = [self.cfg.gamma * f0 + f for f0, f in zip(self.terms[0][0], fisher)]
            self.terms = []
        self.terms.append((fisher, snapshot(ctx)))


@register("online-ewc")
class OnlineEWC(EWC):
    """Online EWC: F <- gamma * F + F_t, one penalty anchored at the parameters after the latest task."""

    online = True


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
            raise ConfigError(f"strategy.si.c={s.c:g} and strategy.si.clip={s.clip:g} must be >= 0 and "
                              f"strategy.si.xi={s.xi:g} > 0")

    def before_task(self, ctx):
        if self.start is None:
            self.start = snapshot(ctx)
            self.omega = [torch.zeros_like(p) for p in self.start]

    def loss(self, ctx, out, x, y):
        if self.importance is None:
            return None
        return self.cfg.c * sum(per_member(w * (p - p0).pow(2))
                                   for p, w, p0 in zip(params(ctx), self.importance, self.start))

    def after_backward(self, ctx):
        if self.cfg.clip > 0:
            for p in params(ctx):
                p.grad.clamp_(-self.cfg.clip, self.cfg.clip)
        self.grad = [p.grad.detach().clone() for p in params(ctx)]
        self.prev = snapshot(ctx)

    def after_step(self, ctx):
        with torch.no_grad():
            for w, g, p, p0 in zip(self.omega, self.grad, params(ctx), self.prev):
                w.sub_(g * (p - p0))

    def after_task(self, ctx):
        end = snapshot(ctx)
        new = [w / ((p1 - p0).pow(2) + self.cfg.xi) for w, p1, p0 in zip(self.omega, end, self.start)]
        self.importance = new if self.importance is None else [a + b for a, b in zip(self.importance, new)]
        self.start, self.omega = end, [torch.zeros_like(p) for p in end]
