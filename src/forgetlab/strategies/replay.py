"""Rehearsal: experience replay, A-GEM (Chaudhry et al. 2019), DER and DER++ (Buzzega et al. 2020).

The memory holds indices into the resident training set, per member (base.Memory): reservoir sampling
over the stream (strategy.<name>.memory), or strategy.<name>.memory_per_class random examples of each class stored
at the end of its task (van de Ven et al.'s budget).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import ConfigError

from .base import Memory, MemorySettings, Strategy, cross_entropy, params, per_member, register


class Rehearsal(Strategy):
    Settings = MemorySettings
    needs_memory = True

    def __init__(self, config):
        super().__init__(config)
        self.memory: Memory | None = None

    @property
    def replay_batch(self) -> int:
        return self.cfg.replay_batch or self.config.train.batch_size

    def before_task(self, ctx):
        if self.memory is None:
            self.memory = Memory(ctx, self.cfg.memory)

    def draw(self, ctx, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(slots [E, R], x [E, R, 784], y [E, R]) of R examples drawn from each member's memory."""
        slots = self.memory.sample(n or self.replay_batch)
        idx = self.memory.idx.gather(1, slots)
        return slots, ctx.data.train.x[idx], ctx.data.train.y[idx]

    def after_step(self, ctx):
        if not self.cfg.memory_per_class:
            self.memory.add_reservoir(ctx.batch_idx)

    def after_task(self, ctx):
        if self.cfg.memory_per_class:
            self.memory.extend(self.memory.random_per_class(ctx, ctx.classes, self.cfg.memory_per_class))


@register("er")
class ExperienceReplay(Rehearsal):
    """Each step trains on the batch concatenated with replay_batch examples drawn from the memory."""

    def batch(self, ctx, x, y):
        if len(self.memory) == 0:
            return x, y
        _, xm, ym = self.draw(ctx)
        return torch.cat([x, xm], 1), torch.cat([y, ym], 1)


def agem_project(g: list[torch.Tensor], g_ref: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per member: where g . g_ref < 0, remove g's component along g_ref (so g_proj . g_ref = 0)."""
    dot = sum(per_member(a * b) for a, b in zip(g, g_ref))
    norm = sum(per_member(b * b) for b in g_ref)
    coef = torch.where(dot < 0, dot / norm.clamp_min(1e-12), torch.zeros_like(dot))
    return [a - coef.view(-1, *([1] * (a.dim() - 1))) * b for a, b in zip(g, g_ref)]


@register("agem")
class AGEM(Rehearsal):
    """Averaged GEM: the step's gradient is projected so it does not increase the loss on a memory batch."""

    def after_backward(self, ctx):
        if len(self.memory) == 0:
            return
        ps = params(ctx)
        g = [p.grad for p in ps]
        _, xm, ym = self.draw(ctx)
        ref = cross_entropy(ctx, ctx.model(xm).logits, ym).sum()
        g_ref = torch.autograd.grad(ref, ps)
        for p, new in zip(ps, agem_project(g, list(g_ref))):
            p.grad = new


@dataclass(frozen=True)
class DERSettings(MemorySettings):
    alpha: float = field(default=0.5, metadata={"flat": "der_alpha"})  # weight of the logit-matching term


@dataclass(frozen=True)
class DERppSettings(DERSettings):
    beta: float = field(default=0.5, metadata={"flat": "der_beta"})  # weight of the replayed labels' cross-entropy


@register("der")
class DER(Rehearsal):
    """Dark experience replay: the memory keeps the logits seen when an example was stored (reservoir
    sampling), and the network's logits on memory examples are pulled towards them (alpha * MSE)."""

    adds_loss = True
    Settings = DERSettings
    use_labels = False

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        s, name = config.strategy.params, config.strategy.name
        if s.memory_per_class or not s.memory:
            per_class = s.memory_per_class
            hint = (f" (the same budget as memory_per_class={per_class}: --set strategy.{name}.memory="
                    f"{per_class * len({c for task in config.tasks for c in task})} --set strategy.{name}.memory_per_class=0)"
                    if per_class else "")
            raise ConfigError(f"strategy {name!r} keeps a reservoir of logits: set strategy.{name}.memory "
                              f"and leave strategy.{name}.memory_per_class at 0{hint}")

    def loss(self, ctx, out, x, y):
        B = ctx.batch_idx.shape[1]
        self.pending = out.logits[:, :B].detach()  # stored at after_step, with the batch's indices
        if len(self.memory) == 0:
            return None
        slots, xm, _ = self.draw(ctx)
        target = self.memory.logits.gather(1, slots.unsqueeze(-1).expand(-1, -1, self.memory.logits.shape[-1]))
        extra = self.cfg.alpha * (ctx.model(xm).logits - target).pow(2).flatten(1).mean(1)
        if self.use_labels:  # DER++: a second, independent memory batch with its stored labels
            _, xm2, ym2 = self.draw(ctx)
            extra = extra + self.cfg.beta * cross_entropy(ctx, ctx.model(xm2).logits, ym2)
        return extra

    def after_step(self, ctx):
        self.memory.add_reservoir(ctx.batch_idx, self.pending)


@register("derpp")
class DERpp(DER):
    """DER++: DER plus beta * cross-entropy on the labels of a second memory batch."""

    Settings = DERppSettings
    use_labels = True
