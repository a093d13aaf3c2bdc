"""Distillation: LwF (Li & Hoiem 2017) and iCaRL (Rebuffi et al. 2017)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..errors import ConfigError
from ..hooks import Context
from ..models import eval_mode
from .base import Memory, MemorySettings, Strategy, register


def frozen_logits(ctx: Context, theta: dict, x: torch.Tensor) -> torch.Tensor:
    """Logits of the network with parameters ``theta`` (a snapshot), in evaluation mode, without gradients."""
    with eval_mode(ctx.model), torch.no_grad():
        return functional_call(ctx.model, theta, (x,)).logits


def old_units(ctx: Context) -> list[int]:
    """Output units of the earlier tasks: their classes, or every unit in the domain scenario."""
    if ctx.scenario.kind == "domain":
        return list(range(ctx.scenario.n_units))
    return [c for c in ctx.seen if c not in ctx.classes]


@dataclass(frozen=True)
class LwFSettings:
    alpha: float = field(default=1.0, metadata={"flat": "lwf_alpha"})  # weight of the distillation term
    temp: float = field(default=2.0, metadata={"flat": "lwf_temp"})  # softmax temperature T


@register("lwf")
class LwF(Strategy):
    """Learning without forgetting: the logits of the earlier tasks' units on the current data are
    distilled from a copy of the network frozen at the start of the task: alpha * T^2 * KL(old || new)
    between temperature-T softmaxes."""

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
        T = self.cfg.temp
        old = frozen_logits(ctx, self.theta_old, x)[..., units] / T
        new = out.logits[..., units] / T
        kl = (F.softmax(old, -1) * (F.log_softmax(old, -1) - F.log_softmax(new, -1))).sum(-1).mean(1)
        return self.cfg.alpha * T * T * kl


def herding(features: torch.Tensor, m: int) -> torch.Tensor:
    """Herding (Welling 2009, as in iCaRL): per member, pick m examples one at a time so that the mean of
    the picked features stays closest to the class mean. features [E, n, H] (L2-normalised); returns the
    picked positions [E, m] in picking order (a prefix is the best smaller exemplar set)."""
    E, n, H = features.shape
    mu = features.mean(1, keepdim=True)  # [E, 1, H]
    picked = torch.zeros(E, n, dtype=torch.bool, device=features.device)
    total = torch.zeros(E, 1, H, device=features.device)
    order = []
    for k in range(1, min(m, n) + 1):
        dist = (mu - (total + features) / k).pow(2).sum(-1).masked_fill(picked, float("inf"))  # [E, n]
        i = dist.argmin(1)
        order.append(i)
        picked[torch.arange(E), i] = True
        total += features[torch.arange(E), i].unsqueeze(1)
    return torch.stack(order, 1)


@register("icarl")
class ICaRL(Strategy):
    """iCaRL: exemplars chosen by herding in the last hidden layer's (normalised) feature space; training
    with binary cross-entropy whose targets for earlier classes are the frozen network's sigmoids
    (distillation) while exemplars are replayed beside each batch; prediction by the nearest mean of
    exemplars. Memory: strategy.icarl.memory_per_class per class, or strategy.icarl.memory shared by the seen classes."""

    replaces_loss = True
    Settings = MemorySettings  # replay_batch is unused: exemplars are replayed in proportion to their share
    needs_memory = True
    theta_old: dict | None = None

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.protocol.scenario != "class":
            raise ConfigError("strategy 'icarl' is class-incremental only; use protocol.scenario=class")

    def __init__(self, config):
        super().__init__(config)
        self.exemplars: dict[int, torch.Tensor] = {}  # class -> [E, m] indices in herding order
        self.means: torch.Tensor | None = None  # [E, units, H]
        self.memory: Memory | None = None

    def before_task(self, ctx):
        if self.memory is None:
            self.memory = Memory(ctx, 0)
        if ctx.task > 0:
            self.theta_old = {n: p.detach().clone() for n, p in ctx.model.named_parameters()}
        # replay exemplars in proportion to their share of (task data + exemplars), like a union dataset
        n_task = len(ctx.data.train.indices_of(ctx.classes))
        self.n_replay = round(self.config.train.batch_size * len(self.memory) / (n_task + len(self.memory)))

    def batch(self, ctx, x, y):
        if self.n_replay == 0:
            return x, y
        idx = self.memory.idx.gather(1, self.memory.sample(self.n_replay))
        return torch.cat([x, ctx.data.train.x[idx]], 1), torch.cat([y, ctx.data.train.y[idx]], 1)

    def base_loss(self, ctx, out, x, y):
        seen = list(ctx.seen)
        target = F.one_hot(y, out.logits.shape[-1]).float()[..., seen]
        old = old_units(ctx)
        if self.theta_old is not None and old:
            pos = [seen.index(c) for c in old]
            target[..., pos] = torch.sigmoid(frozen_logits(ctx, self.theta_old, x)[..., old])
        bce = F.binary_cross_entropy_with_logits(out.logits[..., seen], target, reduction="none")
        return bce.sum(-1).mean(1)

    def _features(self, ctx, idx: torch.Tensor) -> torch.Tensor:
        """Normalised last-hidden-layer features [E, n, H] of examples idx [n] (shared) or [E, n] (per member)."""
        with eval_mode(ctx.model), torch.no_grad():
            h = ctx.model(ctx.data.train.x[idx]).hidden[-1]
        return F.normalize(h, dim=-1)

    def _refresh(self, ctx):
        """Exemplars of the current classes by herding, earlier sets shrunk, class means recomputed."""
        n_seen = len(ctx.seen)
        m = self.cfg.memory_per_class or self.cfg.memory // n_seen
        for c in self.exemplars:  # shrink the earlier classes' sets: a herding prefix stays the best subset
            self.exemplars[c] = self.exemplars[c][:, :m]
        for c in ctx.classes:
            pool = ctx.data.train.indices_of([c])
            self.exemplars[c] = pool[herding(self._features(ctx, pool), m)]
        self.memory.idx = torch.cat(list(self.exemplars.values()), 1)
        # class means of the exemplars (per member: each member's own exemplars and features)
        E = ctx.n_members
        units = ctx.scenario.n_units
        H = self.config.model.hidden[-1]
        means = torch.zeros(E, units, H, device=ctx.data.train.x.device)
        self.valid = torch.zeros(units, dtype=torch.bool, device=means.device)
        for c, ex in self.exemplars.items():
            means[:, c] = F.normalize(self._features(ctx, ex).mean(1), dim=-1)
            self.valid[c] = True
        self.means = means

    def before_eval(self, ctx):
        if ctx.step > 0:  # before any training the class means do not exist: R0 scores the logits
            self._refresh(ctx)

    def predict(self, ctx, out, x):
        if self.means is None:
            return None
        f = F.normalize(out.hidden[-1], dim=-1)  # [E, N, H]
        dist = torch.cdist(f, self.means)  # [E, N, units]
        return (-dist).masked_fill(~self.valid, float("-inf"))
