"""Scenarios and benchmarks: what the network's output units mean, and Permuted-MNIST.

van de Ven, Tuytelaars & Tolias (2022, "Three types of incremental learning") distinguish:

- class-incremental (the study's): one head over every class; nothing is masked;
- task-incremental: the task id is given, so a prediction only chooses among the classes of the
  example's own task (logits of other tasks' classes are set to -inf, in training and evaluation);
- domain-incremental: every task uses the same output units; a class maps to its position in its task.

A ``Scenario`` is two lookup tables indexed by the true label: ``unit[y]`` (the target output unit) and
``mask[y]`` (0 or -inf per output unit). The class-incremental scenario has neither (``identity``): its
logits and labels are used as they are, and the fused training step (steps.py) applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

import forgetlab.data.seeding as seeding
from forgetlab.config import RunConfig
from forgetlab.data.dataset import Dataset, Split


@dataclass(frozen=True)
class Scenario:
    kind: str
    n_units: int  # output units of the network
    unit: torch.Tensor | None = None  # [n_classes] label -> target unit (domain-IL)
    mask: torch.Tensor | None = None  # [n_classes, n_units] additive logit mask per label (task-IL)

    @property
    def identity(self) -> bool:
        return self.unit is None and self.mask is None

    def logits(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits [E, B, U] as the scenario scores them for examples of label y [E, B] or [B]."""
        return logits if self.mask is None else logits + self.mask[y]

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.unit is None else self.unit[y]


def build(config: RunConfig, n_classes: int, device) -> Scenario:
    kind, tasks = config.protocol.scenario, config.tasks
    if kind == "class":
        return Scenario(kind, n_classes)
    if kind == "domain":
        unit = torch.zeros(n_classes, dtype=torch.long)
        for task in tasks:
            for pos, c in enumerate(task):
                unit[c] = pos
        return Scenario(kind, max(map(len, tasks)), unit=unit.to(device))
    mask = torch.full((n_classes, n_classes), float("-inf"))
    for task in tasks:
        for c in task:
            mask[c, list(task)] = 0.0
    return Scenario(kind, n_classes, mask=mask.to(device))


def permutations(n_tasks: int, seed: int, n_pixels: int = 784) -> list[torch.Tensor]:
    """Fixed pixel permutations: task 1 sees the original images, as in van de Ven et al.'s code."""
    g = torch.Generator().manual_seed(seeding.stream_seed(seed, seeding.PERMUTATION))
    return [torch.arange(n_pixels)] + [torch.randperm(n_pixels, generator=g) for _ in range(n_tasks - 1)]


def permuted(data: Dataset, n_tasks: int, seed: int) -> Dataset:
    """Permuted-MNIST as resident tensors: task t's copy of every image, labels shifted to 10t + digit.

    Memory: n_tasks copies of the training set (188 MB each in float32).
    """
    perms = permutations(n_tasks, seed, data.train.x.shape[1])

    def expand(split: Split) -> Split:
        xs = [split.x[:, p.to(split.x.device)] for p in perms]
        ys = [split.y + data.n_classes * t for t in range(n_tasks)]
        return Split(torch.cat(xs), torch.cat(ys))

    return Dataset(
        f"permuted-{data.name}",
        expand(data.train),
        expand(data.eval),
        data.eval_split,
        data.n_classes * n_tasks,
        data.image_shape,
    )
