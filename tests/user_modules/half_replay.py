"""A strategy written outside the package, for tests/test_plugins.py: ER with its own name and a setting."""

from dataclasses import dataclass

import torch

from forgetlab.strategies import register
from forgetlab.strategies.base import MemorySettings
from forgetlab.strategies.rehearsal import Rehearsal


@dataclass(frozen=True)
class HalfSettings(MemorySettings):
    share: float = 0.5  # the share of the replay batch actually replayed


@register("half-replay")
class HalfReplay(Rehearsal):
    """Experience replay with only ``share`` of the replay batch."""

    Settings = HalfSettings

    def batch(self, ctx, x, y):
        if len(self.memory) == 0:
            return x, y
        _, xm, ym = self.draw(ctx, max(1, int(self.replay_batch * self.cfg.share)))
        return torch.cat([x, xm], 1), torch.cat([y, ym], 1)
