"""Each strategy against the reference implementation it follows (Mammoth's paper-era code, Avalanche 0.6):
the formulas on hand-made cases, and what reaches the training batches and the memories."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from forgetlab import config as cfg
from forgetlab.config import presets
from forgetlab.data import Dataset, Split
from forgetlab.engine.hooks import Hook
from forgetlab.engine.optim import SGD
from forgetlab.engine.training import train
from forgetlab.strategies.lwf import LwF
from forgetlab.strategies.si import SI
from test_strategies import toy_config, toy_context, toy_data


def blobs(per_class: int, n_classes: int = 4, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    protos = 0.2 * torch.randn(n_classes, 784, generator=g)
    y = torch.arange(n_classes).repeat_interleave(per_class)
    ye = torch.arange(n_classes).repeat_interleave(20)
    return Dataset(
        "blobs",
        Split(protos[y] + torch.randn(len(y), 784, generator=g), y),
        Split(protos[ye] + torch.randn(len(ye), 784, generator=g), ye),
        "test",
        n_classes,
    )


class BatchLog(Hook):
    """Every training batch's indices, per task: [E, B] tensors."""

    def __init__(self):
        self.batches: dict[int, list[torch.Tensor]] = {}

    def after_step(self, ctx):
        self.batches.setdefault(ctx.task, []).append(ctx.batch_idx.clone())


# --- iCaRL -------------------------------------------------------------------------------------


@pytest.mark.parametrize("buffer", [200, 500])
def test_icarl_trains_every_task_on_its_data_and_every_exemplar(buffer):
    """Mammoth's protocol (batch 10, one epoch per task): the second task's epoch visits every example of
    the task and every exemplar of the first task's classes once each (Mammoth's and Avalanche's iCaRL
    train on the union of the two)."""
    data = blobs(per_class=1000)
    config = toy_config(
        "icarl", **{"strategy.memory": buffer, "train.batch_size": 10, "train.iters": 0, "train.epochs": 1}
    )
    log = BatchLog()
    res = train(config, data, [log])
    task1 = set(data.train.indices_of(config.tasks[1]).tolist())
    for e in range(len(res.members)):
        got = torch.cat([b[e] for b in log.batches[1]]).tolist()
        assert len(got) == len(set(got)) == len(task1) + buffer  # one pass over the union, nothing twice
        exemplars = set(got) - task1
        labels = [int(data.train.y[i]) for i in exemplars]
        assert labels.count(0) == labels.count(1) == buffer // 2


def test_icarl_bce_under_the_mammoth_protocol_is_mammoths_mean():
    """Mammoth's icarl.get_loss on the second task: BCE with logits, averaged over the batch and the seen
    classes, against targets [sigmoid(old net) on the earlier classes, one-hot on the current ones]."""
    config = presets.get("buzzega2020-seq-mnist-200", "icarl")
    config = cfg.override(cfg.override(config, "model.hidden", "16,16"), "seeds", "0,1")
    data = toy_data(n_classes=10, per_class=4)
    ctx = toy_context(config, data)
    from forgetlab.strategies import make

    icarl = make(config)[0]
    ctx.task, ctx.classes, ctx.seen = 0, (0, 1), (0, 1)
    icarl.before_task(ctx)
    with torch.no_grad():
        for p in ctx.model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ctx.task, ctx.classes, ctx.seen = 1, (2, 3), (0, 1, 2, 3)
    icarl.before_task(ctx)  # snapshot of the old network
    with torch.no_grad():
        for p in ctx.model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x, y = data.train.x[:8].expand(2, -1, -1), data.train.y[:8].expand(2, -1)
    out = ctx.model(x)
    got = icarl.base_loss(ctx, out, x, y)
    old = torch.func.functional_call(ctx.model, icarl.theta_old, (x,)).logits
    for e in range(2):
        eye = torch.eye(10)
        targets = torch.cat([torch.sigmoid(old[e, :, :2]), eye[y[e]][:, 2:4]], 1)
        want = F.binary_cross_entropy_with_logits(out.logits[e, :, :4], targets)
        torch.testing.assert_close(got[e], want)


