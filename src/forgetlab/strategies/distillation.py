"""Distillation: LwF (Li & Hoiem 2017) and iCaRL (Rebuffi et al. 2017)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..errors import ConfigError
from ..hooks import Context
from .base import STRATEGIES, Memory, Strategy


def frozen_logits(ctx: Context, theta: dict, x: torch.Tensor) -> torch.Tensor:
    """Logits of the network with parameters ``theta`` (a snapshot), in evaluation mode, without gradients."""
    was = ctx.model.training
    ctx.model.eval()
    with torch.no_grad():
        out = functional_call(ctx.model, theta, (x,)).logits
    ctx.model.train(was)
    return out


def old_units(ctx: Context) -> list[int]:
    """Output units of the earlier tasks: their classes, or every unit in the domain scenario."""
    if ctx.scenario.kind == "domain":
        return list(range(ctx.scenario.n_units))
    return [c for c in ctx.seen if c not in ctx.classes]


@STRATEGIES.register("lwf")
class LwF(Strategy):
    """Learning without forgetting: the earlier tasks' units on the current data are distilled from a copy
    of the network frozen at the start of the task: alpha * KL(old || new) between temperature-T softmaxes,
    averaged over the batch, without Hinton's T^2 factor.

    This is Avalanche's LwF (``kl_div(log_softmax(new / T), softmax(old / T), reduction="batchmean")``) and
    has the gradient of Mammoth's (the cross-entropy of the softened outputs: the KL plus the old outputs'
    entropy, a constant). Mammoth's wd_reg * sum(theta^2) is train.weight_decay = 2 * wd_reg (presets.py)."""

    theta_old: dict | None = None

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.strategy.lwf_alpha < 0 or config.strategy.lwf_temp <= 0:
            raise ConfigError("strategy.lwf_alpha must be >= 0 and strategy.lwf_temp > 0")

    def before_task(self, ctx):
        if ctx.task > 0:
            self.theta_old = {n: p.detach().clone() for n, p in ctx.model.named_parameters()}

    def loss(self, ctx, out, x, y):
        units = old_units(ctx) if self.theta_old is not None else []
        if not units:
            return None
        return self.cfg.lwf_alpha * distillation_kl(frozen_logits(ctx, self.theta_old, x)[..., units],
                                                    out.logits[..., units], self.cfg.lwf_temp)


def distillation_kl(old: torch.Tensor, new: torch.Tensor, T: float) -> torch.Tensor:
    """[E]: mean over the batch of KL(softmax(old / T) || softmax(new / T)), logits [E, B, U]."""
    p_old = F.softmax(old / T, -1)
    return (p_old * (F.log_softmax(old / T, -1) - F.log_softmax(new / T, -1))).sum(-1).mean(1)


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


@STRATEGIES.register("icarl")
class ICaRL(Strategy):
    """iCaRL: exemplars chosen by herding in the last hidden layer's feature space; each task trains on its
    data together with every stored exemplar (one union set, as Mammoth's and Avalanche's iCaRL do), with
    binary cross-entropy whose targets for earlier classes are the frozen network's sigmoids (distillation);
    prediction by the nearest mean of exemplars.

    Memory: strategy.memory_per_class per class, or strategy.memory shared by the seen classes. Settings:
    strategy.icarl_bce (sum or mean over the seen classes), strategy.icarl_normalize (L2-normalised features
    as in the paper, or raw ones as in Mammoth's code)."""

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
        self.memory: Memory | None = None
        self.task_steps = 0
        self._means_key, self._means = None, None

    def before_task(self, ctx):
        if self.memory is None:
            self.memory = Memory(ctx, 0)
        if ctx.task > 0:
            self.theta_old = {n: p.detach().clone() for n, p in ctx.model.named_parameters()}

    def train_indices(self, ctx, idx):
        """The task's examples and every member's exemplars: [E, n + |M|] (one union set per member)."""
        if len(self.memory):
            idx = torch.cat([idx.expand(ctx.n_members, -1), self.memory.idx], 1)
        t, n = self.config.train, idx.shape[-1]
        per_epoch = -(-n // t.batch_size) - int(self.config.model.norm == "batch" and n % t.batch_size == 1)
        self.task_steps = t.iters or t.epochs * per_epoch
        return idx

    def base_loss(self, ctx, out, x, y):
        seen = list(ctx.seen)
        target = F.one_hot(y, out.logits.shape[-1]).float()[..., seen]
        old = old_units(ctx)
        if self.theta_old is not None and old:
            pos = [seen.index(c) for c in old]
            target[..., pos] = torch.sigmoid(frozen_logits(ctx, self.theta_old, x)[..., old])
        bce = F.binary_cross_entropy_with_logits(out.logits[..., seen], target, reduction="none")
        return (bce.sum(-1) if self.cfg.icarl_bce == "sum" else bce.mean(-1)).mean(1)

    def after_step(self, ctx):
        if ctx.task_step == self.task_steps:  # the task's last step: store its exemplars before it is evaluated
            self._store_exemplars(ctx)

    def _features(self, ctx, x: torch.Tensor) -> torch.Tensor:
        """Last-hidden-layer features [E, n, H] of inputs x [n, 784] (shared) or [E, n, 784] (per member)."""
        was = ctx.model.training
        ctx.model.eval()
        with torch.no_grad():
            h = ctx.model(x).hidden[-1]
        ctx.model.train(was)
        return F.normalize(h, dim=-1) if self.cfg.icarl_normalize else h

    def _store_exemplars(self, ctx):
        """Exemplars of the current classes by herding; the earlier sets shrink to a herding prefix."""
        m = self.cfg.memory_per_class or self.cfg.memory // len(ctx.seen)
        for c in self.exemplars:
            self.exemplars[c] = self.exemplars[c][:, :m]
        for c in ctx.classes:
            pool = ctx.data.train.indices_of([c])
            self.exemplars[c] = pool[herding(self._features(ctx, ctx.data.train.x[pool]), m)]
        self.memory.idx = torch.cat(list(self.exemplars.values()), 1)
        self._means_key = None

    def _class_means(self, ctx) -> tuple[torch.Tensor, torch.Tensor]:
        """[E, units, H] class means of the current network's features, and which units have one: a class
        with exemplars uses them; a seen class without (during its own task) its first 100 training examples."""
        key = (ctx.task, ctx.step)
        if self._means_key != key:
            units, H = ctx.scenario.n_units, self.config.model.hidden[-1]
            means = torch.zeros(ctx.n_members, units, H, device=ctx.data.train.x.device)
            valid = torch.zeros(units, dtype=torch.bool, device=means.device)
            for c in ctx.seen:
                idx = self.exemplars[c] if c in self.exemplars else ctx.data.train.indices_of([c])[:100]
                f = self._features(ctx, ctx.data.train.x[idx]).mean(1)
                means[:, c] = F.normalize(f, dim=-1) if self.cfg.icarl_normalize else f
                valid[c] = True
            self._means_key, self._means = key, (means, valid)
        return self._means

    def predict(self, ctx, out, x):
        if ctx.step == 0:  # no training yet: the logits (R0)
            return None
        means, valid = self._class_means(ctx)
        f = out.hidden[-1]
        f = F.normalize(f, dim=-1) if self.cfg.icarl_normalize else f
        return (-torch.cdist(f, means)).masked_fill(~valid, float("-inf"))
