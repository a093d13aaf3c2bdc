"""Per-class evaluation statistics of every member in one pass over the evaluation data.

Everything the study reports on validation data (accuracy and loss on the seen classes, population
sparsity, accuracy on each task's classes) is a sum over classes of these per-class totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from forgetlab.data import Split
from forgetlab.engine.models import EnsembleNet, eval_mode, member_cross_entropy

if TYPE_CHECKING:
    from forgetlab.engine.modules import ModuleEnsemble


@dataclass
class ClassStats:
    count: torch.Tensor  # [C] examples per class
    correct: torch.Tensor  # [E, C]
    loss: torch.Tensor  # [E, C] summed cross-entropy
    zeros: torch.Tensor  # [E, L, C] exact zeros in hidden layer l over that class's examples
    units: tuple[int, ...]  # hidden units per layer

    def select(self, classes) -> ClassStats:
        idx = list(classes)
        return ClassStats(self.count[idx], self.correct[:, idx], self.loss[:, idx], self.zeros[..., idx], self.units)

    def accuracy(self) -> torch.Tensor:  # [E]
        return self.correct.sum(-1) / self.count.sum()

    def mean_loss(self) -> torch.Tensor:  # [E]
        return self.loss.sum(-1) / self.count.sum()

    def sparsity(self) -> torch.Tensor:  # [E, L] fraction of zeros over examples x units, per layer
        units = torch.tensor(self.units, dtype=self.zeros.dtype, device=self.zeros.device)
        return self.zeros.sum(-1) / (self.count.sum() * units)

    def sparsity_all(self) -> torch.Tensor:  # [E] over every hidden unit at once (the study's number)
        return self.zeros.sum((-1, -2)) / (self.count.sum() * sum(self.units))


@torch.no_grad()
def class_stats(
    model: EnsembleNet | ModuleEnsemble,
    split: Split,
    n_classes: int = 10,
    chunk: int = 4096,
    scenario=None,
    predict=None,
) -> ClassStats:
    """``scenario`` (scenarios.Scenario) masks logits and maps labels to units; ``predict(out, x)`` may
    return scores [E, N, units] that replace the logits in the argmax (None: use the logits)."""
    E = model.n_members
    dev = split.x.device
    correct = torch.zeros(E, n_classes, device=dev)
    loss = torch.zeros(E, n_classes, device=dev)
    zeros: torch.Tensor | None = None
    with eval_mode(model):
        for s in range(0, len(split), chunk):
            x, y = split.x[s : s + chunk], split.y[s : s + chunk]
            out = model(x)  # one shared batch -> [E, N, C]
            onehot = F.one_hot(y, n_classes).float()  # [N, C]: per-class sums are one matmul
            logits, target = out.logits, y
            if scenario is not None and not scenario.identity:
                logits, target = scenario.logits(logits, y), scenario.targets(y)
            ce = member_cross_entropy(logits, target)
            scores = predict(out, x) if predict is not None else None
            correct += ((logits if scores is None else scores).argmax(-1) == target).float() @ onehot
            loss += ce @ onehot
            z = (
                torch.stack([(h == 0).sum(-1).float() for h in out.hidden], 1) @ onehot
                if out.hidden
                else onehot.new_zeros(E, 0, n_classes)
            )  # [E, L, C]; a network may return no hidden layer
            zeros = z if zeros is None else zeros + z
    count = torch.bincount(split.y, minlength=n_classes).float()
    units = tuple(h.shape[-1] for h in out.hidden)
    assert zeros is not None, "class_stats: an empty split"  # the loop ran at least once
    return ClassStats(count, correct, loss, zeros, units)
