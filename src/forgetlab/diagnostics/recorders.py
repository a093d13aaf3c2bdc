"""The probes: each a ``Hook`` that records one of the study's diagnostics, batched over members.

Every recorded array has the member axis E second: ``[point, E, ...]``.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from forgetlab.diagnostics.base import ProbeConfig, Rows, Timer, stratified
from forgetlab.engine.hooks import Context, Hook
from forgetlab.engine.models import Output, eval_mode


def softmax_classes(logits: torch.Tensor) -> torch.Tensor:
    """softmax over the last (class) axis, computed on a transposed view: the same probabilities (to float
    rounding), but PyTorch's CPU kernel for a short last axis (10 classes) is about 10x slower."""
    return logits.transpose(-1, -2).softmax(-2).transpose(-1, -2)


class ProbeSet:
    """The fixed, stratified probe examples, and one cached eval-mode forward pass per training state.

    The forgetting and probability probes (and the sparsity probe at an epoch end that is also a probe
    point) read the same forward pass instead of computing it again.
    """

    def __init__(self, config: ProbeConfig, ctx: Context):
        split = ctx.data.eval
        self.n_classes = ctx.data.n_classes
        idx = stratified(split.y, config.per_class, config.seed, self.n_classes)
        self.x, self.y = split.x[idx], split.y[idx]
        self.count = torch.bincount(self.y, minlength=self.n_classes).cpu().numpy()
        self.background = SparseInput.background_of(self.x)
        self._key = None
        self.seen_classes: tuple[int, ...] = ()

    def start_task(self, ctx: Context) -> None:
        seen = torch.isin(self.y, torch.as_tensor(ctx.seen, device=self.y.device))
        self.seen_classes = ctx.seen
        self.xs, self.ys = self.x[seen], self.y[seen]
        self.onehot = F.one_hot(self.ys, self.n_classes).to(self.xs.dtype)  # [N, C]: per-class sums as matmuls
        self.sparse = SparseInput.of(self.xs, self.background)
        self._key = None

    @torch.no_grad()
    def forward(self, ctx: Context):
        """Eval-mode output on the seen classes' probe examples (no dropout, batch-norm running stats)."""
        key = (ctx.task, ctx.step)
        if key != self._key:
            model = ctx.model
            with eval_mode(model):
                sparse = self.sparse is not None and self.sparse.fits(model)
                self._out = self.sparse.forward(model) if sparse else model(self.xs)
            self._key = key
        return self._out


