"""Strategies: maths against slow, obvious references, and a smoke run of every registered strategy."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from forgetlab import config as cfg
from forgetlab.config import Member
from forgetlab.data import Dataset, Split, scenarios
from forgetlab.engine.hooks import Context
from forgetlab.engine.models import build
from forgetlab.engine.optim import SGD
from forgetlab.engine.training import train
from forgetlab.errors import ConfigError
from forgetlab.strategies import STRATEGIES
from forgetlab.strategies import validate as validate_strategy
from forgetlab.strategies.agem import agem_project
from forgetlab.strategies.base import Memory
from forgetlab.strategies.ewc import fisher_diag
from forgetlab.strategies.icarl import herding
from forgetlab.strategies.si import SI


def toy_data(n_classes=4, per_class=60, seed=0) -> Dataset:
    """Gaussian blobs in 784 dimensions, one prototype per class: resident tensors like MNIST's."""
    g = torch.Generator().manual_seed(seed)
    protos = 0.2 * torch.randn(n_classes, 784, generator=g)  # close enough for naive training to forget

    def split(n):
        y = torch.arange(n_classes).repeat_interleave(n)
        return Split(protos[y] + torch.randn(len(y), 784, generator=g), y)

    return Dataset("toy", split(per_class), split(per_class // 2), "test", n_classes)


def toy_config(strategy="naive", **settings) -> cfg.RunConfig:
    base = {
        "name": "toy",
        "seeds": [0, 1],
        "model": {"hidden": [32, 32]},
        "protocol": {"tasks": [[0, 1], [2, 3]]},
        "train": {"iters": 100, "batch_size": 16, "lr": 0.1, "momentum": 0.0},
        "strategy": {"name": strategy},
    }
    if hasattr(STRATEGIES[strategy].Settings, "memory"):  # replay strategies
        base["strategy"][strategy] = {"memory": 40, "replay_batch": 16}
    config = cfg.from_dict(base, cfg.RunConfig())
    for k, v in settings.items():
        config = cfg.override(config, k, v)
    config = cfg.validate(config)
    validate_strategy(config)
    return config


def toy_context(config, data) -> Context:
    members = cfg.members(config)
    sc = scenarios.build(config, data.n_classes, "cpu")
    model = build(config.model, [m.seed for m in members], torch.zeros(len(members)), "cpu", sc.n_units)
    hp = {k: torch.tensor([m.hparams[k] for m in members]) for k in cfg.MEMBER_KEYS}
    opt = SGD(model.parameters(), hp["train.lr"], hp["train.momentum"], hp["train.weight_decay"])
    return Context(config, members, data, model, opt, hp, scenario=sc)


# --- EWC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario, method", [("class", "auto"), ("task", "auto"), ("class", "vmap"), ("domain", "vmap")]
)
def test_ewc_fisher_matches_a_per_example_loop(scenario, method):
    data = toy_data()
    ctx = toy_context(toy_config(**{"protocol.scenario": scenario}), data)
    idx = torch.arange(0, len(data.train), 7)
    fast = fisher_diag(ctx, idx, chunk=5, method=method)
    ps = list(ctx.model.parameters())
    slow = [torch.zeros_like(p) for p in ps]
    ctx.model.eval()
    for i in idx:
        x, y = data.train.x[i : i + 1], data.train.y[i : i + 1]
        for e in range(ctx.n_members):  # one member, one example at a time
            logits = ctx.scenario.logits(ctx.model(x).logits[e], y)
            loss = F.cross_entropy(logits, ctx.scenario.targets(y))
            grads = torch.autograd.grad(loss, ps)
            for s, g in zip(slow, grads, strict=True):
                s[e] += g[e] ** 2
    for f, s in zip(fast, slow, strict=True):
        torch.testing.assert_close(f, s / len(idx), rtol=1e-4, atol=1e-7)


# --- SI ----------------------------------------------------------------------------------------


def test_si_path_integral_on_a_quadratic():
    """Gradient descent on L = 1/2 a theta^2: omega (sum of -g * dtheta) is the loss decrease, to O(lr a)."""
    a = torch.tensor([[1.0, 2.0, 4.0], [0.5, 1.0, 3.0]])  # [E=2, 3]
    theta = torch.nn.Parameter(torch.tensor([[1.0, -2.0, 0.5], [3.0, 1.0, -1.0]]))
    module = torch.nn.Module()
    module.theta = theta
    ctx = SimpleNamespace(model=module)
    si = SI(toy_config("si"))
    si.before_task(ctx)
    start, lr = theta.detach().clone(), 0.002
    for _ in range(500):
        theta.grad = None
        (0.5 * a * theta**2).sum().backward()
        si.after_backward(ctx)
        with torch.no_grad():
            theta -= lr * theta.grad
        si.after_step(ctx)
    end = theta.detach()
    decrease = 0.5 * a * (start**2 - end**2)
    torch.testing.assert_close(si.omega[0], decrease, rtol=lr * a.max().item(), atol=1e-6)
    si.after_task(ctx)
    torch.testing.assert_close(si.importance[0], decrease / ((end - start) ** 2 + 0.1), rtol=1e-2, atol=1e-6)


# --- A-GEM -------------------------------------------------------------------------------------


def test_agem_projection_never_increases_the_reference_loss_to_first_order():
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(64, 5, 3, generator=g), torch.randn(64, 1, 3, generator=g)]  # 64 members
    refs = [torch.randn(64, 5, 3, generator=g), torch.randn(64, 1, 3, generator=g)]
    proj = agem_project(grads, refs)

    def dot(u, v):
        return sum((a * b).flatten(1).sum(1) for a, b in zip(u, v, strict=True))

    before, after = dot(grads, refs), dot(proj, refs)
    assert (before < 0).any() and (before > 0).any()
    assert (after >= -1e-5).all()  # d(ref loss) = -lr * g_proj . g_ref <= 0
    conflict = before < 0
    torch.testing.assert_close(after[conflict], torch.zeros(int(conflict.sum())), atol=1e-5, rtol=0)
    for p, q in zip(proj, grads, strict=True):  # no conflict: gradient untouched
        torch.testing.assert_close(p[~conflict], q[~conflict])


