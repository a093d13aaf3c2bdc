"""The study's diagnostics, recorded during training and saved beside a run's results.

    from forgetlab import api, probes
    res = api.run("mlp-sequential", probes=probes.ProbeConfig(), seeds=[0, 1, 2])
    data = probes.load(res.run_dir)            # or res.probes
    acc = data.task_accuracy()                 # [points, members, tasks]: the forgetting curves

Files: ``probes.npz`` (arrays, member axis second) and ``probes.json`` (settings, names, shapes).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from forgetlab.diagnostics.base import PROBE_NAMES, ProbeConfig, Timer, stratified
from forgetlab.diagnostics.interference import HeadBias, Interference
from forgetlab.diagnostics.recorders import (
    ForgettingCurve,
    LatentMaps,
    ProbabilityCurve,
    ProbeSetRef,
    RelativeUpdates,
    Sparsity,
)
from forgetlab.diagnostics.task_end import Drift, LinearProbe, TaskEndFeatures, UnitReuse
from forgetlab.errors import ForgetlabError
from forgetlab.outputs.files import atomic_write

__all__ = [
    "ProbeConfig",
    "PROBE_NAMES",
    "probe_config",
    "Probes",
    "ProbeData",
    "load",
    "ForgettingCurve",
    "ProbabilityCurve",
    "RelativeUpdates",
    "Sparsity",
    "LatentMaps",
    "LinearProbe",
    "HeadBias",
    "Interference",
    "UnitReuse",
    "Drift",
    "stratified",
]

PROBE_SCHEMA = 1


def probe_config(spec) -> ProbeConfig:
    """``True`` or "all": every probe; a ProbeConfig: itself; names ("linear,head" or a list): only those."""
    if isinstance(spec, ProbeConfig):
        return spec.validate()
    if spec is True or spec == "all":
        return ProbeConfig()
    return ProbeConfig().only(spec).validate()


class Probes:
    """The probes a ``ProbeConfig`` switches on, as hooks for ``train``, and their recorded data."""

    def __init__(self, config: ProbeConfig | None = None):
        self.config = (config or ProbeConfig()).validate()
        self.timer = Timer()
        ref = ProbeSetRef(self.config)
        c = self.config
        kinds = [
            (c.curves, ForgettingCurve),
            (c.curves, ProbabilityCurve),
            (c.updates, RelativeUpdates),
            (c.sparsity, Sparsity),
            (c.latent, LatentMaps),
            (c.head, HeadBias),
            (c.interference, Interference),
        ]
        self.hooks = [cls(c, ref, self.timer) for on, cls in kinds if on]
        features = TaskEndFeatures(c)  # one forward pass per task end for the three probes below
        ends = [(c.linear, LinearProbe), (c.units, UnitReuse), (c.drift, Drift)]
        self.hooks += [cls(c, ref, self.timer, features) for on, cls in ends if on]

    @property
    def seconds(self) -> float:
        """Wall time spent inside the probes so far."""
        return self.timer.seconds

    def data(self, members: list[dict], tasks) -> ProbeData:
        arrays: dict[str, np.ndarray] = {}
        meta = {
            "schema": PROBE_SCHEMA,
            "config": vars(self.config),
            "members": members,
            "tasks": [list(t) for t in tasks],
            "seconds": round(self.seconds, 3),
        }
        for h in self.hooks:
            arrays.update(h.arrays())
            if isinstance(h, RelativeUpdates):
                meta["update_names"] = h.names
            if isinstance(h, Interference) and h.layers is not None:
                meta["interference_layers"] = h.layers
        meta["arrays"] = {k: list(v.shape) for k, v in arrays.items()}
        return ProbeData(arrays, meta)


class ProbeData:
    """Recorded probe arrays plus their index; derived curves are pure functions of the arrays."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict):
        self.arrays, self.meta = arrays, meta

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    @property
    def tasks(self) -> list[list[int]]:
        return self.meta["tasks"]

    @property
    def n_layers(self) -> int:
        return sum(k.startswith("lifetime_sparsity_h") for k in self.arrays) or sum(
            k.startswith("latent_h") for k in self.arrays
        )

    # --- derived curves -----------------------------------------------------------------------

    def class_accuracy(self) -> np.ndarray:
        """[points, E, classes]; NaN for classes not yet seen at that point."""
        correct = self["curve_correct"].astype(np.float64)
        acc = correct / self["probe_count"][None, None, :]
        seen = self.seen_mask()
        return np.where(seen[:, None, :], acc, np.nan)

    def seen_mask(self) -> np.ndarray:
        """[points, classes]: which classes were seen (trained on, or being trained) at each point."""
        C = len(self["probe_count"])
        out = np.zeros((len(self["point_task"]), C), dtype=bool)
        for i, t in enumerate(self["point_task"]):
            for task in self.tasks[: t + 1]:
                out[i, task] = True
        return out

    def task_accuracy(self, groups: list[list[int]] | None = None) -> np.ndarray:
        """[points, E, groups] accuracy on each group of classes (default: each task); NaN where unseen."""
        groups = groups or self.tasks
        correct, count = self["curve_correct"], self["probe_count"]
        seen = self.seen_mask()
        out = np.full(correct.shape[:2] + (len(groups),), np.nan)
        for j, g in enumerate(groups):
            acc = correct[:, :, g].sum(-1) / count[g].sum()
            out[:, :, j] = np.where(seen[:, g].all(1)[:, None], acc, np.nan)
        return out

    def select(self, index: list[int]) -> ProbeData:
        """The data of some members only (member axis is axis 1 of every per-member array)."""
        shared = {
            "point_task",
            "point_task_step",
            "point_step",
            "probe_count",
            "update_task",
            "sparsity_task",
            "latent_y",
            "score_count",
            "interference_task",
            "interference_task_step",
        }
        arrays = {k: (v if k in shared else v[:, index]) for k, v in self.arrays.items()}
        meta = dict(self.meta, members=[self.meta["members"][i] for i in index])
        meta["arrays"] = {k: list(v.shape) for k, v in arrays.items()}
        return ProbeData(arrays, meta)

    # --- files --------------------------------------------------------------------------------

    def save(self, run_dir: str | Path) -> None:
        run_dir = Path(run_dir)
        buf = io.BytesIO()
        np.savez_compressed(buf, **self.arrays)
        atomic_write(run_dir / "probes.npz", buf.getvalue())
        atomic_write(run_dir / "probes.json", json.dumps(self.meta, indent=1))  # last: marks complete


def load(run_dir: str | Path) -> ProbeData:
    run_dir = Path(run_dir)
    try:
        meta = json.loads((run_dir / "probes.json").read_text())
        with np.load(run_dir / "probes.npz") as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise ForgetlabError(
            f"{run_dir} has no probes.json/probes.npz; run it with probes ('forgetlab run PRESET --probes')"
        ) from None
    except (ValueError, OSError, json.JSONDecodeError) as e:
        raise ForgetlabError(f"probe files in {run_dir} are unreadable ({type(e).__name__}); run again") from None
    return ProbeData(arrays, meta)
