"""Each probe against a slow, obvious reference, on a small synthetic dataset (no MNIST needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forgetlab import api
from forgetlab import diagnostics as probes
from forgetlab.data import Dataset, Split
from forgetlab.engine.hooks import Hook
from forgetlab.engine.training import train


def synthetic(n_train=48, n_eval=12, seed=0, sparse=False) -> Dataset:
    """Ten Gaussian blobs in 784-D: learnable, so accuracies and sparsity move. ``sparse``: like MNIST, every
    value below 1 is set to one background value (about 20% of the inputs stay), so the probes take their
    sparse first-layer path."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(10, 784, generator=g)

    def split(n):
        y = torch.arange(10).repeat_interleave(n)
        x = centres[y] + 0.8 * torch.randn(len(y), 784, generator=g)
        return Split(torch.where(x < 1, torch.tensor(-0.42), x) if sparse else x, y)

    return Dataset("synthetic", split(n_train), split(n_eval), "test")


def small_config(**set_):
    return api.make_config(
        "mlp-sequential",
        seeds=[0, 1],
        epochs=2,
        batch_size=16,
        set={"model.hidden": "16,8", "protocol.tasks": "[[0,1],[2,3],[4,5]]", **set_},
    )


PC = probes.ProbeConfig(per_class=12, first=5, every=3, latent_per_class=6)


class Reference(Hook):
    """Saves full copies of the weights around every step and plain per-member outputs at probe points."""

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.before, self.after, self.points, self.hidden_end = [], [], [], None

    def after_backward(self, ctx):
        self.before.append([p.detach().clone() for p in ctx.model.parameters()])

    def after_step(self, ctx):
        self.after.append([p.detach().clone() for p in ctx.model.parameters()])
        if PC.due(ctx.task_step):
            self._record(ctx)

    def before_task(self, ctx):
        self._record(ctx)

    @torch.no_grad()
    def _record(self, ctx):
        ctx.model.eval()
        E = ctx.n_members
        out = ctx.model(self.x.expand(E, *self.x.shape))  # the per-member [E, N, 784] path
        ctx.model.train()
        self.points.append((ctx.seen, out.logits.softmax(-1).clone(), [h.clone() for h in out.hidden]))


@pytest.fixture(scope="module", params=["dense", "sparse"])
def recorded(request):
    data = synthetic(sparse=request.param == "sparse")
    assert (probes.recorders.SparseInput.background_of(data.eval.x) is not None) == (request.param == "sparse")
    config = small_config()
    rec = probes.Probes(PC)
    idx = probes.stratified(data.eval.y, PC.per_class, PC.seed)
    ref = Reference(data.eval.x[idx], data.eval.y[idx])
    res = train(config, data, [ref, *rec.hooks])
    pd = rec.data([{"seed": m.seed} for m in res.members], config.tasks)
    return data, config, res, pd, ref


def test_relative_updates_match_saved_weight_copies(recorded):
    _, _, res, pd, ref = recorded
    ratio = pd["update_ratio"]
    assert ratio.shape == (len(ref.after), 2, 6)
    expect = np.zeros_like(ratio)
    for s, (b, a) in enumerate(zip(ref.before, ref.after, strict=True)):
        for j, (pb, pa) in enumerate(zip(b, a, strict=True)):
            for e in range(2):
                wb, wa = pb[e].double().numpy().ravel(), pa[e].double().numpy().ravel()
                expect[s, e, j] = np.sqrt(((wa - wb) ** 2).sum()) / np.sqrt((wb**2).sum())
    np.testing.assert_allclose(ratio, expect, rtol=1e-4, atol=1e-9)
    assert pd.meta["update_names"] == [
        "fcs.0.weight",
        "fcs.0.bias",
        "fcs.1.weight",
        "fcs.1.bias",
        "head.weight",
        "head.bias",
    ]
    assert (ratio > 0).all()


def test_probability_and_forgetting_curves_match_a_plain_forward_pass(recorded):
    _, _, _, pd, ref = recorded
    y = ref.y.numpy()
    assert len(pd["point_task"]) == len(ref.points)
    acc = pd.class_accuracy()
    for p, (seen, probs, _) in enumerate(ref.points):
        probs = probs.double().numpy()
        for e in range(2):
            for k in range(10):
                rows = [i for i in range(len(y)) if y[i] == k]
                if k in seen:
                    np.testing.assert_allclose(pd["prob_curve"][p, e, k], probs[e, rows].mean(0), rtol=1e-4, atol=1e-6)
                    expect_acc = np.mean([probs[e, i].argmax() == k for i in rows])
                    assert acc[p, e, k] == pytest.approx(expect_acc)
                else:
                    assert np.isnan(acc[p, e, k])
    # the task-end matrix covers every class, seen or not, and each row is a distribution
    end = pd["prob_task_end"]
    assert end.shape == (3, 2, 10, 10)
    np.testing.assert_allclose(end.sum(-1), 1.0, rtol=1e-5)
    # task accuracy = class accuracies pooled over the task's classes
    ta = pd.task_accuracy()
    np.testing.assert_allclose(ta[-1, :, 0], np.nanmean(acc[-1][:, [0, 1]], 1))


