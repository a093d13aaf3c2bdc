"""The training loop: every member of the ensemble trains in one batched program.

Per step: gather each member's batch from the resident data by index, one step (steps.py: the fused
hand-written one or autograd), one optimizer step. No host synchronisation inside an epoch: loss and
accuracy are accumulated on the device and read back once per epoch, together with the evaluation
statistics.

    train()           set up the run, the untrained network's accuracy, then each task
    _Run.task         before_task, the task's examples, its epochs, the accuracy matrix row, after_task
    _Run.epoch_order  each member's order of the task's examples for one epoch
    _Run.batches      the batch loop
    _Run.record_epoch evaluation and the epoch's record
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch

import forgetlab.engine.steps as steps
from forgetlab.config import MEMBER_KEYS, Member, RunConfig
from forgetlab.config import members as make_members
from forgetlab.data import Dataset, Split, scenarios, seeding
from forgetlab.engine.evaluation import ClassStats, class_stats
from forgetlab.engine.hooks import Context, Hook
from forgetlab.engine.modules import ModuleEnsemble, build
from forgetlab.engine.optim import OPTIMIZERS
from forgetlab.errors import ConfigError
from forgetlab.outputs.results import MemberResult, Results, TaskRecord
from forgetlab.strategies import make as make_strategy

# progress(done_steps, total_steps, status_text); called at most once per 25 steps and per epoch
Progress = Callable[[int, int, str], None]


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def train(
    config: RunConfig,
    data: Dataset,
    hooks: Sequence[Hook] = (),
    progress: Progress | None = None,
    members: Sequence[Member] | None = None,
) -> Results:
    """Train every member of ``config`` on ``data``; on Ctrl-C, return what finished (status "interrupted").

    ``members`` trains only these (any subset of ``members(config)``, e.g. a sweep's unfinished ones);
    a member's numbers do not depend on which others train beside it.
    """
    run = _Run(
        config,
        data,
        [*make_strategy(config), *hooks],
        progress,  # the config's strategy runs first
        list(members) if members is not None else make_members(config),
    )
    results = run.results
    # R0[k]: the untrained network's accuracy on each task, the reference of forward transfer
    acc0 = run.task_accuracy(run.evaluate(data.eval))  # sync: once per run
    for r, row in zip(results.members, acc0, strict=True):
        r.acc_init = row
    t0 = time.perf_counter()
    try:
        with flush_denormals():
            for t, classes in enumerate(config.tasks):
                run.task(t, classes)
    except KeyboardInterrupt:
        results.status = "interrupted"
        for r in results.members:  # drop an unfinished task's empty record
            if r.tasks and not r.tasks[-1].train_loss:
                r.tasks.pop()
    results.elapsed_s = time.perf_counter() - t0
    results.model = run.ctx.model  # the trained ensemble, for saving and for notebooks
    return results


@contextmanager
def flush_denormals():
    """Treat float32 values below 1.2e-38 as zero on the CPU while training, and stop doing so after.

    The momentum buffer of a weight that no longer gets a gradient shrinks by 0.9 per step into that
    range, where x86 cores take about a hundred cycles per operation: without this, half of a plain
    MLP's run is spent in the optimizer's update (``benchmarks/bench_engine.py`` times a run both ways).
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class _Run:
    """One call of ``train``: the ensemble, its optimizer, step and hooks, and the results being filled."""

    def __init__(
        self, config: RunConfig, data: Dataset, hooks: list[Hook], progress: Progress | None, members: list[Member]
    ):
        self.config, self.data, self.hooks, self.progress = config, data, hooks, progress
        device = data.train.x.device
        self.E, self.B = len(members), config.train.batch_size
        hp = {k: torch.tensor([m.hparams[k] for m in members], device=device) for k in MEMBER_KEYS}
        seeds = [m.seed for m in members]
        scenario = scenarios.build(config, data.n_classes, device)
        model = build(config.model, seeds, hp["model.dropout"], device, scenario.n_units, data.image_shape)
        opt = OPTIMIZERS[config.train.optimizer](
            model.parameters(), hp["train.lr"], hp["train.momentum"], hp["train.weight_decay"]
        )
        self.ctx = Context(config, members, data, model, opt, hp, scenario=scenario)
        self.ctx.predict = self._predict
        l1 = steps.L1Penalty(hp["train.l1"]) if bool((hp["train.l1"] > 0).any()) else None
        if l1 is not None and isinstance(model, ModuleEnsemble) and not model.hidden_units:
            raise ConfigError(f"train.l1 penalises hidden activations, but {config.model.module} returns only logits")
        self.step = steps.choose(self.ctx, hooks, l1)
        self.shuffle_gens = seeding.generators(seeds, seeding.SHUFFLE)
        self.skip_single = config.model.norm == "batch"  # batch norm cannot normalise a batch of one
        self.results = Results(config, [MemberResult(m.seed, m.hparams) for m in members], device=str(device))
        self.task_train = [data.train.indices_of(c) for c in config.tasks]
        iters = config.train.iters  # > 0: a fixed number of steps per task, recorded as one "epoch"
        self.n_epochs = 1 if iters else config.train.epochs
        self.total = (
            iters * len(config.tasks)
            if iters
            else sum(steps_per_epoch(len(ix), self.B) for ix in self.task_train) * self.n_epochs
        )

    def evaluate(self, split: Split) -> ClassStats:
        for h in self.hooks:
            h.before_eval(self.ctx)
        return class_stats(
            self.ctx.model, split, self.data.n_classes, scenario=self.ctx.scenario, predict=self._predict
        )

    def _predict(self, out, x):  # the first hook that predicts (iCaRL's nearest mean) replaces the logits
        for h in self.hooks:
            scores = h.predict(self.ctx, out, x)
            if scores is not None:
                return scores
        return None

    def task_accuracy(self, stats: ClassStats) -> list[list[float]]:
        """[E, tasks] accuracy on each task's classes, on the host."""
        return torch.stack([stats.select(c).accuracy() for c in self.config.tasks], 1).tolist()

    def task(self, t: int, classes: tuple[int, ...]) -> None:
        ctx, data, tasks = self.ctx, self.data, self.config.tasks
        ctx.task, ctx.classes, ctx.task_step = t, classes, 0
        ctx.seen = tuple(c for task in tasks[: t + 1] for c in task)
        seen_idx = data.eval.indices_of(ctx.seen)
        seen_eval = Split(data.eval.x.index_select(0, seen_idx), data.eval.y.index_select(0, seen_idx))
        for r in self.results.members:
            r.tasks.append(TaskRecord(list(classes)))
        for h in self.hooks:
            h.before_task(ctx)
        train_idx = self.task_train[t]
        for h in self.hooks:
            train_idx = h.train_indices(ctx, train_idx)
        if not self.config.train.iters:  # cumulative or joint training widened the task: the total grows
            n = train_idx.shape[-1]  # [n] shared, or [E, n] per member (iCaRL's task data + exemplars)
            grown = steps_per_epoch(n, self.B) - steps_per_epoch(len(self.task_train[t]), self.B)
            self.total += grown * self.n_epochs
        for epoch in range(self.n_epochs):
            ctx.epoch = epoch
            sums = self.batches(self.epoch_order(train_idx))
            # evaluation: the seen classes every epoch; every class after the task's last epoch
            last = epoch == self.n_epochs - 1
            stats = self.evaluate(data.eval if last else seen_eval)
            self.record_epoch(stats, *sums)
        for r, row in zip(self.results.members, self.task_accuracy(stats), strict=True):
            r.acc_matrix.append(row)
        for h in self.hooks:
            h.after_task(ctx)

    def epoch_order(self, train_idx: torch.Tensor) -> torch.Tensor:
        """[E, steps * B] indices into the resident training set: each member its own order of the task's
        examples, shared ([n]) or per member ([E, n])."""
        n, iters, B = train_idx.shape[-1], self.config.train.iters, self.B
        if iters:  # as many reshuffled passes as the steps need, cut at iters batches
            reps = -(-iters * B // n)
            order = torch.stack(
                [
                    torch.cat([torch.randperm(n, generator=g) for _ in range(reps)])[: iters * B]
                    for g in self.shuffle_gens
                ]
            )
        else:
            order = torch.stack([torch.randperm(n, generator=g) for g in self.shuffle_gens])
        order = order.to(train_idx.device)
        return train_idx[order] if train_idx.dim() == 1 else train_idx.gather(1, order)

    def batches(self, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Train on ``order`` batch by batch; returns (sum of loss * batch size [E], correct [E], examples)."""
        ctx, train_set, hooks = self.ctx, self.data.train, self.hooks
        loss_sum = torch.zeros(self.E, device=order.device)
        correct = torch.zeros(self.E, device=order.device, dtype=torch.long)
        seen_examples = 0
        ctx.model.train()
        for start in range(0, order.shape[1], self.B):
            idx = order[:, start : start + self.B]
            if self.skip_single and idx.shape[1] < 2:
                continue
            ctx.batch_idx = idx
            flat = idx.reshape(-1)  # index_select copies whole rows: ~3x faster than x[idx]
            x = train_set.x.index_select(0, flat).view(*idx.shape, *train_set.x.shape[1:])
            y = train_set.y.index_select(0, flat).view(idx.shape)
            for h in hooks:
                x, y = h.batch(ctx, x, y)
            loss, logits, target = self.step(x, y)
            for h in hooks:
                h.after_backward(ctx)
            ctx.optimizer.step()
            ctx.step += 1
            ctx.task_step += 1
            for h in hooks:
                h.after_step(ctx)
            with torch.no_grad():
                loss_sum.add_(loss.detach(), alpha=y.shape[1])
                correct += (logits.max(-1).indices == target).sum(1)  # argmax: slow on a strided view
                seen_examples += y.shape[1]
            if self.progress is not None and ctx.step % 25 == 0:
                self.progress(ctx.step, self.total, "")
        return loss_sum, correct, seen_examples

    def record_epoch(self, stats: ClassStats, loss_sum: torch.Tensor, correct: torch.Tensor, n: int) -> None:
        """Append the epoch's training and evaluation numbers to every member's record; after_epoch hooks."""
        ctx, E = self.ctx, self.E
        seen = stats.select(ctx.seen)
        host = torch.cat(
            [
                loss_sum / n,
                correct / n,
                seen.mean_loss(),
                seen.accuracy(),
                seen.sparsity_all(),
                seen.sparsity().flatten(),
            ]
        ).tolist()  # sync: once per epoch
        L = len(stats.units)
        train_loss, train_acc, val_loss, val_acc, sparsity_all = (host[i * E : (i + 1) * E] for i in range(5))
        layer = host[5 * E :]
        for e, r in enumerate(self.results.members):
            rec = r.tasks[-1]
            rec.train_loss.append(train_loss[e])
            rec.train_acc.append(train_acc[e])
            rec.val_loss.append(val_loss[e])
            rec.val_acc.append(val_acc[e])
            rec.sparsity_all.append(sparsity_all[e])
            rec.sparsity.append(layer[e * L : (e + 1) * L])
        for h in self.hooks:
            h.after_epoch(
                ctx,
                {
                    "train_loss": train_loss,
                    "train_acc": train_acc,
                    "val_loss": val_loss,
                    "val_acc": val_acc,
                    "sparsity_all": sparsity_all,
                },
            )
        if self.progress is not None:
            status = (
                f"task {ctx.task + 1}/{len(self.config.tasks)} epoch {ctx.epoch + 1} val acc {sum(val_acc) / E:.4f}"
            )
            self.progress(ctx.step, self.total, status)
