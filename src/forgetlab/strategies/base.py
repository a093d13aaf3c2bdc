"""The strategy registry, the base class, and the pieces several strategies share: parameter snapshots
and a per-member memory of indices into the resident training set."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forgetlab import plugins
from forgetlab.config import RunConfig
from forgetlab.config.registry import Registry
from forgetlab.config.strategy import STRATEGY_SETTINGS
from forgetlab.data import sampling, seeding
from forgetlab.engine.hooks import Context, Hook
from forgetlab.engine.models import member_cross_entropy
from forgetlab.errors import ConfigError

STRATEGIES: Registry[type[Strategy]] = Registry("strategy", group="strategies")


def register(name: str):
    """Class decorator: the strategy under ``name``, and its ``Settings`` dataclass as ``strategy.<name>.*``."""

    def add(cls: type[Strategy]) -> type[Strategy]:
        STRATEGIES.register(name)(cls)
        STRATEGY_SETTINGS.register(name)(cls.Settings)
        return cls

    return add


def _adopt(name: str, cls) -> None:
    """A strategy class found by a spec or an entry point and not registered yet: register it."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"strategy {name!r}: {cls!r} is not a forgetlab.strategies.Strategy subclass")
    register(name)(cls)


def resolve(name: str) -> tuple[str, str | None]:
    """(registered name, plugin target or None) of a strategy name or a ``file.py:Class`` /
    ``package.module:Class`` spec (imported; an unregistered class is registered under its class name)."""
    return STRATEGIES.resolve(name, "--strategy", _adopt)


plugins.set_adopter("strategies", _adopt)


@dataclass(frozen=True)
class NoSettings:
    """A strategy without hyperparameters."""


@dataclass(frozen=True)
class MemorySettings:
    """Replay memory: reservoir sampling over the stream (memory) or a fixed number per class (memory_per_class)."""

    memory: int = 0  # examples per member (reservoir sampling over the stream)
    memory_per_class: int = 0  # > 0: instead, this many examples per class, stored at each task's end
    replay_batch: int = 0  # examples drawn from the memory per step; 0 = train.batch_size


class Strategy(Hook):
    """A hook built from a RunConfig. ``check`` validates the config before anything is built; ``Settings``
    (a frozen dataclass) declares the strategy's hyperparameters, read as ``self.cfg``."""

    Settings: type = NoSettings
    needs_memory = False  # replay strategies: strategy.<name>.memory or memory_per_class must be > 0

    def __init__(self, config: RunConfig):
        self.config = config
        self.cfg = config.strategy.params

    @classmethod
    def check(cls, config: RunConfig) -> None:
        s, name = config.strategy.params, config.strategy.name
        negative = [k for k, v in vars(s).items() if isinstance(v, int) and not isinstance(v, bool) and v < 0]
        if negative:
            raise ConfigError(f"strategy.{name}.{negative[0]}={getattr(s, negative[0])} must be >= 0")
        if cls.needs_memory and not (s.memory or s.memory_per_class):
            raise ConfigError(
                f"strategy {name!r} replays examples: set strategy.{name}.memory (e.g. 200) "
                f"or strategy.{name}.memory_per_class (e.g. 100)"
            )


def params(ctx: Context) -> list[torch.Tensor]:
    return [p for p in ctx.model.parameters() if p.requires_grad]


def snapshot(ctx: Context) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params(ctx)]


def per_member(t: torch.Tensor) -> torch.Tensor:
    """Sum over every axis but the leading member axis: [E, ...] -> [E]."""
    return t.flatten(1).sum(1)


def cross_entropy(ctx: Context, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-member mean cross-entropy [E] of logits [E, B, U] for labels y [E, B], under the scenario."""
    logits, target = ctx.scenario.logits(logits, y), ctx.scenario.targets(y)
    return member_cross_entropy(logits, target).mean(1)


class Memory:
    """Per-member memory of indices into ``data.train`` (and, for DER, the logits seen when stored).

    Reservoir sampling (Vitter's algorithm R) over the stream of training examples: the n-th example
    offered (0-based) takes slot n while the memory is filling, then slot j ~ U{0..n} if j < size.
    A batch is offered at once; when two examples of one batch draw the same slot, the later one wins,
    exactly as offering them one by one would.
    """

    def __init__(self, ctx: Context, size: int, stream: int = seeding.STRATEGY):
        E, dev = ctx.n_members, ctx.data.train.x.device
        self.size, self.seen, self.device = size, 0, dev
        self.idx = torch.zeros(E, 0, dtype=torch.long, device=dev)
        self.logits: torch.Tensor | None = None
        self.gens = seeding.generators([m.seed for m in ctx.members], stream)

    def __len__(self) -> int:
        return self.idx.shape[1]

    def _uniform(self, n: int) -> torch.Tensor:
        return torch.stack([torch.rand(n, generator=g) for g in self.gens]).to(self.device)

    def add_reservoir(self, batch_idx: torch.Tensor, logits: torch.Tensor | None = None) -> None:
        E, B = batch_idx.shape
        n = torch.arange(self.seen, self.seen + B, device=self.device).expand(E, B)
        slot = torch.where(n < self.size, n, (self._uniform(B) * (n + 1)).long())
        keep = slot < self.size
        winner = torch.full((E, self.size), -1, dtype=torch.long, device=self.device)
        order = torch.arange(B, device=self.device).expand(E, B)
        winner.scatter_reduce_(1, torch.where(keep, slot, 0), torch.where(keep, order, -1), "amax")
        filled = min(self.seen + B, self.size)
        if len(self) < filled:  # grow to the filled part (slots fill in order while n < size)
            pad = filled - len(self)
            self.idx = torch.cat([self.idx, torch.zeros(E, pad, dtype=torch.long, device=self.device)], 1)
            if logits is not None:
                old = self.logits if self.logits is not None else logits[:, :0]
                self.logits = torch.cat([old, logits.new_zeros(E, pad, logits.shape[-1])], 1)
        won = winner[:, :filled]
        has = won >= 0
        src = won.clamp(min=0)
        self.idx = torch.where(has, batch_idx.gather(1, src), self.idx)
        if logits is not None:
            picked = logits.gather(1, src.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
            self.logits = torch.where(has.unsqueeze(-1), picked, picked if self.logits is None else self.logits)
        self.seen += B

    def extend(self, idx: torch.Tensor) -> None:
        """Append [E, k] indices (class-balanced memories, filled at a task's end)."""
        self.idx = torch.cat([self.idx, idx], 1)

    def sample(self, n: int) -> torch.Tensor:
        """[E, min(n, len)] slots drawn without replacement, each member from its own generator."""
        k = min(n, len(self))
        return torch.stack([torch.randperm(len(self), generator=g)[:k] for g in self.gens]).to(self.device)

    def random_of(self, ctx: Context, classes, m: int) -> torch.Tensor:
        """[E, m] indices: m random training examples of the given classes together, per member."""
        pool = ctx.data.train.indices_of(list(classes))
        return torch.stack([pool[torch.randperm(len(pool), generator=g)[:m].to(pool.device)] for g in self.gens])

    def random_per_class(self, ctx: Context, classes, m: int) -> torch.Tensor:
        """[E, m * len(classes)] indices: m random training examples of each class, per member."""
        picks = [sampling.per_class(ctx.data.train.y, classes, m, g) for g in self.gens]  # [E][class]
        return torch.cat([torch.stack(member_picks) for member_picks in zip(*picks, strict=True)], 1)


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