class SparseInput:
    """Probe inputs that are mostly one background value c (MNIST: ~19% ink), for the first layer's product.

    x W = (x - c) W + c 1'W, and (x - c) is mostly zeros. Its pixel columns split in two: those with ink in
    more than ``DENSE_COLUMN`` of the examples (the centre of a digit) go through a dense product, the rest
    through a CSR one that skips the zeros, and all-background columns are dropped. On one CPU core the
    first layer (most of a probe point's cost) runs ~2.3x faster than the dense product at 1000 examples.
    Same maths; the sums run in another order, so the outputs are equal to float rounding.
    """

    MAX_DENSITY = 0.3  # above this overall share of non-background values the plain dense product is used
    DENSE_COLUMN = 0.3  # columns with more non-background values than this go through the dense product

    def __init__(self, x: torch.Tensor, background: float):
        x0 = x - background
        share = (x0 != 0).float().mean(0)
        self.dense_cols = (share > self.DENSE_COLUMN).nonzero().squeeze(1)
        self.sparse_cols = ((share > 0) & (share <= self.DENSE_COLUMN)).nonzero().squeeze(1)
        self.dense = x0.index_select(1, self.dense_cols)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": CSR x dense is all we use
            warnings.simplefilter("ignore", UserWarning)
            self.csr = x0.index_select(1, self.sparse_cols).to_sparse_csr()
        self.background = torch.full((1, x.shape[1]), background, device=x.device)

    @staticmethod
    def background_of(x: torch.Tensor) -> float | None:
        """The most common value of ``x`` if at least 1 - MAX_DENSITY of the entries hold it, else None."""
        if x.device.type != "cpu" or x.dim() != 2 or not len(x):
            return None  # on a GPU the dense product is fast enough
        values, counts = torch.unique(x, return_counts=True)
        if 1 - float(counts.max()) / x.numel() > SparseInput.MAX_DENSITY:
            return None
        return float(values[counts.argmax()])

    @classmethod
    def of(cls, x: torch.Tensor, background: float | None) -> SparseInput | None:
        if background is None or float((x != background).float().mean()) > cls.MAX_DENSITY:
            return None
        return cls(x, background)

    @staticmethod
    def fits(model) -> bool:
        """Pixels straight into the first linear layer and no norm (``linear_stack``): then ``model(x)`` in
        eval mode is the stack on x W + b."""
        return model.linear_stack() is not None

    def forward(self, model) -> Output:
        """``model(x)`` in eval mode for the plain stack, the first layer's product computed sparsely."""
        fc = model.linear_stack()[0]
        w = fc.shared_weight()  # [in, E*out]: one product for every member
        h = torch.addmm(fc.bias.view(1, -1), self.background, w)  # b + c 1'W
        h = torch.addmm(h, self.dense, w.index_select(0, self.dense_cols))
        h = torch.addmm(h, self.csr, w.index_select(0, self.sparse_cols))
        return model(None, first=fc.unshare(h))


def _skip(probe: _Probe, name: str) -> None:
    """A network that returns only logits has no hidden activations: say so once, record nothing."""
    if not probe.skipped:
        print(
            f"probe {name}: the network returns no hidden activations (forward gives only logits); skipped",
            file=sys.stderr,
        )
        probe.skipped = True


class _Probe(Hook):
    """Shared plumbing: a probe set, a timer, and the (task, task_step, step) of every probe point."""

    skipped = False  # set when the network gives this probe nothing to record (no hidden activations)

    def __init__(self, config: ProbeConfig, probe_set: ProbeSetRef, timer: Timer):
        self.config, self.ps_ref, self.timer = config, probe_set, timer

    @property
    def ps(self) -> ProbeSet:
        return self.ps_ref.get()

    def arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError


class ProbeSetRef:
    """Created at the first task (when the data is known), then shared by every probe of one run."""

    def __init__(self, config: ProbeConfig):
        self.config, self._ps, self._task = config, None, None

    def prepare(self, ctx: Context) -> None:
        if self._ps is None:
            self._ps = ProbeSet(self.config, ctx)
        if self._task != ctx.task:
            self._ps.start_task(ctx)
            self._task = ctx.task

    def get(self) -> ProbeSet:
        return self._ps


class _Scheduled(_Probe):
    """A probe read at the task boundary (task_step 0) and after the scheduled batches of each task."""

    def __init__(self, *args):
        super().__init__(*args)
        self.rows, self.points, self.host = Rows(), [], []

    def record(self, ctx: Context) -> None:
        raise NotImplementedError

    def before_task(self, ctx: Context) -> None:
        with self.timer:
            self.ps_ref.prepare(ctx)
            self.points.append((ctx.task, 0, ctx.step))
            self.record(ctx)

    def after_step(self, ctx: Context) -> None:
        if self.config.due(ctx.task_step):
            with self.timer:
                self.points.append((ctx.task, ctx.task_step, ctx.step))
                self.record(ctx)

    def after_task(self, ctx: Context) -> None:
        with self.timer:
            self.host.append(self.rows.drain())  # sync: once per task

    def _stacked(self) -> np.ndarray:
        return np.concatenate([h for h in self.host if h is not None])

    def _points(self) -> dict[str, np.ndarray]:
        p = np.asarray(self.points[: sum(len(h) for h in self.host if h is not None)], dtype=np.int64)
        return {"point_task": p[:, 0], "point_task_step": p[:, 1], "point_step": p[:, 2]}


