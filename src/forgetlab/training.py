"""The training loop: every member of the ensemble trains in one batched program.

Per step: gather each member's batch from the resident data by index, one forward and backward over
the ensemble, one optimizer step. No host synchronisation inside an epoch: loss and accuracy are
accumulated on the device and read back once per epoch, together with the evaluation statistics.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import torch

from . import scenarios, seeding
from .config import MEMBER_KEYS, Member, RunConfig, members as make_members
from .data import Dataset, Split
from .evaluation import class_stats
from .hooks import Context, Hook
from .models import member_cross_entropy
from .errors import ConfigError
from .modules import ModuleEnsemble, build
from .optim import OPTIMIZERS
from .results import MemberResult, Results, TaskRecord

# progress(done_steps, total_steps, status_text); called at most once per 25 steps and per epoch
Progress = Callable[[int, int, str], None]


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def train(config: RunConfig, data: Dataset, hooks: Sequence[Hook] = (), progress: Progress | None = None,
          members: Sequence[Member] | None = None) -> Results:
    """Train every member of ``config`` on ``data``; on Ctrl-C, return what finished (status "interrupted").

    ``members`` trains only these (any subset of ``members(config)``, e.g. a sweep's unfinished ones);
    a member's numbers do not depend on which others train beside it.
    """
    from .strategies import make as make_strategy

    hooks = [*make_strategy(config), *hooks]  # the config's strategy runs first (naive: no-op hooks)
    device = data.train.x.device
    members = list(members) if members is not None else make_members(config)
    E, B = len(members), config.train.batch_size
    hp = {k: torch.tensor([m.hparams[k] for m in members], device=device) for k in MEMBER_KEYS}
    seeds = [m.seed for m in members]
    scenario = scenarios.build(config, data.n_classes, device)
    model = build(config.model, seeds, hp["model.dropout"], device, scenario.n_units, data.image_shape)
    opt = OPTIMIZERS[config.train.optimizer](model.parameters(), hp["train.lr"], hp["train.momentum"],
                                             hp["train.weight_decay"])
    l1 = hp["train.l1"] if bool((hp["train.l1"] > 0).any()) else None
    if l1 is not None and isinstance(model, ModuleEnsemble) and not model.hidden_units:
        raise ConfigError(f"train.l1 penalises hidden activations, but {config.model.module} returns only logits")
    shuffle_gens = seeding.generators(seeds, seeding.SHUFFLE)
    skip_single = config.model.norm == "batch"  # batch norm cannot normalise a batch of one
    # the plain MLP with the plain loss steps without autograd (same maths, a quarter less time per small step)
    analytic = model.analytic() and scenario.identity and not any(
        _overrides(h, "base_loss") or _overrides(h, "loss") for h in hooks)

    results = Results(config, [MemberResult(m.seed, m.hparams) for m in members], device=str(device))
    ctx = Context(config, members, data, model, opt, hp, scenario=scenario)
    tasks = config.tasks
    task_train = [data.train.indices_of(c) for c in tasks]
    iters = config.train.iters  # > 0: a fixed number of steps per task, recorded as one "epoch"
    n_epochs = 1 if iters else config.train.epochs
    total = (iters * len(tasks) if iters else
             sum(steps_per_epoch(len(ix), B) for ix in task_train) * config.train.epochs)

    def predictor(out, x):  # the first hook that predicts (iCaRL's nearest mean) replaces the logits
        for h in hooks:
            scores = h.predict(ctx, out, x)
            if scores is not None:
                return scores
        return None

    def evaluate(split: Split):
        return class_stats(model, split, data.n_classes, scenario=scenario, predict=predictor)

    # R0[k]: the untrained network's accuracy on each task, the reference of forward transfer
    init = evaluate(data.eval)
    acc0 = torch.stack([init.select(c).accuracy() for c in tasks], 1).tolist()  # sync: once per run
    for r, row in zip(results.members, acc0):
        r.acc_init = row
    t0 = time.perf_counter()
    try:
        for t, (classes, train_idx) in enumerate(zip(tasks, task_train)):
            ctx.task, ctx.classes, ctx.task_step = t, classes, 0
            ctx.seen = tuple(c for task in tasks[: t + 1] for c in task)
            seen_idx = data.eval.indices_of(ctx.seen)
            seen_eval = Split(data.eval.x.index_select(0, seen_idx), data.eval.y.index_select(0, seen_idx))
            for r in results.members:
                r.tasks.append(TaskRecord(list(classes)))
            for h in hooks:
                h.before_task(ctx)
            for h in hooks:
                train_idx = h.train_indices(ctx, train_idx)
            n = len(train_idx)
            if not iters:  # cumulative or joint training widened the task: the progress total grows with it
                total += (steps_per_epoch(n, B) - steps_per_epoch(len(task_train[t]), B)) * n_epochs
            for epoch in range(n_epochs):
                ctx.epoch = epoch
                # each member its own order; [E, n] indices into the resident training set
                if iters:  # as many reshuffled passes as the steps need, cut at iters batches
                    reps = -(-iters * B // n)
                    order = torch.stack([torch.cat([torch.randperm(n, generator=g) for _ in range(reps)])[:iters * B]
                                         for g in shuffle_gens]).to(device)
                else:
                    order = torch.stack([torch.randperm(n, generator=g) for g in shuffle_gens]).to(device)
                order = train_idx[order]
                loss_sum = torch.zeros(E, device=device)  # sum over steps of loss * batch size
                correct = torch.zeros(E, device=device, dtype=torch.long)
                seen_examples = 0
                model.train()
                for start in range(0, order.shape[1], B):
                    idx = order[:, start:start + B]
                    if skip_single and idx.shape[1] < 2:
                        continue
                    ctx.batch_idx = idx
                    flat = idx.reshape(-1)  # index_select copies whole rows: ~3x faster than x[idx]
                    x = data.train.x.index_select(0, flat).view(*idx.shape, *data.train.x.shape[1:])
                    y = data.train.y.index_select(0, flat).view(idx.shape)
                    for h in hooks:
                        x, y = h.batch(ctx, x, y)
                    if analytic:
                        (loss, logits), target = model.loss_and_grad(x, y, l1), y
                    else:
                        logits, target, loss = _autograd_loss(ctx, model, hooks, scenario, x, y, l1)
                    for h in hooks:
                        h.after_backward(ctx)
                    opt.step()
                    ctx.step += 1
                    ctx.task_step += 1
                    for h in hooks:
                        h.after_step(ctx)
                    with torch.no_grad():
                        loss_sum.add_(loss.detach(), alpha=y.shape[1])
                        correct += (logits.max(-1).indices == target).sum(1)  # argmax: slow on a strided view
                        seen_examples += y.shape[1]
                    if progress is not None and ctx.step % 25 == 0:
                        progress(ctx.step, total, "")
                # evaluation: the seen classes every epoch; every class after the task's last epoch
                last = epoch == n_epochs - 1
                stats = evaluate(data.eval if last else seen_eval)
                seen = stats.select(ctx.seen)
                host = torch.cat([loss_sum / seen_examples, correct / seen_examples, seen.mean_loss(), seen.accuracy(),
                                  seen.sparsity_all(), seen.sparsity().flatten()]).tolist()  # sync: once per epoch
                L = len(stats.units)
                cols = [host[i * E:(i + 1) * E] for i in range(5)]
                layer = host[5 * E:]
                for e, r in enumerate(results.members):
                    rec = r.tasks[-1]
                    rec.train_loss.append(cols[0][e])
                    rec.train_acc.append(cols[1][e])
                    rec.val_loss.append(cols[2][e])
                    rec.val_acc.append(cols[3][e])
                    rec.sparsity_all.append(cols[4][e])
                    rec.sparsity.append(layer[e * L:(e + 1) * L])
                for h in hooks:
                    h.after_epoch(ctx, {"train_loss": cols[0], "train_acc": cols[1], "val_loss": cols[2],
                                        "val_acc": cols[3], "sparsity_all": cols[4]})
                if progress is not None:
                    mean_acc = sum(cols[3]) / E
                    progress(ctx.step, total, f"task {t + 1}/{len(tasks)} epoch {epoch + 1} val acc {mean_acc:.4f}")
            acc = torch.stack([stats.select(c).accuracy() for c in tasks], 1).tolist()  # [E, tasks]
            for r, row in zip(results.members, acc):
                r.acc_matrix.append(row)
            for h in hooks:
                h.after_task(ctx)
    except KeyboardInterrupt:
        results.status = "interrupted"
        for r in results.members:  # drop an unfinished task's empty record
            if r.tasks and not r.tasks[-1].train_loss:
                r.tasks.pop()
    results.elapsed_s = time.perf_counter() - t0
    results.model = model  # the trained ensemble, for saving and for notebooks
    return results


def _overrides(hook: Hook, method: str) -> bool:
    return getattr(type(hook), method) is not getattr(Hook, method)


def _autograd_loss(ctx: Context, model, hooks: Sequence[Hook], scenario, x, y, l1):
    """Forward, loss (the first hook's base loss or the cross-entropy, the L1 term, every hook's penalty)
    and backward through autograd. Returns the scored logits, their targets and the loss [E]."""
    out = model(x)
    logits, target = out.logits, y
    if not scenario.identity:
        logits, target = scenario.logits(logits, y), scenario.targets(y)
    loss = None
    for h in hooks:  # a strategy may replace the cross-entropy (iCaRL's binary one)
        loss = h.base_loss(ctx, out, x, y)
        if loss is not None:
            break
    if loss is None:
        loss = member_cross_entropy(logits, target).mean(1)
    if l1 is not None:
        loss = loss + l1 * sum(h.abs().mean((1, 2)) for h in out.hidden)
    for h in hooks:
        extra = h.loss(ctx, out, x, y)
        if extra is not None:
            loss = loss + extra
    ctx.optimizer.zero_grad()
    loss.sum().backward()  # members are independent: d(sum)/d(theta_e) = d(loss_e)/d(theta_e)
    return logits, target, loss