# --- reservoir sampling ------------------------------------------------------------------------


def _memory(n_members, size):
    ctx = SimpleNamespace(
        n_members=n_members,
        members=[Member(s, {}) for s in range(n_members)],
        data=SimpleNamespace(train=SimpleNamespace(x=torch.zeros(1))),
    )
    return Memory(ctx, size)


def test_reservoir_is_uniform_over_the_stream():
    E, size, n, B = 1000, 10, 50, 5  # 1000 independent members = 1000 trials
    mem = _memory(E, size)
    for s in range(0, n, B):
        mem.add_reservoir(torch.arange(s, s + B).expand(E, B))
    assert mem.idx.shape == (E, size)
    assert all(len(set(row)) == size for row in mem.idx.tolist())
    counts = torch.bincount(mem.idx.flatten(), minlength=n).double()
    expected = E * size / n
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 100  # 49 degrees of freedom: P(chi2 > 100) ~ 2e-5


def test_reservoir_batch_equals_one_by_one():
    """Offering a batch at once (collisions: the later example wins) equals offering it example by example."""
    a, b = _memory(8, 6), _memory(8, 6)
    for s in range(0, 40, 4):
        a.add_reservoir(torch.arange(s, s + 4).expand(8, 4))
        for i in range(s, s + 4):
            b.add_reservoir(torch.full((8, 1), i))
    torch.testing.assert_close(a.idx, b.idx)


# --- iCaRL herding -----------------------------------------------------------------------------


def test_herding_order_matches_a_slow_reference():
    g = torch.Generator().manual_seed(3)
    feats = F.normalize(torch.randn(3, 40, 5, generator=g), dim=-1)
    fast = herding(feats, 12)
    for e in range(3):
        f = feats[e].double().numpy()
        mu, chosen, total = f.mean(0), [], np.zeros(5)
        for k in range(1, 13):
            best, best_d = None, np.inf
            for i in range(len(f)):
                if i in chosen:
                    continue
                d = np.sum((mu - (total + f[i]) / k) ** 2)
                if d < best_d:
                    best, best_d = i, d
            chosen.append(best)
            total += f[best]
        assert fast[e].tolist() == chosen


