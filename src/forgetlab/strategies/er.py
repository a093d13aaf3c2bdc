"""Experience replay: each step trains on its batch and a batch drawn from the memory."""

from __future__ import annotations

import torch

from forgetlab.strategies.base import register
from forgetlab.strategies.rehearsal import Rehearsal


@register("er")
class ExperienceReplay(Rehearsal):
    """Each step trains on the batch concatenated with replay_batch examples drawn from the memory."""

    def batch(self, ctx, x, y):
        if len(self.memory) == 0:
            return x, y
        _, xm, ym = self.draw(ctx)
        return torch.cat([x, xm], 1), torch.cat([y, ym], 1)
