"""Probes of how a new task overwrites the old ones, step by step, batched over members.

- ``HeadBias``: on the forgetting curve's schedule and at every task end, the share of old-class probe
  examples predicted as one of the current task's classes, the mean logit of the old and the new
  classes' output units on those examples, and the norm of the head's weights and bias per class (the
  imbalance that weight aligning and BiC correct);
- ``Interference``: in the first K batches of every task after the first, per layer, the gradient of
  the training batch's loss against the gradient of the old tasks' loss on their probe examples (dot
  products and norms: cosines), and the first-order predicted change of the old tasks' loss against
  the measured one.
"""

from __future__ import annotations

import numpy as np
import torch

from forgetlab.diagnostics.base import Rows
from forgetlab.diagnostics.recorders import _Probe, _Scheduled
from forgetlab.engine.hooks import Context
from forgetlab.engine.models import eval_mode, member_cross_entropy

HEAD_STATS = ("old_to_new", "old_logit", "new_logit")  # the first columns of head_bias / head_end


class HeadBias(_Scheduled):
    """``head_bias[p, e, :]`` at every probe point and ``head_end[t, e, :]`` at every task end: the
    ``HEAD_STATS`` on the probe examples of the classes of earlier tasks (NaN in the first task), then the
    norm of the head's weight column of each output unit [C], then each unit's bias [C].

    Needs output units that are classes (class- or task-incremental; NaN rows in domain-incremental runs).
    """

    def __init__(self, *args):
        super().__init__(*args)
        self.end_rows = Rows(chunk=8)
        self.end_host: list[np.ndarray] = []

    def _row(self, ctx: Context) -> torch.Tensor:
        ps, head = self.ps, getattr(ctx.model, "head", None)
        E, C = ctx.n_members, ctx.scenario.n_units if ctx.scenario is not None else ps.n_classes
        if head is not None:  # forgetlab's networks: weight [E, in, C]; a user module's head is not known
            w_norm, bias = torch.linalg.vector_norm(head.weight, dim=1), head.bias[:, 0]  # [E, C] each
        else:
            w_norm = bias = torch.full((E, C), float("nan"), device=ps.y.device)
        old = [c for task in ctx.config.tasks[: ctx.task] for c in task]
        stats = torch.full((E, len(HEAD_STATS)), float("nan"), device=ps.y.device)
        if old and ps.n_classes == C and (ctx.scenario is None or ctx.scenario.unit is None):
            logits = ps.forward(ctx).logits  # the seen classes' probe examples
            rows = torch.isin(ps.ys, torch.as_tensor(old, device=ps.ys.device)).nonzero().squeeze(1)
            logits, y = logits.index_select(1, rows), ps.ys[rows]
            scored = logits if ctx.scenario is None else ctx.scenario.logits(logits, y)
            new = torch.zeros(C, dtype=torch.bool, device=ps.y.device)
            new[list(ctx.classes)] = True
            stats[:, 0] = new[scored.argmax(-1)].float().mean(1)
            stats[:, 1] = logits[:, :, old].mean((1, 2))
            stats[:, 2] = logits[:, :, new].mean((1, 2))
        return torch.cat([stats, w_norm, bias], 1).detach()

    def before_task(self, ctx: Context) -> None:
        if len(ctx.config.tasks) > 1:  # one task: no old classes, nothing to explain
            super().before_task(ctx)

    def after_step(self, ctx: Context) -> None:
        if len(ctx.config.tasks) > 1:
            super().after_step(ctx)

    @torch.no_grad()
    def record(self, ctx: Context) -> None:
        self.rows.append(self._row(ctx))

    @torch.no_grad()
    def after_task(self, ctx: Context) -> None:
        if len(ctx.config.tasks) < 2:
            return
        with self.timer:
            self.end_rows.append(self._row(ctx))
            self.end_host.append(self.end_rows.drain())  # sync: once per task
        super().after_task(ctx)

    def arrays(self) -> dict[str, np.ndarray]:
        if not self.end_host:
            return {}
        return {
            "head_bias": self._stacked().astype(np.float32),
            "head_end": np.concatenate(self.end_host).astype(np.float32),
        }