# --- A-GEM, A-GEM-R and GEM --------------------------------------------------------------------


class MemoryLog(Hook):
    """The labels held by the strategy's memory at every step of every task."""

    def __init__(self, strategy_of):
        self.strategy_of, self.labels = strategy_of, {}

    def after_backward(self, ctx):
        mem = self.strategy_of().memory
        self.labels.setdefault(ctx.task, []).append(ctx.data.train.y[mem.idx].unique().tolist() if len(mem) else [])


def train_with(built, config, data, hooks, monkeypatch):
    """train() with the strategy instance ``built`` (so a test can read its state), however train imports make."""
    import forgetlab.engine.training as training
    from forgetlab import strategies

    monkeypatch.setattr(strategies, "make", lambda c: built)
    if hasattr(training, "make_strategy"):
        monkeypatch.setattr(training, "make_strategy", lambda c: built)
    return training.train(config, data, hooks)


def _run_with_memory_log(name, tasks, memory, monkeypatch):
    from forgetlab import strategies

    config = toy_config(name, **{"protocol.tasks": tasks, "strategy.memory": memory, "train.iters": 30})
    data = toy_data(n_classes=6)
    built = strategies.make(config)
    log = MemoryLog(lambda: built[0])
    res = train_with(built, config, data, [log], monkeypatch)
    return built[0], log, res, data


def test_agem_memory_holds_finished_tasks_only_memory_over_n_tasks_each(monkeypatch):
    tasks = [[0, 1], [2, 3], [4, 5]]
    agem, log, res, data = _run_with_memory_log("agem", tasks, 30, monkeypatch)
    for t, rows in log.labels.items():
        finished = {c for task in tasks[:t] for c in task}
        assert all(set(r) <= finished for r in rows), (t, rows[:3])
    assert [idx.shape for idx in agem.per_task] == [(2, 10)] * 3  # 30 // 3 tasks per task, per member
    for t, idx in enumerate(agem.per_task):
        assert set(data.train.y[idx].unique().tolist()) <= set(tasks[t])
    reservoir, log_r, _, _ = _run_with_memory_log("agem-r", tasks, 30, monkeypatch)
    assert set(log_r.labels[1][-1]) & {2, 3}  # the reservoir variant holds the current task too


def _qp_by_enumeration(P, q, margin):
    """Slow reference: every active set of min 1/2 v'Pv + q'v s.t. v >= margin, the feasible one with the
    lowest objective (float64, numpy)."""
    t = len(q)
    best, arg = math.inf, None
    for mask in range(2**t):
        free = [i for i in range(t) if mask >> i & 1]
        v = np.full(t, margin, dtype=float)
        if free:
            fixed = [i for i in range(t) if i not in free]
            rhs = -q[free] - P[np.ix_(free, fixed)] @ v[fixed]
            v[free] = np.linalg.solve(P[np.ix_(free, free)], rhs)
        if (v >= margin - 1e-9).all():
            obj = 0.5 * v @ P @ v + q @ v
            if obj < best:
                best, arg = obj, v
    return arg


