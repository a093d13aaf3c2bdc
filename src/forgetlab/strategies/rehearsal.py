"""What the replay strategies share: a per-member memory of indices into the resident training set
(``base.Memory``), filled by reservoir sampling over the stream (strategy.<name>.memory) or with
strategy.<name>.memory_per_class random examples of each class at the end of its task (van de Ven et
al.'s budget); and an episodic memory of the finished tasks only (GEM, A-GEM: memory // n_tasks random
examples of each task at its end, as Mammoth's and Avalanche's store them)."""

from __future__ import annotations

import torch

from forgetlab.strategies.base import Memory, MemorySettings, Strategy, cross_entropy, params


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
        assert self.memory is not None, "draw() runs after before_task() filled self.memory"
        slots = self.memory.sample(n or self.replay_batch)
        idx = self.memory.idx.gather(1, slots)
        return slots, ctx.data.train.x[idx], ctx.data.train.y[idx]

    def after_step(self, ctx):
        if not self.cfg.memory_per_class:
            self.memory.add_reservoir(ctx.batch_idx)

    def after_task(self, ctx):
        if self.cfg.memory_per_class:
            self.memory.extend(self.memory.random_per_class(ctx, ctx.classes, self.cfg.memory_per_class))


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


def reference_gradient(ctx, xm, ym) -> list[torch.Tensor]:
    """The gradient of the mean cross-entropy on (xm, ym), per member (the members' losses are summed)."""
    ps = params(ctx)
    return list(torch.autograd.grad(cross_entropy(ctx, ctx.model(xm).logits, ym).sum(), ps))
