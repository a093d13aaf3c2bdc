"""What every probe shares: the fixed probe set, the probe schedule, growable device buffers, timing.

Probes never synchronise with the host per step. They write into device tensors allocated in chunks
and copy them to the host once per task (``after_task``), the only sync point of a probe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from forgetlab.data import sampling
from forgetlab.errors import ConfigError


@dataclass(frozen=True)
class ProbeConfig:
    per_class: int = 100  # probe examples per class, drawn once from the eval split; 0: the whole eval split
    first: int = 50  # probe after every one of the first `first` batches of each task (K) ...
    every: int = 10  # ... then after every `every`-th batch (M)
    latent_per_class: int = 30  # eval examples per class whose hidden activations are kept at each task end
    seed: int = 0  # which examples form the probe set (fixed across runs and members)
    curves: bool = True  # forgetting curves and class-probability curves
    updates: bool = True  # relative weight updates at every step
    sparsity: bool = True  # lifetime sparsity per unit and dead units, every epoch end
    latent: bool = True  # hidden activations at every task end, for t-SNE maps
    linear: bool = True  # linear (ridge) and kNN probes of every hidden layer at every task end
    head: bool = True  # head bias: old-class examples predicted as new classes, logits, head norms
    interference: bool = True  # gradient interference in the first `interference_batches` batches of a task
    units: bool = True  # unit reuse: per hidden unit and task, how often the task's examples activate it
    drift: bool = True  # representation drift: linear CKA between task ends, per hidden layer
    fit_per_class: int = 200  # training examples per class the linear and kNN probes are fitted on
    ridge: float = 1.0  # ridge penalty of the linear probe
    knn: int = 10  # neighbours of the kNN probe
    interference_batches: int = 20  # K: batches of each task whose gradients are compared with the old tasks'

    def validate(self) -> ProbeConfig:
        for name in ("per_class", "first", "latent_per_class", "seed", "ridge"):
            if getattr(self, name) < 0:
                raise ConfigError(f"probes.{name}={getattr(self, name)} must be >= 0")
        if self.every < 1:
            raise ConfigError(f"probes.every={self.every} must be >= 1 (probe every M-th batch)")
        if self.latent and self.latent_per_class < 1:
            raise ConfigError("probes.latent_per_class must be >= 1 when latent maps are on")
        for name in ("fit_per_class", "knn", "interference_batches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"probes.{name}={getattr(self, name)} must be >= 1")
        return self

    def only(self, names: str | list[str]) -> ProbeConfig:
        """These probes on (comma-separated names or a list, see ``PROBE_NAMES``), every other one off."""
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        bad = [n for n in names if n not in PROBE_NAMES]
        if bad or not names:
            raise ConfigError(f"probes: unknown probe {(bad or [''])[0]!r}; choose from {', '.join(PROBE_NAMES)}")
        return replace(self, **{name: name in names for name in PROBE_NAMES})

    def due(self, task_step: int) -> bool:
        """Probe after this batch of the task? (task_step counts from 1 after the first batch)."""
        return task_step <= self.first or task_step % self.every == 0


# the on/off switches of ProbeConfig, by the name ``forgetlab run --probes NAME,...`` takes
PROBE_NAMES = ("curves", "updates", "sparsity", "latent", "linear", "head", "interference", "units", "drift")


def stratified(y: torch.Tensor, per_class: int, seed: int, n_classes: int = 10) -> torch.Tensor:
    """Sorted-by-class indices of a fixed random subset with ``per_class`` examples of each class."""
    if per_class == 0:
        return torch.argsort(y.cpu(), stable=True).to(y.device)
    g = torch.Generator().manual_seed(seed)
    return torch.cat(sampling.per_class(y.cpu(), range(n_classes), per_class, g)).to(y.device)


class Rows:
    """Append-only device buffer of equal-shaped rows, allocated in chunks: no per-step host sync."""

    def __init__(self, chunk: int = 256):
        self.chunk, self.n, self._blocks = chunk, 0, []

    def append(self, value: torch.Tensor) -> None:
        if self.n == len(self._blocks) * self.chunk:
            self._blocks.append(torch.empty((self.chunk, *value.shape), dtype=value.dtype, device=value.device))
        self._blocks[-1][self.n % self.chunk].copy_(value)
        self.n += 1

    def drain(self) -> np.ndarray | None:
        """Everything appended so far, on the host (a sync point), and empty the buffer."""
        if not self.n:
            return None
        out = torch.cat(self._blocks)[: self.n].cpu().numpy()
        self.n, self._blocks = 0, []
        return out


class Timer:
    """Wall time spent inside probes (on the CPU the ops are synchronous, so this is their real cost)."""

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        self._t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._t0
