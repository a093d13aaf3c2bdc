"""iCaRL (Rebuffi et al. 2017): exemplars by herding, binary cross-entropy with distillation targets,
and prediction by the nearest mean of exemplars."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from forgetlab.engine.models import eval_mode
from forgetlab.errors import ConfigError
from forgetlab.strategies.base import Memory, MemorySettings, Strategy, register
from forgetlab.strategies.distillation import frozen_logits, old_units


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


@dataclass(frozen=True)
class ICaRLSettings(MemorySettings):
    bce: str = "sum"  # binary cross-entropy over the seen classes: sum (van de Ven) or mean (Mammoth, Avalanche)
    normalize: bool = True  # features L2-normalised (the paper) or raw (Mammoth's code)


@register("icarl")
class ICaRL(Strategy):
    """iCaRL: exemplars chosen by herding in the last hidden layer's feature space; each task trains on its
    data together with every stored exemplar (one union set, as Mammoth's and Avalanche's iCaRL do), with
    binary cross-entropy whose targets for earlier classes are the frozen network's sigmoids (distillation);
    prediction by the nearest mean of exemplars.

    Memory: strategy.icarl.memory_per_class per class, or strategy.icarl.memory shared by the seen classes
    (replay_batch is unused: every exemplar is in the task's training set)."""

    replaces_loss = True

    Settings = ICaRLSettings
    needs_memory = True
    theta_old: dict | None = None

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.protocol.scenario != "class":
            raise ConfigError("strategy 'icarl' is class-incremental only; use protocol.scenario=class")
        if config.strategy.params.bce not in ("sum", "mean"):
            raise ConfigError(f"strategy.icarl.bce={config.strategy.params.bce!r} is not valid; choose sum or mean")

    def __init__(self, config):
        super().__init__(config)
        self.exemplars: dict[int, torch.Tensor] = {}  # class -> [E, m] indices in herding order
        self.memory: Memory | None = None
        self._stored = -1  # the last task whose exemplars were stored
        self._means_key, self._means = None, None

    def before_task(self, ctx):
        if self.memory is None:
            self.memory = Memory(ctx, 0)
        if ctx.task > 0:
            self.theta_old = {n: p.detach().clone() for n, p in ctx.model.named_parameters()}

    def train_indices(self, ctx, idx):
        """The task's examples and every member's exemplars: [E, n + |M|] (one union set per member)."""
        return torch.cat([idx.expand(ctx.n_members, -1), self.memory.idx], 1) if len(self.memory) else idx

    def base_loss(self, ctx, out, x, y):
        seen = list(ctx.seen)
        target = F.one_hot(y, out.logits.shape[-1]).float()[..., seen]
        old = old_units(ctx)
        if self.theta_old is not None and old:
            pos = [seen.index(c) for c in old]
            target[..., pos] = torch.sigmoid(frozen_logits(ctx, self.theta_old, x)[..., old])
        bce = F.binary_cross_entropy_with_logits(out.logits[..., seen], target, reduction="none")
        return (bce.sum(-1) if self.cfg.bce == "sum" else bce.mean(-1)).mean(1)

    def before_eval(self, ctx):
        """After the task's last epoch, before its evaluation: store its exemplars (Mammoth's end_task)."""
        last_epoch = 0 if self.config.train.iters else self.config.train.epochs - 1
        if ctx.step > 0 and ctx.epoch == last_epoch and self._stored != ctx.task:
            self._store_exemplars(ctx)
            self._stored = ctx.task

    def _features(self, ctx, x: torch.Tensor) -> torch.Tensor:
        """Last-hidden-layer features [E, n, H] of inputs x [n, 784] (shared) or [E, n, 784] (per member)."""
        with eval_mode(ctx.model), torch.no_grad():
            hidden = ctx.model(x).hidden
        if not hidden:
            raise ConfigError(
                "strategy icarl classifies by the last hidden layer's features, but the network "
                "returns only logits; return (logits, hidden) from forward"
            )
        return F.normalize(hidden[-1], dim=-1) if self.cfg.normalize else hidden[-1]

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
        with exemplars uses them; a seen class without (during its own task) its first 100 training examples.
        Computed once per training state (task, step) and kept: every prediction of that state reads them."""
        key = (ctx.task, ctx.step)
        if self._means_key != key:
            units, means = ctx.scenario.n_units, None  # [E, units, H]: H the width of the last hidden tensor
            valid = torch.zeros(units, dtype=torch.bool, device=ctx.data.train.x.device)
            for c in ctx.seen:
                idx = self.exemplars[c] if c in self.exemplars else ctx.data.train.indices_of([c])[:100]
                f = self._features(ctx, ctx.data.train.x[idx]).mean(1)
                means = f.new_zeros(ctx.n_members, units, f.shape[-1]) if means is None else means
                means[:, c] = F.normalize(f, dim=-1) if self.cfg.normalize else f
                valid[c] = True
            self._means_key, self._means = key, (means, valid)
        return self._means

    def predict(self, ctx, out, x):
        if ctx.step == 0:  # no training yet: the logits (R0)
            return None
        means, valid = self._class_means(ctx)
        f = F.normalize(out.hidden[-1], dim=-1) if self.cfg.normalize else out.hidden[-1]
        return (-torch.cdist(f, means)).masked_fill(~valid, float("-inf"))
