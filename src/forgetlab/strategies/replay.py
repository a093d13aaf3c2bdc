"""Rehearsal: experience replay, GEM (Lopez-Paz & Ranzato 2017), A-GEM (Chaudhry et al. 2019), DER and
DER++ (Buzzega et al. 2020).

The memory holds indices into the resident training set, per member (base.Memory): reservoir sampling
over the stream (strategy.<name>.memory), or strategy.<name>.memory_per_class random examples of each class stored
at the end of its task (van de Ven et al.'s budget). GEM and A-GEM store memory // n_tasks random
examples of each task at its end instead of a reservoir, as Mammoth's and Avalanche's do.
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


class EpisodicMemory(Rehearsal):
    """A memory that never holds the current task: at each task's end, memory // n_tasks random examples
    of that task (or memory_per_class of each of its classes) are appended."""

    def __init__(self, config):
        super().__init__(config)
        self.per_task: list[torch.Tensor] = []  # [E, m] indices stored at the end of each finished task

    def after_step(self, ctx):
        pass

    def after_task(self, ctx):
        if self.cfg.memory_per_class:
            idx = self.memory.random_per_class(ctx, ctx.classes, self.cfg.memory_per_class)
        else:
            idx = self.memory.random_of(ctx, ctx.classes, self.cfg.memory // len(ctx.config.tasks))
        self.per_task.append(idx)
        self.memory.extend(idx)


def _reference_gradient(ctx, xm, ym) -> list[torch.Tensor]:
    ps = params(ctx)
    return list(torch.autograd.grad(cross_entropy(ctx, ctx.model(xm).logits, ym).sum(), ps))


@register("agem")
class AGEM(EpisodicMemory):
    """Averaged GEM: the step's gradient is projected so it does not increase the loss on a batch of
    replay_batch examples drawn from the memory of the finished tasks."""

    def after_backward(self, ctx):
        if len(self.memory) == 0:
            return
        _, xm, ym = self.draw(ctx)
        ps = params(ctx)
        for p, new in zip(ps, agem_project([p.grad for p in ps], _reference_gradient(ctx, xm, ym))):
            p.grad = new


@register("agem-r")
class AGEMReservoir(AGEM):
    """A-GEM with a reservoir memory over every step (Mammoth's agem_r): it holds the current task too."""

    def after_step(self, ctx):
        Rehearsal.after_step(self, ctx)

    def after_task(self, ctx):
        Rehearsal.after_task(self, ctx)


def gem_dual(P: torch.Tensor, q: torch.Tensor, margin: float) -> torch.Tensor:
    """Per member, argmin over v >= margin of 1/2 v'Pv + q'v: GEM's dual quadratic programme (P [E, t, t]
    positive definite, q [E, t]; Mammoth solves the same one with quadprog).

    With u = v - margin it is min 1/2 u'Pu + c'u over u >= 0, c = q + P margin. Its solution is the one
    active set S whose equality solution (P_SS u_S = -c_S, u = 0 off S) has u >= 0 and P u + c >= 0 off S.
    Every subset is tried at once for t <= 10 tasks (2^t small systems); above that, projected Gauss-Seidel
    sweeps, which converge to the same point for positive definite P.
    """
    E, t = q.shape
    c = q + margin * P.sum(-1)
    if t <= 10:
        S = ((torch.arange(2 ** t, device=q.device).unsqueeze(1) >> torch.arange(t, device=q.device)) & 1).to(P.dtype)
        A = P.unsqueeze(1) * S[:, :, None] * S[:, None, :] + torch.diag_embed(1 - S)  # [E, 2^t, t, t]
        u = torch.linalg.solve(A, (-c.unsqueeze(1) * S).unsqueeze(-1)).squeeze(-1)  # [E, 2^t, t]
        slack = (P.unsqueeze(1) @ u.unsqueeze(-1)).squeeze(-1) + c.unsqueeze(1)
        scale = 1e-6 * (1 + c.abs().amax(-1, keepdim=True))
        violation = torch.maximum(-u * S, -slack * (1 - S)).amax(-1)  # [E, 2^t]
        best = (violation / scale).argmin(1)
        u = u[torch.arange(E), best]
    else:
        u = torch.zeros_like(c)
        diag = P.diagonal(dim1=-2, dim2=-1)
        for _ in range(2000):
            for i in range(t):
                u[:, i] = (u[:, i] - ((P[:, i] * u).sum(-1) + c[:, i]) / diag[:, i]).clamp_min(0)
    return u + margin


@dataclass(frozen=True)
class GEMSettings(MemorySettings):
    margin: float = 0.5  # lower bound of the dual variables (Mammoth's gamma, GEM's memory strength)


@register("gem")
class GEM(EpisodicMemory):
    """Gradient episodic memory: per step, the gradient on each finished task's memory; when the step's
    gradient g conflicts with any (g . g_k < 0), it becomes g + G'v with v from the dual quadratic
    programme (gem_dual, margin strategy.gem.margin), so that no memory loss increases to first order."""

    Settings = GEMSettings

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.strategy.params.margin < 0:
            raise ConfigError(f"strategy.gem.margin={config.strategy.params.margin:g} must be >= 0")

    def after_backward(self, ctx):
        if not self.per_task:
            return
        ps = params(ctx)
        g = [p.grad.clone() for p in ps]
        refs = [_reference_gradient(ctx, ctx.data.train.x[idx], ctx.data.train.y[idx]) for idx in self.per_task]
        G = torch.stack([torch.cat([r.flatten(1) for r in ref], 1) for ref in refs], 1)  # [E, t, n_params]
        flat = torch.cat([a.flatten(1) for a in g], 1)  # [E, n_params]
        dots = (G @ flat.unsqueeze(-1)).squeeze(-1)  # [E, t]
        conflict = (dots < 0).any(1)
        P = (G @ G.transpose(1, 2)).double()
        P = 0.5 * (P + P.transpose(1, 2)) + 1e-3 * torch.eye(P.shape[-1], dtype=P.dtype, device=P.device)
        v = gem_dual(P, dots.double(), self.cfg.margin).to(flat.dtype)
        new = torch.where(conflict.unsqueeze(1), flat + (v.unsqueeze(-1) * G).sum(1), flat)
        for p, part in zip(ps, new.split([a[0].numel() for a in g], 1)):
            p.grad = part.view_as(p.grad)


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