def test_gem_dual_on_a_hand_case_and_against_enumeration():
    from forgetlab.strategies.gem import gem_dual

    # diagonal by hand: min 1/2 (2 v1^2 + v2^2) - v1 + v2, v >= 0 -> v1 = 1/2, v2 = 0; with margin 0.5 -> (0.5, 0.5)
    P = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    q = torch.tensor([[-1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(gem_dual(P, q, 0.0), torch.tensor([[0.5, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(gem_dual(P, q, 0.5), torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    for t in (2, 3, 4, 12):  # 12 tasks: the Gauss-Seidel branch
        G = torch.randn(6, t, 20, generator=g, dtype=torch.float64)
        P = G @ G.transpose(1, 2) + 1e-3 * torch.eye(t, dtype=torch.float64)
        q = torch.randn(6, t, generator=g, dtype=torch.float64) * 5
        for margin in (0.0, 0.5):
            got = gem_dual(P, q, margin)
            for e in range(6):
                want = _qp_by_enumeration(P[e].numpy(), q[e].numpy(), margin)
                np.testing.assert_allclose(got[e].numpy(), want, atol=1e-6)


def test_gem_step_never_conflicts_with_a_finished_tasks_memory_gradient(monkeypatch):
    """After GEM's projection (margin 0), g' . g_k >= 0 for every finished task k's memory gradient, up to
    the 1e-3 ridge Mammoth adds to the dual's matrix (g' . g_k >= -1e-3 v_k)."""
    from forgetlab.strategies.rehearsal import reference_gradient as _reference_gradient

    checks = []

    class Check(Hook):
        def after_backward(self, ctx):
            gem = strategy[0]
            if not gem.per_task:
                return
            g = torch.cat([p.grad.flatten(1) for p in ctx.model.parameters()], 1)
            for idx in gem.per_task:
                ref = _reference_gradient(ctx, ctx.data.train.x[idx], ctx.data.train.y[idx])
                checks.append((g * torch.cat([r.flatten(1) for r in ref], 1)).sum(1))

    from forgetlab import strategies

    config = toy_config(
        "gem",
        **{
            "protocol.tasks": [[0, 1], [2, 3], [4, 5]],
            "strategy.memory": 30,
            "strategy.gem.margin": 0.0,
            "train.iters": 20,
        },
    )
    strategy = strategies.make(config)
    train_with(strategy, config, toy_data(n_classes=6), [Check()], monkeypatch)
    dots = torch.stack(checks)
    assert len(dots) == 2 * 20 + 20  # task 2: one finished task; task 3: two
    assert (dots >= -3e-3).all(), dots.min()


# --- LwF ---------------------------------------------------------------------------------------


def test_lwf_penalty_is_the_references_kl_without_t_squared():
    """A hand-made case: alpha * KL(softmax(old/T) || softmax(new/T)), batch mean, no T^2 (Avalanche's
    kl_div(batchmean); Mammoth's cross-entropy of softened outputs minus the old outputs' entropy)."""
    from forgetlab.strategies.lwf import distillation_kl

    old = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])  # [E=1, B=2, U=2]
    new = torch.tensor([[[0.0, 0.0], [1.0, -1.0]]])
    T = 2.0
    p1 = 1 / (1 + math.exp(-1.0))  # softmax([1, 0]) of example 1's old logits / T
    kl1 = p1 * math.log(p1 / 0.5) + (1 - p1) * math.log((1 - p1) / 0.5)
    q2 = 1 / (1 + math.exp(-1.0))  # example 2: old uniform, new softmax([0.5, -0.5])
    kl2 = 0.5 * math.log(0.5 / q2) + 0.5 * math.log(0.5 / (1 - q2))
    torch.testing.assert_close(distillation_kl(old, new, T), torch.tensor([(kl1 + kl2) / 2]))
    avalanche = F.kl_div(F.log_softmax(new[0] / T, -1), F.softmax(old[0] / T, -1), reduction="batchmean")
    torch.testing.assert_close(distillation_kl(old, new, T)[0], avalanche)
    soft_old, soft_new = F.softmax(old[0] / T, -1), F.softmax(new[0] / T, -1)
    mammoth = -(soft_old * soft_new.log()).sum(1).mean()  # modified_kl_div(smooth(old), smooth(new))
    entropy = -(soft_old * soft_old.log()).sum(1).mean()
    torch.testing.assert_close(distillation_kl(old, new, T)[0], mammoth - entropy)


def test_lwf_loss_distils_only_the_earlier_units_with_alpha():
    config = toy_config("lwf", **{"strategy.lwf_alpha": 0.7, "strategy.lwf_temp": 2.0})
    data = toy_data()
    ctx = toy_context(config, data)
    lwf = LwF(config)
    ctx.task, ctx.classes, ctx.seen = 1, (2, 3), (0, 1, 2, 3)
    lwf.before_task(ctx)
    with torch.no_grad():
        for p in ctx.model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    x = data.train.x[:5].expand(2, -1, -1)
    out = ctx.model(x)
    old = torch.func.functional_call(ctx.model, lwf.theta_old, (x,)).logits
    for e in range(2):
        want = 0.7 * F.kl_div(
            F.log_softmax(out.logits[e, :, :2] / 2, -1), F.softmax(old[e, :, :2] / 2, -1), reduction="batchmean"
        )
        torch.testing.assert_close(lwf.loss(ctx, out, x, None)[e], want)


def test_mammoth_lwf_weight_decay_is_the_gradient_of_wd_reg():
    """Mammoth's lwf adds wd_reg * sum(theta^2) (wd_reg 5e-4); the preset's SGD weight decay gives the same step."""
    config = presets.get("buzzega2020-seq-mnist-200", "lwf")
    theta = torch.randn(1, 4, 3)
    p = torch.nn.Parameter(theta.clone())
    lr = torch.tensor([config.train.lr])
    opt = SGD([p], lr, torch.tensor([0.0]), torch.tensor([config.train.weight_decay]))
    p.grad = torch.zeros_like(p)
    opt.step()
    q = theta.clone().requires_grad_()
    (0.0005 * (q**2).sum()).backward()
    torch.testing.assert_close(p.detach(), theta - config.train.lr * q.grad)


# --- SI ----------------------------------------------------------------------------------------


def test_si_under_the_mammoth_protocol_clips_gradient_values_to_one():
    """Mammoth's si: clip_grad_value_(1) before the SGD step, small_omega += lr * g_clipped^2."""
    config = presets.get("buzzega2020-seq-mnist-200", "si")
    assert config.strategy.params.clip == 1.0
    theta = torch.nn.Parameter(torch.tensor([[3.0, -0.5, 0.2]]))
    module = torch.nn.Module()
    module.theta = theta
    from types import SimpleNamespace

    ctx = SimpleNamespace(model=module)
    si = SI(config)
    si.before_task(ctx)
    lr = config.train.lr
    a = torch.tensor([[2.0, 4.0, 1.0]])
    theta.grad = None
    (0.5 * a * theta**2).sum().backward()  # g = a * theta = [6, -2, 0.2]
    si.after_backward(ctx)
    clipped = torch.tensor([[1.0, -1.0, 0.2]])
    torch.testing.assert_close(theta.grad, clipped)
    with torch.no_grad():
        theta -= lr * theta.grad
    si.after_step(ctx)
    torch.testing.assert_close(si.omega[0], lr * clipped**2)


# --- one definition of forgetting ---------------------------------------------------------------


def test_compare_and_summarize_print_the_same_forgetting_for_the_same_run(mnist_dir, tmp_path):
    """The same configuration (Mammoth's S-MNIST ER at buffer 200, shortened to 40 steps per task) trained
    by `forgetlab compare` and by `forgetlab sweep`: both print forgetting from metrics.average_forgetting."""
    from forgetlab.workflows.compare import compare
    from forgetlab.workflows.summary import summarize
    from forgetlab.workflows.sweep import sweep

    lines = []
    compare(
        "buzzega2020-seq-mnist-200",
        ["er"],
        seeds=[0, 1],
        out=tmp_path / "cmp",
        data_dir=str(mnist_dir),
        set={"train.iters": 40},
        progress=False,
        log=lines.append,
    )
    printed = lines[0].split("forgetting ")[1].split("  ")[0]  # "0.1234 ± 0.0123"
    base = presets.get("buzzega2020-seq-mnist-200", "er")
    sets = {k: cfg.get(base, k) for k in ("strategy.name", "strategy.memory", "strategy.replay_batch", "train.lr")}
    sweep(
        base,
        seeds=[0, 1],
        out=tmp_path / "sweep",
        data_dir=str(mnist_dir),
        progress=False,
        log=lambda s: None,
        set={**sets, "train.iters": 40},
    )
    text, _ = summarize(tmp_path / "sweep", metrics=["forgetting"], plots=False)
    assert printed in text, (printed, text)
    assert float(printed.split(" ± ")[0]) > 0.05  # a run that forgets: the number is not a trivial 0
