"""Data as resident tensors: a ``Dataset`` holds a train and an evaluation ``Split``, each one tensor of
examples and one of labels on the device; a batch is an index slice, a task a label mask."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forgetlab.errors import DataError


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # [N, features] float32, normalised (an image flattened; Dataset.image_shape restores it)
    y: torch.Tensor  # [N] int64

    def __len__(self) -> int:
        return len(self.y)

    def indices_of(self, classes) -> torch.Tensor:
        """Indices of the examples whose label is in ``classes`` (a task is a label mask)."""
        mask = torch.isin(self.y, torch.as_tensor(list(classes), device=self.y.device))
        return mask.nonzero().squeeze(1)


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    eval: Split  # the test set (the study) or a stratified hold-out of the training set
    eval_split: str
    n_classes: int = 10
    image_shape: tuple[int, ...] = (1, 28, 28)  # one example: (C, H, W), or (features,) for plain vectors


def check_tasks(data: Dataset, tasks) -> None:
    """Every class of the tasks has training and evaluation examples in ``data``; else a one-line DataError."""
    counts = {
        s: torch.bincount(split.y.cpu(), minlength=data.n_classes)
        for s, split in (("training", data.train), ("evaluation", data.eval))
    }
    for task in tasks:
        for c in task:
            if not 0 <= c < data.n_classes:
                raise DataError(
                    f"protocol.tasks: class {c} is out of range; {data.name} has classes 0-{data.n_classes - 1}"
                )
            for which, count in counts.items():
                if not int(count[c]):
                    raise DataError(
                        f"protocol.tasks: class {c} has no {which} examples in {data.name}; "
                        f"set protocol.tasks to classes the data holds"
                    )