def layer_groups(model) -> tuple[list[str], list[list[int]]]:
    """Layer names and, per layer, the indices of its parameters in ``model.parameters()`` order: a
    layer's weight and bias (and a norm's affine) count as one vector."""
    names: list[str] = []
    groups: dict[str, list[int]] = {}
    for i, (name, _) in enumerate(model.named_parameters()):
        parts = name.split(".")
        if parts[0] in ("conv_w", "conv_b"):  # LeNet-5's ParameterLists: conv_w.0 and conv_b.0 are one layer
            layer = f"conv.{parts[1]}"
        else:
            layer = ".".join(parts[:2]) if parts[0] in ("fcs", "norms") else parts[0]
        if layer not in groups:
            names.append(layer)
            groups[layer] = []
        groups[layer].append(i)
    return names, [groups[n] for n in names]


class Interference(_Probe):
    """For each of the first K = ``interference_batches`` batches of every task t >= 1, a row
    ``interference[s, e, :]``: per layer j (``interference_layers``) the dot product g_new . g_old, then
    |g_new|^2, then |g_old|^2 (3 x layers columns), then the old tasks' loss before and after the step, the
    SGD first-order prediction -lr g_new . g_old of its change, and the prediction from the update the
    optimizer made, (theta_after - theta_before) . g_old.

    g_new is the gradient the optimizer is about to apply (``p.grad`` after the backward pass: the training
    batch's loss with every penalty); g_old is the gradient of the mean cross-entropy on the probe examples
    of all earlier tasks, in eval mode, from ``torch.autograd.grad`` (which leaves ``p.grad`` alone).
    """

    def __init__(self, *args):
        super().__init__(*args)
        self.rows, self.host, self.where = Rows(chunk=64), [], []
        self._pending, self.layers, self._old = None, None, None

    def before_task(self, ctx: Context) -> None:
        with self.timer:
            self.ps_ref.prepare(ctx)
            if self.layers is None:
                self.layers, self.groups = layer_groups(ctx.model)
            old = [c for task in ctx.config.tasks[: ctx.task] for c in task]
            ps = self.ps
            rows = torch.isin(ps.y, torch.as_tensor(old, device=ps.y.device)).nonzero().squeeze(1)
            self._old = (ps.x[rows], ps.y[rows]) if old else None

    def _old_loss(self, ctx: Context, grad: bool):
        x, y = self._old
        params = [p for p in ctx.model.parameters()]
        with eval_mode(ctx.model) as model, torch.set_grad_enabled(grad):
            logits = model(x).logits
            if ctx.scenario is not None:
                logits, y = ctx.scenario.logits(logits, y), ctx.scenario.targets(y)
            loss = member_cross_entropy(logits, y).mean(1)  # [E]
            if not grad:
                return loss, None
            g = torch.autograd.grad(loss.sum(), params, allow_unused=True)  # members are independent
        return loss.detach(), [torch.zeros_like(p) if gi is None else gi for p, gi in zip(params, g, strict=True)]

    def after_backward(self, ctx: Context) -> None:
        if self._old is None or ctx.task_step >= self.config.interference_batches:
            return
        with self.timer:
            params = list(ctx.model.parameters())
            g_new = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params]
            loss, g_old = self._old_loss(ctx, grad=True)
            E = ctx.n_members
            cols = []
            for prods in ((g_new, g_old), (g_new, g_new), (g_old, g_old)):
                for idx in self.groups:
                    cols.append(sum((prods[0][i] * prods[1][i]).reshape(E, -1).sum(1) for i in idx))
            self._pending = (torch.stack(cols, 1), loss, g_old, [p.detach().clone() for p in params])

    def after_step(self, ctx: Context) -> None:
        if self._pending is None:
            return
        with self.timer:
            cols, loss, g_old, before = self._pending
            self._pending = None
            E = ctx.n_members
            after, _ = self._old_loss(ctx, grad=False)
            dot = cols[:, : len(self.groups)].sum(1)
            sgd = -ctx.hparams["train.lr"].to(dot.dtype) * dot
            moved = sum(
                ((p.detach() - b) * g).reshape(E, -1).sum(1)
                for p, b, g in zip(ctx.model.parameters(), before, g_old, strict=True)
            )
            self.rows.append(torch.cat([cols, torch.stack([loss, after, sgd, moved], 1)], 1))
            self.where.append((ctx.task, ctx.task_step, ctx.step))

    def after_task(self, ctx: Context) -> None:
        with self.timer:
            self.host.append(self.rows.drain())  # sync: once per task

    def arrays(self) -> dict[str, np.ndarray]:
        done = [h for h in self.host if h is not None]
        if not done:
            return {}
        rows = np.concatenate(done)
        where = np.asarray(self.where[: len(rows)], dtype=np.int64)
        return {
            "interference": rows.astype(np.float64),
            "interference_task": where[:, 0],
            "interference_task_step": where[:, 1],
        }