class ForgettingCurve(_Scheduled):
    """Correct probe examples per class (seen classes; unseen ones stay 0) at every probe point, predicted
    as the evaluation predicts (the strategy's classifier where it has one) and scored as the run's scenario
    scores them (task-incremental: logits masked to the example's task; domain: the
    shared output units), as the evaluation does.

    Accuracy on a task or a class is derived from these counts and the probe set's class counts.
    """

    def record(self, ctx: Context) -> None:
        out, target = self.ps.forward(ctx), self.ps.ys
        logits = out.logits
        if ctx.scenario is not None:
            logits, target = ctx.scenario.logits(logits, target), ctx.scenario.targets(target)
        scores = ctx.predict(out, self.ps.xs) if ctx.predict is not None else None
        if scores is not None:  # the strategy's own classifier (iCaRL's nearest mean of exemplars)
            logits = scores
        correct = (logits.argmax(-1) == target).to(self.ps.onehot.dtype) @ self.ps.onehot  # [E, C]
        self.rows.append(correct)

    def arrays(self) -> dict[str, np.ndarray]:
        return {**self._points(), "curve_correct": self._stacked(), "probe_count": self.ps.count}


class ProbabilityCurve(_Scheduled):
    """Mean softmax probability given to each output class by the probe examples of each true class.

    ``prob_curve[p, e, k, c]``: at point p, member e, over examples of true class k, mean P(class c).
    ``prob_task_end[t, e, k, c]``: the same over every class's probe examples at the end of task t.
    """

    def __init__(self, *args):
        super().__init__(*args)
        self.end_rows = Rows(chunk=8)
        self.end_host = []

    def record(self, ctx: Context) -> None:
        probs = softmax_classes(self.ps.forward(ctx).logits)  # [E, N, C]
        self.rows.append(torch.matmul(self.ps.onehot.T, probs))  # [E, true class, output class]

    @torch.no_grad()
    def after_task(self, ctx: Context) -> None:
        with self.timer:
            ps = self.ps
            with eval_mode(ctx.model):
                probs = softmax_classes(ctx.model(ps.x).logits)
            onehot = F.one_hot(ps.y, ps.n_classes).to(probs.dtype)
            self.end_host.append(torch.einsum("nk,enc->ekc", onehot, probs).cpu().numpy())  # sync: task end
        super().after_task(ctx)

    def arrays(self) -> dict[str, np.ndarray]:
        count = self.ps.count.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            curve = self._stacked() / count[None, None, :, None]
            end = np.stack(self.end_host) / count[None, None, :, None]
        return {"prob_curve": curve.astype(np.float32), "prob_task_end": end.astype(np.float32)}


class RelativeUpdates(_Probe):
    """||W_after - W_before|| / ||W_before|| for every parameter tensor (weights and biases apart), each step.

    The parameters are copied into preallocated buffers after the backward pass (just before the
    optimizer step) and compared after it; ``update_ratio[s, e, j]`` is step s, member e, tensor j.
    """

    def __init__(self, *args):
        super().__init__(*args)
        self.rows, self.host, self.task_of_step = Rows(chunk=1024), [], []
        self.names: list[str] = []
        self._before = None

    def before_task(self, ctx: Context) -> None:
        if self._before is None:
            named = [(n, p) for n, p in ctx.model.named_parameters() if p.requires_grad]
            self.names = [n for n, _ in named]
            self._params = [p for _, p in named]
            self._before = [torch.empty_like(p) for p in self._params]

    @torch.no_grad()
    def after_backward(self, ctx: Context) -> None:
        with self.timer:
            E = ctx.n_members
            self._den = torch.stack([torch.linalg.vector_norm(p.view(E, -1), dim=1) for p in self._params], 1)
            torch._foreach_copy_(self._before, self._params)

    @torch.no_grad()
    def after_step(self, ctx: Context) -> None:
        with self.timer:
            E = ctx.n_members
            torch._foreach_sub_(self._before, self._params)  # in place: the buffer now holds W_before - W_after
            num = torch.stack([torch.linalg.vector_norm(d.view(E, -1), dim=1) for d in self._before], 1)
            self.rows.append(num / self._den)  # [E, tensors]
            self.task_of_step.append(ctx.task)

    def after_task(self, ctx: Context) -> None:
        with self.timer:
            self.host.append(self.rows.drain())  # sync: once per task

    def arrays(self) -> dict[str, np.ndarray]:
        ratio = np.concatenate([h for h in self.host if h is not None])
        return {
            "update_ratio": ratio.astype(np.float32),
            "update_task": np.asarray(self.task_of_step[: len(ratio)], dtype=np.int64),
        }


