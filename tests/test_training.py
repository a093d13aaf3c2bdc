"""The training loop on a tiny synthetic dataset: learning, bookkeeping, ensembles, determinism."""

import pytest
import torch

from forgetlab import Hook
from forgetlab.api import make_config
from forgetlab.engine.evaluation import class_stats
from forgetlab.engine.training import train

TASKS = "[[0,1],[2,3],[4,5]]"


def _config(seeds=(0,), **set_):
    values = {"protocol.tasks": TASKS, "train.epochs": 3, "train.batch_size": 16, "train.lr": 0.1, **set_}
    return make_config("mlp-sequential", seeds=list(seeds), set={k: str(v) for k, v in values.items()})


def test_sequential_learns_each_task_and_forgets_the_old_ones(toy):
    res = train(_config(), toy)
    m = res.members[0]
    R = torch.tensor(m.acc_matrix)
    assert R.shape == (3, 3)
    assert (R.diagonal() > 0.95).all()  # each task is learned
    assert R[2, 0] < 0.5 and R[2, 1] < 0.5  # and the old ones are forgotten (one shared head)
    assert [t.classes for t in m.tasks] == [[0, 1], [2, 3], [4, 5]]
    assert all(len(t.train_loss) == 3 and len(t.sparsity[0]) == 2 for t in m.tasks)
    # validation covers the classes seen so far: after task 3 it is the mean over tasks 1-3
    counts = torch.tensor([40.0, 40.0, 40.0])
    assert m.tasks[2].val_acc[-1] == pytest.approx(float((R[2] * counts).sum() / counts.sum()), abs=1e-6)


def test_epoch_metrics_equal_a_plain_recount(toy):
    class Capture(Hook):
        def after_task(self, ctx):
            self.model = ctx.model

    cap = Capture()
    res = train(_config(seeds=(0, 1), **{"protocol.kind": "concurrent", "train.epochs": 1}), toy, [cap])
    net = cap.model.eval()
    seen = toy.eval.y < 6  # concurrent training on the classes of TASKS: 0-5
    x, y = toy.eval.x[seen], toy.eval.y[seen]
    with torch.no_grad():
        out = net(x)
    for e, m in enumerate(res.members):
        acc = (out.logits[e].argmax(-1) == y).float().mean()
        loss = torch.nn.functional.cross_entropy(out.logits[e], y)
        zeros = [(h[e] == 0).float().mean().item() for h in out.hidden]
        all_zero = sum((h[e] == 0).sum().item() for h in out.hidden) / (len(y) * (120 + 84))
        t = m.tasks[0]
        assert t.val_acc[-1] == pytest.approx(acc.item(), abs=1e-6)
        assert t.val_loss[-1] == pytest.approx(loss.item(), rel=1e-5)
        assert t.sparsity[-1] == pytest.approx(zeros, abs=1e-6)
        assert t.sparsity_all[-1] == pytest.approx(all_zero, abs=1e-6)


@pytest.mark.parametrize(
    "set_",
    [
        {},
        {"model.norm": "batch"},
        {"model.norm": "layer"},
        {"model.dropout": 0.3},
        {"model.arch": "lenet5"},
        {"train.optimizer": "adam", "train.lr": 0.001},
    ],
)
def test_each_member_gets_the_numbers_it_gets_alone(toy, set_):
    together = train(_config(seeds=(5, 6, 7), **set_), toy)
    alone = train(_config(seeds=(6,), **set_), toy)
    a, b = alone.members[0], together.members[1]
    for ta, tb in zip(a.tasks, b.tasks, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "sparsity_all"):
            assert getattr(ta, key) == pytest.approx(getattr(tb, key), rel=1e-4, abs=1e-5), key
    for ra, rb in zip(a.acc_matrix, b.acc_matrix, strict=True):
        assert ra == pytest.approx(rb, abs=1e-5)


def test_grid_members_equal_their_single_runs(toy):
    grid = make_config(
        "mlp-sequential",
        seeds=[0],
        set={"protocol.tasks": TASKS, "train.epochs": "1", "train.batch_size": "16"},
        grid={"train.l1": "0,0.5", "train.lr": "0.01,0.05"},
    )
    res = train(grid, toy)
    assert len(res.members) == 4
    single = train(_config(**{"train.l1": 0.5, "train.lr": 0.05, "train.epochs": 1}), toy)
    m = next(m for m in res.members if m.hparams["train.l1"] == 0.5 and m.hparams["train.lr"] == 0.05)
    assert m.tasks[-1].train_loss == pytest.approx(single.members[0].tasks[-1].train_loss, rel=1e-4)


def test_same_seed_same_numbers_run_after_run(toy):
    a = train(_config(seeds=(3,), **{"model.dropout": 0.2}), toy)
    b = train(_config(seeds=(3,), **{"model.dropout": 0.2}), toy)
    c = train(_config(seeds=(4,), **{"model.dropout": 0.2}), toy)
    assert a.to_json()["members"] == b.to_json()["members"]
    assert a.to_json()["members"] != c.to_json()["members"]


def test_l1_penalty_raises_sparsity_and_is_in_the_training_loss(toy):
    cfg = make_config(
        "mlp-sequential",
        seeds=[0],
        set={"protocol.kind": "concurrent", "train.epochs": "3", "train.batch_size": "16"},
        grid={"train.l1": "0,1"},
    )
    res = train(cfg, toy)
    off, on = (m.tasks[0] for m in res.members)
    assert on.sparsity_all[-1] > off.sparsity_all[-1] + 0.2
    assert on.train_loss[-1] > off.train_loss[-1]  # the penalty term is part of the objective


def test_interrupt_keeps_finished_epochs(toy):
    class StopAt(Hook):
        def after_step(self, ctx):
            if ctx.task == 1 and ctx.task_step == 3:
                raise KeyboardInterrupt

    res = train(_config(), toy, [StopAt()])
    assert res.status == "interrupted"
    m = res.members[0]
    assert len(m.tasks) == 1 and len(m.tasks[0].val_acc) == 3 and len(m.acc_matrix) == 1


def test_class_stats_counts_zeros_by_hand(toy):
    from forgetlab.config import ModelConfig
    from forgetlab.engine.models import build

    net = build(ModelConfig(), [0, 1], torch.zeros(2), "cpu")
    stats = class_stats(net, toy.eval, chunk=33)  # chunking must not change sums
    with torch.no_grad():
        out = net(toy.eval.x)
    for c in range(10):
        mask = toy.eval.y == c
        assert stats.zeros[1, 0, c] == (out.hidden[0][1][mask] == 0).sum()
        assert stats.correct[0, c] == (out.logits[0][mask].argmax(-1) == c).sum()


def test_progress_total_follows_a_widened_task(toy):
    calls = []
    train(_config(**{"strategy.name": "cumulative"}), toy, progress=lambda d, t, s: calls.append((d, t)))
    done, total = calls[-1]
    # cumulative training: task k trains on the classes of tasks 1..k (80, 160, 240 examples, batch 16)
    assert done == total == 3 * (5 + 10 + 15)
    assert all(d <= t for d, t in calls)
