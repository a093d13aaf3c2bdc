"""Dark experience replay, DER and DER++ (Buzzega et al. 2020): the memory keeps the logits seen when an
example was stored, and the network's logits on memory examples are pulled towards them."""

from __future__ import annotations

from dataclasses import dataclass, field

from forgetlab.errors import ConfigError
from forgetlab.strategies.base import MemorySettings, cross_entropy, register
from forgetlab.strategies.rehearsal import Rehearsal


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
            hint = (
                f" (the same budget as memory_per_class={per_class}: --set strategy.{name}.memory="
                f"{per_class * len({c for task in config.tasks for c in task})} --set "
                f"strategy.{name}.memory_per_class=0)"
                if per_class
                else ""
            )
            raise ConfigError(
                f"strategy {name!r} keeps a reservoir of logits: set strategy.{name}.memory "
                f"and leave strategy.{name}.memory_per_class at 0{hint}"
            )

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