# --- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"strategy.name": "ewcc"}, "unknown strategy 'ewcc'"),
        ({"strategy.name": "er", "strategy.er.memory": 0}, "set strategy.er.memory"),
        ({"strategy.name": "er", "strategy.er.replay_batch": -1}, "strategy.er.replay_batch=-1 must be >= 0"),
        ({"strategy.name": "ewc", "strategy.ewc.lam": -1}, "strategy.ewc.lam=-1 must be >= 0"),
        ({"strategy.name": "der", "strategy.memory_per_class": 10}, "reservoir of logits"),
        ({"strategy.name": "kwta"}, "needs model.kwta"),
        ({"strategy.name": "icarl", "strategy.memory": 20, "protocol.scenario": "task"}, "class-incremental only"),
        ({"protocol.scenario": "tasks"}, "protocol.scenario='tasks' is not valid"),
        (
            {"strategy.name": "icarl", "strategy.icarl.memory": 20, "strategy.icarl.bce": "max"},
            "icarl.bce='max' is not valid",
        ),
        ({"strategy.name": "si", "strategy.si.clip": -1}, "si.clip=-1"),
        ({"strategy.name": "gem", "strategy.gem.memory": 20, "strategy.gem.margin": -0.5}, "gem.margin=-0.5"),
        ({"model.kwta": "5"}, "one k per hidden layer"),
    ],
)
def test_bad_strategy_settings_are_one_line_errors(settings, message):
    config = cfg.from_dict({"model": {"hidden": [32, 32]}}, cfg.RunConfig())
    with pytest.raises(ConfigError, match=message) as err:
        for k, v in settings.items():
            config = cfg.override(config, k, v)
        validate_strategy(cfg.validate(config))
    assert "\n" not in str(err.value)


# --- every registered strategy, on a two-task toy ----------------------------------------------


@pytest.fixture(scope="module")
def toy_runs():
    data = toy_data()
    runs = {}
    for name in STRATEGIES:
        settings = {"model.kwta": "8,8"} if name == "kwta" else {}
        res = train(toy_config(name, **settings), data)
        runs[name] = np.array([m.acc_matrix for m in res.members])  # [E, T, T]
    return runs


def test_every_strategy_learns_each_task(toy_runs):
    for name, R in toy_runs.items():
        assert R.shape == (2, 2, 2), name
        assert np.isfinite(R).all(), name
        assert (R[:, 1, 1] > 0.8).all(), (name, R[:, 1, 1])


def test_replay_beats_naive_which_forgets(toy_runs):
    naive = toy_runs["naive"][:, -1].mean()
    assert toy_runs["naive"][:, 1, 0].max() < 0.2  # the study's failure, on the toy
    for name in ("joint", "cumulative", "er", "der", "derpp", "icarl"):
        assert toy_runs[name][:, -1].mean() > naive + 0.2, (name, toy_runs[name][:, -1].mean(), naive)
    assert toy_runs["joint"][:, 0].mean() > 0.9  # joint sees every task from the start


# --- scenarios and benchmarks ------------------------------------------------------------------


def test_scenario_tables():
    task = scenarios.build(toy_config(**{"protocol.scenario": "task"}), 4, "cpu")
    logits = torch.zeros(1, 2, 4)
    masked = task.logits(logits, torch.tensor([[0, 3]]))
    assert torch.isinf(masked[0, 0, 2:]).all() and (masked[0, 0, :2] == 0).all()
    assert torch.isinf(masked[0, 1, :2]).all() and (masked[0, 1, 2:] == 0).all()
    domain = scenarios.build(toy_config(**{"protocol.scenario": "domain"}), 4, "cpu")
    assert domain.n_units == 2 and domain.targets(torch.tensor([0, 1, 2, 3])).tolist() == [0, 1, 0, 1]
    assert scenarios.build(toy_config(), 4, "cpu").identity