class Sparsity(_Probe):
    """At every epoch end, on the seen classes' probe examples: per hidden unit, the fraction of examples
    on which it is exactly zero (lifetime sparsity), and per layer the count of dead units (zero on all).
    """

    def __init__(self, *args):
        super().__init__(*args)
        self.layers: list[Rows] = []
        self.epoch_task: list[int] = []
        self.host: list[list[np.ndarray]] = []

    def before_task(self, ctx: Context) -> None:
        self.ps_ref.prepare(ctx)

    @torch.no_grad()
    def after_epoch(self, ctx: Context, stats: dict) -> None:
        with self.timer:
            hidden = self.ps.forward(ctx).hidden
            if not hidden:
                return _skip(self, "sparsity")
            if not self.layers:
                self.layers = [Rows(chunk=64) for _ in hidden]
            for rows, h in zip(self.layers, hidden, strict=True):
                rows.append((h == 0).float().mean(1))  # [E, H]
            self.epoch_task.append(ctx.task)

    def after_task(self, ctx: Context) -> None:
        with self.timer:
            self.host.append([r.drain() for r in self.layers])  # sync: once per task

    def arrays(self) -> dict[str, np.ndarray]:
        if not self.layers:
            return {}
        out = {"sparsity_task": np.asarray(self.epoch_task[: sum(len(h[0]) for h in self.host)], dtype=np.int64)}
        for i in range(len(self.layers)):
            life = np.concatenate([h[i] for h in self.host]).astype(np.float32)  # [epochs, E, H]
            out[f"lifetime_sparsity_h{i + 1}"] = life
            out[f"dead_units_h{i + 1}"] = (life == 1.0).sum(-1).astype(np.int64)  # [epochs, E]
        return out


class LatentMaps(_Probe):
    """Hidden activations of a fixed stratified eval subsample (every class) at the end of every task.

    Kept as float16 ``latent_h{l}[t, e, n, unit]``; the t-SNE embedding is computed when plotting.
    """

    def __init__(self, *args):
        super().__init__(*args)
        self.host: list[list[np.ndarray]] = []
        self._x = None

    @torch.no_grad()
    def after_task(self, ctx: Context) -> None:
        with self.timer:
            if self._x is None:
                split = ctx.data.eval
                idx = stratified(split.y, self.config.latent_per_class, self.config.seed + 1, ctx.data.n_classes)
                self._x, self.y = split.x[idx], split.y[idx].cpu().numpy()
            with eval_mode(ctx.model):
                hidden = ctx.model(self._x).hidden
            if not hidden:
                return _skip(self, "latent")
            self.host.append([h.half().cpu().numpy() for h in hidden])  # sync: task end

    def arrays(self) -> dict[str, np.ndarray]:
        if not self.host:
            return {}
        out = {"latent_y": self.y}
        for i in range(len(self.host[0])):
            out[f"latent_h{i + 1}"] = np.stack([h[i] for h in self.host])
        return out
