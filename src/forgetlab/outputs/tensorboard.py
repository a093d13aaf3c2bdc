"""TensorBoard logging: ``forgetlab run PRESET --log tensorboard``, then ``tensorboard --logdir RUN_DIR``.

What is written (tags; MEMBER is ``seed=S``, after the member's grid values: ``lr=0.05,seed=1``):

- every per-epoch metric of results.json, per member and as the ensemble mean, once per epoch:
  ``train_loss/MEMBER``, ``train_loss/mean``, ... for train_loss, train_acc, val_loss, val_acc, sparsity_all;
  the step is the epoch's index counted over all tasks (0, 1, ...);
- at every task end: weight histograms ``weights/PARAM/MEMBER`` and hidden-activation histograms
  ``activations/hL/MEMBER`` on a fixed stratified sample of the evaluation split (step = task index);
- at every task end, the first member's hidden activations of that sample with their class labels (and
  the images as sprites, when the data are images) for the embedding projector, tag ``hL-taskT``;
- with probes on, at the end of the run: the forgetting curves ``forgetting/task T/MEMBER|mean`` (accuracy
  on each task's classes) and the probability curves ``probability/class C/MEMBER|mean`` (mean softmax
  probability of the true class over that class's probe examples), at every probe point (step = the
  training step).

The dependency is optional: ``pip install 'forgetlab[tensorboard]'``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from forgetlab.diagnostics.base import stratified
from forgetlab.engine.hooks import Context, Hook
from forgetlab.errors import require

PER_CLASS = 30  # evaluation examples per class behind the activation histograms and the projector
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "sparsity_all")


def member_tags(config, members) -> list[str]:
    """``seed=S``, preceded by the member's values of the grid's keys: ``lr=0.05,seed=1``."""
    keys = [k for k, _ in config.grid]
    return [",".join([f"{k.split('.')[-1]}={m.hparams[k]:g}" for k in keys] + [f"seed={m.seed}"]) for m in members]


class TensorBoardLogger(Hook):
    """A hook that writes TensorBoard event files into ``log_dir`` as training goes."""

    def __init__(self, log_dir: str | Path):
        require("tensorboard", "tensorboard", "--log tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(str(self.log_dir))
        self.epochs = 0  # epochs finished over all tasks: the step of the per-epoch scalars
        self._x: torch.Tensor | None = None  # the fixed sample of evaluation examples, and its labels
        self._y: torch.Tensor | None = None

    def after_epoch(self, ctx: Context, stats: dict) -> None:
        tags = member_tags(ctx.config, ctx.members)
        for key in EPOCH_METRICS:
            values = stats[key]
            for tag, v in zip(tags, values, strict=True):
                self.writer.add_scalar(f"{key}/{tag}", v, self.epochs)
            self.writer.add_scalar(f"{key}/mean", float(np.mean(values)), self.epochs)
        self.epochs += 1

    @torch.no_grad()
    def after_task(self, ctx: Context) -> None:
        model, tags = ctx.model, member_tags(ctx.config, ctx.members)
        for name, p in model.named_parameters():
            for e, tag in enumerate(tags):
                self.writer.add_histogram(f"weights/{name}/{tag}", p[e].detach().cpu(), ctx.task)
        if self._x is None or self._y is None:
            split = ctx.data.eval
            idx = stratified(split.y, PER_CLASS, 1, ctx.data.n_classes)
            self._x, self._y = split.x[idx], split.y[idx]
        x, y = self._x, self._y
        was = model.training
        model.eval()
        hidden = model(x).hidden
        model.train(was)
        for layer, h in enumerate(hidden, 1):
            for e, tag in enumerate(tags):
                self.writer.add_histogram(f"activations/h{layer}/{tag}", h[e].cpu(), ctx.task)
            self.writer.add_embedding(
                h[0].cpu(),
                metadata=y.cpu().tolist(),
                label_img=self._sprites(ctx, x),
                global_step=ctx.task,
                tag=f"h{layer}-task{ctx.task + 1}",
            )
        self.writer.flush()

    def _sprites(self, ctx: Context, x: torch.Tensor) -> torch.Tensor | None:
        """The sample's images scaled to [0, 1] per image, [N, C, H, W]; None for non-image data."""
        shape = ctx.data.image_shape
        if len(shape) != 3:
            return None
        x = x.cpu().view(-1, *shape)
        lo = x.flatten(1).min(1).values.view(-1, 1, 1, 1)
        hi = x.flatten(1).max(1).values.view(-1, 1, 1, 1)
        return (x - lo) / (hi - lo).clamp_min(1e-12)

    def close(self, results) -> None:
        """Write the probe curves (when probes were on) and close the event file."""
        probes = results.probes
        if probes is not None and "curve_correct" in probes:
            tags = member_tags(results.config, results.members)
            steps = probes["point_step"].tolist()
            self._curves(
                "forgetting", [f"task {t + 1}" for t in range(len(probes.tasks))], probes.task_accuracy(), steps, tags
            )
            prob = probes["prob_curve"]  # [points, E, true class, output class]
            own = np.diagonal(prob, axis1=2, axis2=3)  # [points, E, class]: probability of the true class
            own = np.where(probes.seen_mask()[:, None, :], own, np.nan)
            self._curves("probability", [f"class {c}" for c in range(own.shape[-1])], own, steps, tags)
        self.writer.close()

    def _curves(self, group: str, names: list[str], values: np.ndarray, steps: list[int], tags: list[str]) -> None:
        """values [points, E, k]: one curve per name k and member, and the mean; unseen (NaN) points left out."""
        for k, name in enumerate(names):
            for p, step in enumerate(steps):
                row = values[p, :, k]
                if np.isnan(row).all():
                    continue
                for tag, v in zip(tags, row, strict=True):
                    self.writer.add_scalar(f"{group}/{name}/{tag}", float(v), step)
                self.writer.add_scalar(f"{group}/{name}/mean", float(np.mean(row)), step)
