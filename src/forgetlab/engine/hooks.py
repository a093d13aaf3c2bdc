"""The plug-in points of the training loop.

A continual-learning strategy or a probe is a ``Hook`` that overrides a few of these methods; the
loop calls them in this order. Everything a hook sees is batched over the member axis E.

    before_task(ctx)                   a new task starts (ctx.task, ctx.classes are set)
    train_indices(ctx, idx) -> idx     the task's training examples [n] (cumulative training widens them),
                                       or [E, n] per member (iCaRL adds each member's exemplars)
      batch(ctx, x, y) -> (x, y)       may extend the batch (replay); x [E, B, 784], y [E, B]
      base_loss(ctx, out, x, y)        [E] replacing the cross-entropy (iCaRL), or None (the first one wins);
                                       called only if the class sets ``replaces_loss = True``
      loss(ctx, out, x, y) -> [E]|None a penalty added to each member's loss (EWC, LwF, ...); called only
                                       if the class sets ``adds_loss = True``
      after_backward(ctx)              gradients are in p.grad (A-GEM projects them here)
      after_step(ctx)                  parameters were updated (probes read them here); the step may have
                                       consumed the gradients (SGD): clone in after_backward what you keep
    before_eval(ctx)                   an evaluation follows (after every epoch; iCaRL stores exemplars after the last)
    predict(ctx, out, x) -> [E,N,C]    evaluation scores replacing the logits (iCaRL's nearest mean), or
                                       None; pure: it may read the hook's state (and cache what it derives
                                       from it), never change what training uses; probes call it too
    after_epoch(ctx, stats)            per-epoch metrics of this epoch, on the host
    after_task(ctx)                    the task's last epoch was evaluated

``adds_loss``/``replaces_loss`` are declarations, read once per run: a run whose hooks declare neither
(and whose model is the plain MLP) trains through the fused hand-written step (steps.py).

``ctx.batch_idx`` [E, B] holds the current batch's indices into ``ctx.data.train`` (replay buffers store
indices, not copies); ``ctx.scenario`` maps labels to output units and masks (scenarios.py).

Hooks must not synchronise with the host per step: accumulate on the device and read back in
``after_epoch``/``after_task``.

Where a hook finds what it needs: the step and the L1 penalty in steps.py; ``models.eval_mode(model)`` for
a forward pass in evaluation mode; ``model(x, record=[])`` for each linear layer's input and output
(per-example gradient statistics); ``sampling.per_class`` for a stratified subset; strategies and their
settings in strategies/ (strategies.register).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from forgetlab.config import Member, RunConfig
    from forgetlab.data import Dataset
    from forgetlab.engine.models import EnsembleNet, Output
    from forgetlab.engine.modules import ModuleEnsemble
    from forgetlab.engine.optim import BatchedOptimizer


@dataclass
class Context:
    config: RunConfig
    members: list[Member]
    data: Dataset
    model: EnsembleNet | ModuleEnsemble  # a built-in network, or the user's module as members
    optimizer: BatchedOptimizer
    hparams: dict[str, torch.Tensor]  # member-level values, each [E] on the device
    task: int = 0
    classes: tuple[int, ...] = ()
    seen: tuple[int, ...] = ()  # classes of every task so far, this one included
    epoch: int = 0
    step: int = 0  # global step counter
    task_step: int = 0  # steps since the start of the current task
    scenario: Any = None  # scenarios.Scenario
    batch_idx: torch.Tensor | None = None  # [E, B] indices of the current batch into data.train
    # (out, x) -> scores [E, N, units] or None: the strategy's classifier, for probes that score predictions
    predict: Any = None

    @property
    def n_members(self) -> int:
        return len(self.members)


class Hook:
    adds_loss = False  # True: ``loss`` returns penalties to add
    replaces_loss = False  # True: ``base_loss`` may replace the cross-entropy

    def before_task(self, ctx: Context) -> None: ...

    def train_indices(self, ctx: Context, idx: torch.Tensor) -> torch.Tensor:
        return idx

    def batch(self, ctx: Context, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y

    def base_loss(self, ctx: Context, out: Output, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        return None

    def loss(self, ctx: Context, out: Output, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        return None

    def after_backward(self, ctx: Context) -> None: ...

    def after_step(self, ctx: Context) -> None: ...

    def before_eval(self, ctx: Context) -> None: ...

    def after_epoch(self, ctx: Context, stats: dict) -> None: ...

    def after_task(self, ctx: Context) -> None: ...

    def predict(self, ctx: Context, out: Output, x: torch.Tensor) -> torch.Tensor | None:
        return None