def test_permuted_mnist_tasks():
    perms = scenarios.permutations(3, seed=0)
    assert torch.equal(perms[0], torch.arange(784)) and not torch.equal(perms[1], perms[2])
    assert all(torch.equal(a, b) for a, b in zip(perms, scenarios.permutations(3, seed=0), strict=True))
    data = toy_data(n_classes=10, per_class=3)
    big = scenarios.permuted(data, 3, seed=0)
    assert big.n_classes == 30 and len(big.train) == 3 * len(data.train)
    n = len(data.train)
    torch.testing.assert_close(big.train.x[n : 2 * n], data.train.x[:, perms[1]])
    assert big.train.y[2 * n :].tolist() == (data.train.y + 20).tolist()
    config = cfg.override(toy_config(), "protocol.permuted", 3)
    assert config.tasks[2] == tuple(range(20, 30))


def test_domain_and_task_incremental_training_runs():
    data = toy_data()
    for scenario in ("task", "domain"):
        R = np.array([m.acc_matrix for m in train(toy_config("er", **{"protocol.scenario": scenario}), data).members])
        assert (R[:, -1] > 0.6).all(), (scenario, R[:, -1])


def test_compare_rejects_unknown_strategies_in_one_line(capsys):
    from forgetlab.cli import main

    assert main(["compare", "mlp-sequential", "--strategies", "naive,bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown strategy 'bogus'" in err


@pytest.mark.parametrize(
    "scenario, strategy", [("class", "naive"), ("task", "naive"), ("domain", "naive"), ("class", "icarl")]
)
def test_compare_task_curves_come_from_the_forgetting_curve_probe(scenario, strategy):
    """compare's per-task curves (issue 3's ForgettingCurve probe) against a slow reference: the same probe
    examples of each earlier task, predicted by the strategy's own classifier (iCaRL: nearest mean of
    exemplars) and scored as the scenario scores them, one member and one example at a time after each of
    the first steps of every task."""
    from forgetlab.diagnostics import stratified
    from forgetlab.engine.hooks import Hook
    from forgetlab.workflows.compare import gap_probe, task_curves

    data, steps = toy_data(n_classes=6), 6
    config = toy_config(strategy, **{"protocol.scenario": scenario, "protocol.tasks": [[0, 1], [2, 3], [4, 5]]})
    probe_idx = stratified(data.eval.y, 10, 0, data.n_classes)

    class Slow(Hook):
        def __init__(self):
            self.rows = {1: [], 2: []}

        def after_step(self, ctx):
            if ctx.task == 0 or ctx.task_step > steps:
                return
            ctx.model.eval()
            with torch.no_grad():
                row = []
                for e in range(ctx.n_members):
                    per_task = []
                    for task in ctx.config.tasks[: ctx.task]:
                        idx = [int(i) for i in probe_idx if int(data.eval.y[i]) in task]
                        hits = 0
                        for i in idx:
                            x, y = data.eval.x[i : i + 1], data.eval.y[i : i + 1]
                            out = ctx.model(x)
                            scores = ctx.predict(out, x)
                            logits = ctx.scenario.logits(out.logits if scores is None else scores, y)[e]
                            hits += int(logits.argmax(-1) == ctx.scenario.targets(y))
                        per_task.append(hits / len(idx))
                    row.append(per_task)
            ctx.model.train()
            self.rows[ctx.task].append(row)

    probe, slow = gap_probe(steps, per_class=10), Slow()
    res = train(config, data, [probe, slow])
    curves = task_curves(probe.arrays(), config.tasks, steps)
    assert curves[0] is None and curves[2].shape == (steps, len(res.members), 3)
    for t in (1, 2):
        np.testing.assert_allclose(curves[t][:, :, :t], np.array(slow.rows[t]), atol=1e-6)
        assert np.isnan(curves[t][:, :, t:]).all()


def test_kwta_keeps_at_most_k_active_units_and_boosting_tracks_duty_cycles():
    config = toy_config("kwta", **{"model.kwta": "5,3", "model.kwta_boost": 1.0})
    model = build(config.model, [0, 1], torch.zeros(2), "cpu", 4)
    x = toy_data().train.x[:50]
    out = model(x.expand(2, -1, -1))  # training mode: duty cycles update
    assert ((out.hidden[0] != 0).sum(-1) <= 5).all() and ((out.hidden[1] != 0).sum(-1) <= 3).all()
    duty = model.kwta[0].duty
    assert duty.shape == (2, 1, 32) and torch.allclose(duty.sum(-1), torch.full((2, 1), 5.0))
