"""Probes read at every task end that explain forgetting with measured quantities, batched over members.

- ``LinearProbe``: representation vs head forgetting (Davari et al. 2022, "Probing representation
  forgetting in supervised and unsupervised continual learning"): per hidden layer, a ridge probe and a
  kNN probe fitted on the frozen features of a fixed stratified subset of the training split (the seen
  classes), scored on the probe set beside the network's own predictions;
- ``UnitReuse``: per hidden unit and task, how often the task's examples activate it, and how far its
  incoming weights moved during the task;
- ``Drift``: linear CKA (Kornblith et al. 2019) between a layer's representation of the probe set at
  one task end and at every later one.

All three read one eval-mode forward pass per task end (``TaskEndFeatures``); each reads back to the
host once per task.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from forgetlab.diagnostics.base import ProbeConfig, stratified
from forgetlab.diagnostics.measures import knn_predict, linear_cka, ridge_fit
from forgetlab.diagnostics.recorders import ProbeSetRef, _Probe
from forgetlab.engine.hooks import Context
from forgetlab.engine.models import eval_mode


class TaskEndFeatures:
    """Eval-mode outputs at a task end of the fit set (``fit_per_class`` training examples per class,
    fixed) and of the probe set (every class), computed once per task end for every probe that reads them."""

    def __init__(self, config: ProbeConfig):
        self.config, self._key, self.fit_x = config, None, None

    @torch.no_grad()
    def get(self, ctx: Context, ps_ref: ProbeSetRef):
        if self.fit_x is None:
            split = ctx.data.train
            idx = stratified(split.y, self.config.fit_per_class, self.config.seed + 2, ctx.data.n_classes)
            self.fit_x, self.fit_y = split.x[idx], split.y[idx]
        if self._key != ctx.step:
            with eval_mode(ctx.model) as model:
                self.fit, self.score = model(self.fit_x), model(ps_ref.get().x)
            self._key = ctx.step
        return self.fit, self.score


class _TaskEnd(_Probe):
    def __init__(self, config: ProbeConfig, probe_set: ProbeSetRef, timer, features: TaskEndFeatures):
        super().__init__(config, probe_set, timer)
        self.features = features
        self.host: list[dict[str, np.ndarray]] = []

    def before_task(self, ctx: Context) -> None:
        with self.timer:
            self.ps_ref.prepare(ctx)

    @torch.no_grad()
    def after_task(self, ctx: Context) -> None:
        if len(ctx.config.tasks) < 2:  # one task: nothing is forgotten, nothing to explain
            return
        with self.timer:
            self.host.append({k: v.cpu().numpy() for k, v in self.measure(ctx).items()})  # sync: task end

    def measure(self, ctx: Context) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _stacked(self) -> dict[str, np.ndarray]:
        return {k: np.stack([h[k] for h in self.host]) for k in self.host[0]} if self.host else {}


class LinearProbe(_TaskEnd):
    """Correct probe-set examples per class at every task end: ``linear_correct[t, e, l, c]`` (ridge probe
    on hidden layer l+1, one-hot targets of the seen classes, prediction: the largest output),
    ``knn_correct`` (kNN probe, same features) and ``net_correct[t, e, c]`` (the network itself, scored as
    the run's scenario scores it). Probes predict only among the seen classes; the network among all."""

    def measure(self, ctx: Context) -> dict[str, torch.Tensor]:
        fit, score = self.features.get(ctx, self.ps_ref)
        ps, fv = self.ps, self.features
        seen = torch.as_tensor(sorted(ctx.seen), device=ps.y.device)
        fit_rows = torch.isin(fv.fit_y, seen).nonzero().squeeze(1)
        fit_label = torch.searchsorted(seen, fv.fit_y[fit_rows])  # index into the seen classes
        onehot = F.one_hot(ps.y, ps.n_classes).double()  # [M, C]: correct counts per class as a matmul
        linear, knn = [], []
        for hf, hs in zip(fit.hidden, score.hidden, strict=True):
            hf = hf.index_select(1, fit_rows)
            w, b = ridge_fit(hf, F.one_hot(fit_label, len(seen)), self.config.ridge)
            pred = seen[(hs.double() @ w + b).argmax(-1)]
            linear.append((pred == ps.y).double() @ onehot)
            pred = seen[knn_predict(hf, fit_label, hs, self.config.knn, len(seen))]
            knn.append((pred == ps.y).double() @ onehot)
        logits, target = score.logits, ps.y
        if ctx.scenario is not None:
            logits, target = ctx.scenario.logits(logits, target), ctx.scenario.targets(target)
        net = (logits.argmax(-1) == target).double() @ onehot
        return {"linear_correct": torch.stack(linear, 1), "knn_correct": torch.stack(knn, 1), "net_correct": net}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {k: v.astype(np.int64) for k, v in self._stacked().items()}
        return {**out, "score_count": self.ps.count} if out else {}


class UnitReuse(_TaskEnd):
    """At every task end, per hidden layer l, member, task k and unit: ``unit_rate_h{l}[t, e, k, u]``, the
    share of task k's probe examples on which the unit is > 0; ``unit_mean_h{l}``, its mean activation on
    them; ``unit_change_h{l}[t, e, u]``, the relative change of its incoming weights during task t."""

    def __init__(self, *args):
        super().__init__(*args)
        self._start: list[torch.Tensor] = []

    def before_task(self, ctx: Context) -> None:
        super().before_task(ctx)
        with self.timer:
            # incoming weights per hidden unit: forgetlab's fully connected layers (a user module's are not known)
            self._start = [fc.weight.detach().clone() for fc in getattr(ctx.model, "fcs", ())]

    def measure(self, ctx: Context) -> dict[str, torch.Tensor]:
        _, score = self.features.get(ctx, self.ps_ref)
        ps = self.ps
        task_of = torch.zeros(ps.n_classes, len(ctx.config.tasks), device=ps.y.device)
        for k, classes in enumerate(ctx.config.tasks):
            task_of[list(classes), k] = 1.0
        member = task_of[ps.y]  # [M, T]: which task each probe example belongs to
        share = member / member.sum(0).clamp_min(1)  # a mean over each task's examples, as a matmul
        row = {}
        fcs = getattr(ctx.model, "fcs", [None] * len(score.hidden))
        for i, (h, fc) in enumerate(zip(score.hidden, fcs, strict=True)):
            row[f"unit_rate_h{i + 1}"] = torch.einsum("emh,mt->eth", (h > 0).float(), share)
            row[f"unit_mean_h{i + 1}"] = torch.einsum("emh,mt->eth", h.float(), share)
            if fc is None:
                change = torch.full(h.shape[::2], float("nan"), device=h.device)
            else:
                w0 = self._start[i]
                change = torch.linalg.vector_norm(fc.weight - w0, dim=1) / torch.linalg.vector_norm(w0, dim=1)
            row[f"unit_change_h{i + 1}"] = change  # [E, H]
        return row

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v.astype(np.float32) for k, v in self._stacked().items()}


class Drift(_TaskEnd):
    """``cka_h{l}[t, e, s]``: linear CKA between hidden layer l's representation of the probe set (every
    class) at the end of task s and at the end of task t, for s <= t (NaN for s > t)."""

    def __init__(self, *args):
        super().__init__(*args)
        self._kept: list[list[torch.Tensor]] = []  # per task end, per layer [E, M, H], on the device

    def measure(self, ctx: Context) -> dict[str, torch.Tensor]:
        _, score = self.features.get(ctx, self.ps_ref)
        self._kept.append([h.clone() for h in score.hidden])
        T = len(ctx.config.tasks)
        row = {}
        for i, now in enumerate(self._kept[-1]):
            cka = torch.full((now.shape[0], T), float("nan"), dtype=torch.float64, device=now.device)
            for s, then in enumerate(self._kept):
                cka[:, s] = linear_cka(then[i], now)
            row[f"cka_h{i + 1}"] = cka
        return row

    def arrays(self) -> dict[str, np.ndarray]:
        return self._stacked()