def test_sparsity_matches_counting_zeros(recorded):
    data, config, res, pd, ref = recorded
    # the last epoch end is the state after the last step; its reference forward is the last probe point
    # only if that step was a probe point, so recompute from the final model instead
    idx = probes.stratified(data.eval.y, PC.per_class, PC.seed)
    x, y = data.eval.x[idx], data.eval.y[idx]
    seen = torch.isin(y, torch.tensor([0, 1, 2, 3, 4, 5]))
    res.model.eval()
    with torch.no_grad():
        hidden = res.model(x[seen]).hidden
    for layer, h in enumerate(hidden, 1):
        h = h.numpy()
        life = pd[f"lifetime_sparsity_h{layer}"][-1]  # [E, units]
        for e in range(2):
            for u in range(h.shape[-1]):
                zeros = sum(1 for v in h[e, :, u] if v == 0.0)
                assert life[e, u] == pytest.approx(zeros / h.shape[1])
            assert pd[f"dead_units_h{layer}"][-1, e] == sum(1 for u in range(h.shape[-1]) if (h[e, :, u] == 0).all())
    assert pd["lifetime_sparsity_h1"].shape == (config.train.epochs * 3, 2, 16)
    # population sparsity of the probe set's layer 1 is the mean of the lifetime sparsities
    assert pd["lifetime_sparsity_h1"][-1].mean() == pytest.approx(float((hidden[0] == 0).float().mean()), abs=1e-6)


def test_latent_activations_are_the_hidden_layers_at_task_end(recorded):
    data, _, res, pd, _ = recorded
    idx = probes.stratified(data.eval.y, PC.latent_per_class, PC.seed + 1)
    res.model.eval()
    with torch.no_grad():
        hidden = res.model(data.eval.x[idx]).hidden
    assert pd["latent_h2"].shape == (3, 2, 60, 8)
    np.testing.assert_allclose(pd["latent_h2"][-1].astype(np.float32), hidden[1].numpy(), rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(pd["latent_y"], data.eval.y[idx].numpy())


def test_probes_do_not_change_training_numbers():
    data = synthetic()
    config = small_config(**{"model.dropout": 0.3})
    plain = train(config, data)
    probed = train(config, data, probes.Probes(PC).hooks)
    for a, b in zip(plain.members, probed.members, strict=True):
        assert a.acc_matrix == b.acc_matrix
        assert [t.val_loss for t in a.tasks] == [t.val_loss for t in b.tasks]
        assert [t.train_loss for t in a.tasks] == [t.train_loss for t in b.tasks]


def test_schedule_and_saved_files_round_trip(recorded, tmp_path):
    _, config, _, pd, _ = recorded
    steps = pd["point_task_step"][pd["point_task"] == 1]
    assert steps[0] == 0 and list(steps[1:6]) == [1, 2, 3, 4, 5]
    assert all(s % PC.every == 0 for s in steps[6:])
    pd.save(tmp_path)
    back = probes.load(tmp_path)
    assert back.meta["update_names"] == pd.meta["update_names"]
    for k in pd.arrays:
        np.testing.assert_array_equal(back[k], pd[k])
    one = back.select([1])
    assert one["update_ratio"].shape[1] == 1 and one.meta["members"] == [pd.meta["members"][1]]


def test_bad_probe_settings_are_one_line_errors(tmp_path):
    from forgetlab.errors import ConfigError, ForgetlabError

    with pytest.raises(ConfigError, match="probes.every=0"):
        probes.ProbeConfig(every=0).validate()
    with pytest.raises(ForgetlabError, match="no probes.json"):
        probes.load(tmp_path)


def test_sparse_first_layer_equals_the_models_own_eval_forward():
    """MNIST-like inputs (one background value) take a dense + CSR first-layer product: same outputs."""
    from forgetlab.diagnostics.recorders import SparseInput
    from forgetlab.engine.models import build

    x = synthetic(sparse=True).eval.x
    c = SparseInput.background_of(x)
    assert c == pytest.approx(-0.42)
    sp = SparseInput.of(x, c)
    assert len(sp.dense_cols) > 0 and len(sp.sparse_cols) > 0  # both halves of the product are exercised
    config = small_config(**{"model.dropout": 0.5})
    model = build(config.model, [0, 1], torch.tensor([0.5, 0.5]), "cpu")
    assert SparseInput.fits(model)
    model.eval()
    with torch.no_grad():
        ref, out = model(x), sp.forward(model)
    np.testing.assert_allclose(out.logits.numpy(), ref.logits.numpy(), rtol=1e-5, atol=1e-5)
    for h, r in zip(out.hidden, ref.hidden, strict=True):
        np.testing.assert_allclose(h.numpy(), r.numpy(), rtol=1e-5, atol=1e-5)
    # dense inputs, and models whose eval forward is not the plain stack, keep the model's own forward
    assert SparseInput.background_of(synthetic().eval.x) is None
    assert not SparseInput.fits(build(small_config(**{"model.norm": "batch"}).model, [0], torch.zeros(1), "cpu"))
