"""The explanatory probes against independent, slow references: scikit-learn's Ridge and kNN, the HSIC form
of CKA, per-member autograd one member at a time, and counting by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from forgetlab import diagnostics as probes
from forgetlab.data import Dataset, Split
from forgetlab.data import sources as data_sources
from forgetlab.diagnostics.measures import knn_predict, linear_cka, ridge_fit
from forgetlab.engine.hooks import Hook
from forgetlab.engine.training import train
from test_probes import small_config

PC = probes.ProbeConfig(
    per_class=12,
    first=5,
    every=3,
    latent_per_class=6,
    fit_per_class=20,
    knn=5,
    interference_batches=4,
    curves=True,
    updates=False,
    sparsity=False,
    latent=False,
)


def test_ridge_fit_equals_scikit_learn():
    from sklearn.linear_model import Ridge

    g = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(3, 60, 12, generator=g, dtype=torch.float64))
    x[:, :, 4] = 0  # a dead unit: only the penalty keeps the system solvable
    y = F.one_hot(torch.randint(0, 4, (60,), generator=g), 4)
    w, b = ridge_fit(x, y, alpha=0.7)
    for e in range(3):
        ref = Ridge(alpha=0.7).fit(x[e].numpy(), y.numpy())
        np.testing.assert_allclose(w[e].numpy(), ref.coef_.T, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b[e, 0].numpy(), ref.intercept_, rtol=1e-9, atol=1e-12)


def test_knn_equals_scikit_learn():
    from sklearn.neighbors import KNeighborsClassifier

    g = torch.Generator().manual_seed(1)
    train_x, test_x = torch.randn(2, 50, 6, generator=g), torch.randn(2, 30, 6, generator=g)
    labels = torch.randint(0, 3, (50,), generator=g)
    pred = knn_predict(train_x, labels, test_x, k=4, n_labels=3, chunk=7)  # several chunks
    for e in range(2):
        ref = KNeighborsClassifier(n_neighbors=4, algorithm="brute").fit(train_x[e].numpy(), labels.numpy())
        np.testing.assert_array_equal(pred[e].numpy(), ref.predict(test_x[e].numpy()))


def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. 2019, eq. 3 with linear kernels: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    kx, ky = x @ x.T, y @ y.T
    hsic = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731 (the (n-1)^-2 factors cancel)
    return hsic(kx, ky) / np.sqrt(hsic(kx, kx) * hsic(ky, ky))


def test_linear_cka_equals_the_hsic_formula():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 40, 7, generator=g, dtype=torch.float64)
    y = torch.relu(
        x @ torch.randn(7, 5, generator=g, dtype=torch.float64)
        + torch.randn(2, 40, 5, generator=g, dtype=torch.float64)
    )
    cka = linear_cka(x, y)
    for e in range(2):
        assert float(cka[e]) == pytest.approx(hsic_cka(x[e].numpy(), y[e].numpy()), rel=1e-10)
    q = torch.linalg.qr(torch.randn(7, 7, generator=g, dtype=torch.float64))[0]
    np.testing.assert_allclose(linear_cka(x, 3 * x @ q).numpy(), 1.0, rtol=1e-10)  # rotation and scale


def member_forward(weights, e, x):
    """Member e's plain MLP: hidden activations and logits, one layer at a time."""
    n = len(weights) // 2
    hidden, h = [], x
    for i in range(n):
        h = h @ weights[2 * i][e] + weights[2 * i + 1][e, 0]
        if i < n - 1:
            h = torch.relu(h)
            hidden.append(h)
    return hidden, h


class Reference(Hook):
    """Full copies of the weights around the first batches of each task and at every task end."""

    def __init__(self):
        self.steps, self.ends, self.points = [], [], []

    def before_task(self, ctx):
        self.points.append((ctx.task, [p.detach().clone() for p in ctx.model.parameters()]))

    def after_backward(self, ctx):
        if ctx.task >= 1 and ctx.task_step < PC.interference_batches:
            self._before = ([p.detach().clone() for p in ctx.model.parameters()], ctx.batch_idx.clone())

    def after_step(self, ctx):
        if ctx.task >= 1 and ctx.task_step <= PC.interference_batches:
            self.steps.append((ctx.task, *self._before, [p.detach().clone() for p in ctx.model.parameters()]))
        if PC.due(ctx.task_step):
            self.points.append((ctx.task, [p.detach().clone() for p in ctx.model.parameters()]))

    def after_task(self, ctx):
        self.ends.append([p.detach().clone() for p in ctx.model.parameters()])


def overlapping(spread: float = 0.15, seed: int = 0) -> Dataset:
    """Ten close Gaussian blobs in 784-D: hard enough that probes err, and the network forgets a little."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(10, 784, generator=g) * spread

    def split(n):
        y = torch.arange(10).repeat_interleave(n)
        return Split(centres[y] + torch.randn(len(y), 784, generator=g), y)

    return Dataset("synthetic", split(48), split(12), "test")


@pytest.fixture(scope="module")
def recorded():
    data = overlapping()
    config = small_config(**{"train.lr": 0.1})
    rec = probes.Probes(PC)
    ref = Reference()
    res = train(config, data, [ref, *rec.hooks])
    pd = rec.data([{"seed": m.seed} for m in res.members], config.tasks)
    score = probes.stratified(data.eval.y, PC.per_class, PC.seed)
    fit = probes.stratified(data.train.y, PC.fit_per_class, PC.seed + 2)
    sets = (data.train.x[fit], data.train.y[fit], data.eval.x[score], data.eval.y[score])
    return data, config, pd, ref, sets


def test_linear_and_knn_probes_equal_scikit_learn_on_each_members_features(recorded):
    from sklearn.linear_model import Ridge
    from sklearn.neighbors import KNeighborsClassifier

    _, config, pd, ref, (fx, fy, sx, sy) = recorded
    checked = 0
    for t, weights in enumerate(ref.ends):
        seen = sorted(c for task in config.tasks[: t + 1] for c in task)
        rows = np.isin(fy.numpy(), seen)
        for e in range(2):
            fit_h, _ = member_forward(weights, e, fx[rows])
            score_h, logits = member_forward(weights, e, sx)
            for layer, (hf, hs) in enumerate(zip(fit_h, score_h, strict=True)):
                target = np.eye(len(seen))[np.searchsorted(seen, fy[rows].numpy())]
                ridge = Ridge(alpha=PC.ridge).fit(hf.double().numpy(), target)
                pred = np.asarray(seen)[ridge.predict(hs.double().numpy()).argmax(1)]
                knn = KNeighborsClassifier(n_neighbors=PC.knn, algorithm="brute").fit(hf.double().numpy(), fy[rows])
                knn_pred = knn.predict(hs.double().numpy())
                # where the k-th and (k+1)-th nearest distances tie (dead units: equal feature vectors), which
                # neighbours vote is arbitrary: such examples may differ, every other one must agree
                dist = np.sort(((hs.double().numpy()[:, None] - hf.double().numpy()[None]) ** 2).sum(-1), 1)
                tied = np.isclose(dist[:, PC.knn - 1], dist[:, PC.knn], rtol=1e-9, atol=1e-12)
                for k in range(10):
                    mine = sy.numpy() == k
                    assert pd["linear_correct"][t, e, layer, k] == (pred[mine] == k).sum()
                    ref_knn = (knn_pred[mine & ~tied] == k).sum()
                    assert ref_knn <= pd["knn_correct"][t, e, layer, k] <= ref_knn + (mine & tied).sum()
                    checked += (~tied[mine]).sum()
            net = logits.argmax(1).numpy()
            for k in range(10):
                assert pd["net_correct"][t, e, k] == (net[sy.numpy() == k] == k).sum()
    assert checked > 0.9 * 2 * 2 * (2 + 4 + 6) * PC.per_class  # ties are the exception
    assert pd["linear_correct"][0, :, :, 4:].sum() == 0  # classes not yet seen are never predicted
    assert 0 < pd["linear_correct"][-1].sum() < 2 * 2 * 6 * PC.per_class  # probes err: the counts are informative


def test_cka_and_unit_reuse_equal_direct_computation(recorded):
    _, config, pd, ref, (_, _, sx, sy) = recorded
    hidden = [[member_forward(w, e, sx)[0] for e in range(2)] for w in ref.ends]  # [t][e][layer]
    task_starts = {}
    for task, w in ref.points:  # the first record of each task is its start (before_task)
        task_starts.setdefault(task, w)
    for t in range(3):
        for e in range(2):
            for layer in range(2):
                for s in range(3):
                    v = pd[f"cka_h{layer + 1}"][t, e, s]
                    if s > t:
                        assert np.isnan(v)
                    else:
                        assert v == pytest.approx(
                            hsic_cka(hidden[s][e][layer].double().numpy(), hidden[t][e][layer].double().numpy()),
                            rel=1e-6,
                        )
                h = hidden[t][e][layer].numpy()
                for k, classes in enumerate(config.tasks):
                    rows = np.isin(sy.numpy(), classes)
                    np.testing.assert_allclose(pd[f"unit_rate_h{layer + 1}"][t, e, k], (h[rows] > 0).mean(0), atol=1e-6)
                    np.testing.assert_allclose(
                        pd[f"unit_mean_h{layer + 1}"][t, e, k], h[rows].mean(0), rtol=1e-5, atol=1e-6
                    )
                w0, w1 = task_starts[t][2 * layer][e], ref.ends[t][2 * layer][e]
                change = [(w1[:, u] - w0[:, u]).norm() / w0[:, u].norm() for u in range(w0.shape[1])]
                np.testing.assert_allclose(
                    pd[f"unit_change_h{layer + 1}"][t, e], torch.stack(change).numpy(), rtol=1e-5
                )


def test_head_bias_equals_a_per_member_count(recorded):
    _, config, pd, ref, (_, _, sx, sy) = recorded
    assert len(pd["head_bias"]) == len(ref.points)
    assert np.nanmax(pd["head_bias"][:, :, 0]) > 0  # some old examples go to the new classes
    for p, (t, weights) in enumerate(ref.points):
        for e in range(2):
            head_w, head_b = weights[-2][e], weights[-1][e, 0]
            np.testing.assert_allclose(pd["head_bias"][p, e, 3:13], head_w.norm(dim=0).numpy(), rtol=1e-5)
            np.testing.assert_allclose(pd["head_bias"][p, e, 13:], head_b.numpy(), rtol=1e-6)
            if t == 0:
                assert np.isnan(pd["head_bias"][p, e, :3]).all()
                continue
            old = [c for task in config.tasks[:t] for c in task]
            rows = np.isin(sy.numpy(), old)
            _, logits = member_forward(weights, e, sx[rows])
            new = list(config.tasks[t])
            share = np.isin(logits.argmax(1).numpy(), new).mean()
            assert pd["head_bias"][p, e, 0] == pytest.approx(share)
            assert pd["head_bias"][p, e, 1] == pytest.approx(float(logits[:, old].mean()), rel=1e-5, abs=1e-6)
            assert pd["head_bias"][p, e, 2] == pytest.approx(float(logits[:, new].mean()), rel=1e-5, abs=1e-6)


def test_interference_equals_per_member_autograd(recorded):
    data, config, pd, ref, (_, _, sx, sy) = recorded
    rows, L = pd["interference"], 3
    assert len(rows) == len(ref.steps) == 2 * PC.interference_batches
    np.testing.assert_array_equal(pd["interference_task_step"], [1, 2, 3, 4] * 2)
    assert pd.meta["interference_layers"] == ["fcs.0", "fcs.1", "head"]
    lr = config.train.lr
    for s, (t, before, batch, after) in enumerate(ref.steps):
        old = np.isin(sy.numpy(), [c for task in config.tasks[:t] for c in task])
        for e in range(2):  # one member at a time, its own leaf tensors
            w = [p[e : e + 1].clone().requires_grad_() for p in before]
            loss_new = F.cross_entropy(member_forward(w, 0, data.train.x[batch[e]])[1], data.train.y[batch[e]])
            g_new = torch.autograd.grad(loss_new, w)
            loss_old = F.cross_entropy(member_forward(w, 0, sx[old])[1], sy[old])
            g_old = torch.autograd.grad(loss_old, w)
            for j in range(L):
                pair = slice(2 * j, 2 * j + 2)
                dot = sum(float((a * b).sum()) for a, b in zip(g_new[pair], g_old[pair], strict=True))
                nn_ = sum(float((a * a).sum()) for a in g_new[pair])
                oo = sum(float((b * b).sum()) for b in g_old[pair])
                assert rows[s, e, j] == pytest.approx(dot, rel=1e-4, abs=1e-7)
                assert rows[s, e, L + j] == pytest.approx(nn_, rel=1e-4)
                assert rows[s, e, 2 * L + j] == pytest.approx(oo, rel=1e-4)
            after_loss = F.cross_entropy(member_forward(after, e, sx[old])[1], sy[old])
            moved = sum(float(((a[e] - b[e]) * g[0]).sum()) for a, b, g in zip(after, before, g_old, strict=True))
            total_dot = sum(float((a * b).sum()) for a, b in zip(g_new, g_old, strict=True))
            assert rows[s, e, 3 * L] == pytest.approx(float(loss_old.detach()), rel=1e-5)
            assert rows[s, e, 3 * L + 1] == pytest.approx(float(after_loss), rel=1e-5)
            assert rows[s, e, 3 * L + 2] == pytest.approx(-lr * total_dot, rel=1e-4, abs=1e-9)
            assert rows[s, e, 3 * L + 3] == pytest.approx(moved, rel=1e-4, abs=1e-9)


def test_probe_names_select_probes():
    pc = probes.ProbeConfig().only("linear,head")
    assert pc.linear and pc.head and not (pc.curves or pc.interference or pc.latent)
    hooks = probes.Probes(pc).hooks
    assert [type(h).__name__ for h in hooks] == ["HeadBias", "LinearProbe"]
    from forgetlab.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown probe 'lineer'; choose from curves, updates"):
        probes.ProbeConfig().only("lineer")


# --- the numbers and sentences of the report, from hand-made arrays ---------------------------------


def handmade(E: int = 2) -> probes.ProbeData:
    """Three tasks of two classes, ten probe examples per class: the network forgets every old task at
    once; hidden 2's probe keeps task 1 at 0.9, task 2's probe falls to chance."""
    T, L, C = 3, 2, 10
    net = np.zeros((T, E, C), int)
    lin = np.zeros((T, E, L, C), int)
    for t in range(T):
        net[t, :, [2 * t, 2 * t + 1]] = 10
        lin[t, :, :, [2 * t, 2 * t + 1]] = 10
    lin[1:, :, 1, [0, 1]] = 9  # task 1 on hidden 2: 0.9 after tasks 2 and 3
    lin[1:, :, 0, [0, 1]] = 3
    lin[2, :, :, [2, 3]] = 2  # task 2 after task 3: 0.2, chance 1/6
    arrays = {"score_count": np.full(C, 10), "net_correct": net, "linear_correct": lin, "knn_correct": lin}
    meta = {
        "tasks": [[0, 1], [2, 3], [4, 5]],
        "members": [{}] * E,
        "config": {"interference_batches": 4},
        "interference_layers": ["fcs.0"],
    }
    return probes.ProbeData(arrays, meta)


def test_representation_findings_follow_the_numbers():
    from forgetlab.diagnostics import findings as explain

    pd = handmade()
    r = explain.representation(pd)
    assert r["net"][2, 0].tolist()[:2] == [0.0, 0.0] and np.isnan(r["net"][0, 0, 1])
    assert r["linear"][2, 0, 1, 0] == pytest.approx(0.9) and r["chance"][2] == pytest.approx(1 / 6)
    first, second = explain.representation_findings(pd)
    assert first.startswith(
        "task 1 classes (0,1): after task 2 the linear probe on hidden 2 is at 0.90 ± 0.00 "
        "(after task 1: 1.00 ± 0.00; chance 0.25) while the network's accuracy falls from "
        "1.00 ± 0.00 to 0.00 ± 0.00: the features survive, the head forgets"
    )
    assert second.endswith("falls from 1.00 ± 0.00 to 0.00 ± 0.00: the features are lost as well.")
    _, rows = explain.representation_rows(pd)
    pooled = [r for r in rows if r[0] == "3" and "all earlier" in r[1]][0]
    assert pooled[2:5] == ["0.00 ± 0.00", "0.25 ± 0.00", "0.55 ± 0.00"]  # (3+3+2+2)/40, (9+9+2+2)/40


def test_interference_peaks_and_their_relation_to_the_collapse():
    from forgetlab.diagnostics import findings as explain

    pd = handmade()
    cos = [0.5, -0.2, -0.9, -0.1]
    rise = [0.1, 0.3, 0.2, 0.05]
    rows = np.zeros((8, 2, 7))
    for s in range(8):
        rows[s, :, :3] = [cos[s % 4], 1.0, 1.0]  # dot, |g_new|^2, |g_old|^2 of the one layer
        rows[s, :, 3:5] = [1.0, 1.0 + rise[s % 4]]
        rows[s, :, 5:] = [0.01, 0.2]
    pd.arrays.update(
        interference=rows, interference_task=np.repeat([1, 2], 4), interference_task_step=np.tile([1, 2, 3, 4], 2)
    )
    d = explain.interference(pd)[1]
    np.testing.assert_allclose(d["cos"][:, 0], cos)
    np.testing.assert_allclose(d["measured"][:, 1], rise)
    peak, largest = explain.peaks(d)
    assert peak.tolist() == [3, 3] and largest.tolist() == [2, 2]
    text = explain.interference_findings(pd, {1: np.array([4.0, 4.0]), 2: np.array([np.nan, np.nan])})
    assert text[0].startswith("task 2: the old classes' accuracy halves at batch 4.0 ± 0.0;")
    assert "the most negative cosine coincides with the collapse (within one batch)" in text[0]
    assert "the largest rise comes 2.0 batches before the collapse" in text[0]
    assert "changes by 0.65 ± 0.00; first order from the applied updates: 0.80 ± 0.00" in text[0]
    assert "never halves" in text[1]


def test_unit_reuse_counts_by_hand():
    from forgetlab.diagnostics import findings as explain

    pd = handmade(E=1)
    rate = np.zeros((3, 1, 3, 4), np.float32)
    mean = np.zeros((3, 1, 3, 4), np.float32)
    rate[0, 0, 0] = [0.5, 0.5, 0.0, 0.0]  # task 1 uses units 0, 1
    mean[0, 0, 0] = [3.0, 1.0, 0.0, 0.0]
    rate[1, 0, 1] = [0.0, 0.6, 0.6, 0.05]  # task 2 uses units 1, 2 (unit 3 below the 10% threshold)
    rate[1, 0, 0] = [0.5, 0.5, 0.0, 0.0]  # at the end of task 2, task 1's examples still use units 0, 1
    change = np.zeros((3, 1, 4), np.float32)
    change[1, 0] = [0.1, 0.5, 0.7, 0.3]
    pd.arrays.update(unit_rate_h1=rate, unit_mean_h1=mean, unit_change_h1=change)
    u = explain.unit_reuse(pd, 1)
    assert u["old_share"][0, 0] == pytest.approx(0.25)  # unit 1 carries 1 of task 1's 4
    assert u["overlap"][0, 0] == pytest.approx(1 / 3)  # {1, 2} and {0, 1} share unit 1 of {0, 1, 2}
    assert u["dead"][0, 0] == 1  # unit 0 is silent on task 2's examples
    assert u["moved_active"][0, 0] == pytest.approx(0.6) and u["moved_other"][0, 0] == pytest.approx(0.2)


def test_run_and_cli_select_probes_by_name(tmp_path, capsys):
    from forgetlab import api, cli

    res = api.run(small_config(), dataset=overlapping(), probes=["head", "drift"], save=False, progress=False)
    assert "head_bias" in res.probes and "cka_h2" in res.probes
    assert "curve_correct" not in res.probes and "linear_correct" not in res.probes
    assert res.probes.meta["config"]["head"] and not res.probes.meta["config"]["curves"]
    code = cli.main(["run", "mlp-sequential", "--probes", "head,lineer", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: probes: unknown probe 'lineer'") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing written


def test_compare_answers_why_each_strategy_forgets(tmp_path, monkeypatch):
    from forgetlab.workflows.compare import compare

    data = overlapping()
    monkeypatch.setattr(data_sources, "load_data", lambda config, device: data)
    rows = compare(
        "mlp-sequential",
        ["naive", "lwf"],
        seeds=[0, 1],
        out=tmp_path,
        gap_steps=5,
        progress=False,
        set={
            "model.hidden": "16,8",
            "protocol.tasks": "[[0,1],[2,3],[4,5]]",
            "train.epochs": 1,
            "train.batch_size": 16,
        },
        log=lambda *_: None,
    )
    md = (tmp_path / "compare.md").read_text()
    assert "95% t-interval of the mean" in md and "| strategy | seeds |" in md
    assert md.count("| naive | 2 | ") == 1  # the seeds column, then mean ± sd [95% CI] cells
    part = md[md.index("## Why they forget") :]
    table = [row for row in part.splitlines() if row.startswith("| naive |") or row.startswith("| lwf |")]
    assert len(table) == 2 and all(row.count("±") >= 8 for row in table)
    assert part.count("- naive: on the earlier tasks' classes") == 1 and "- lwf: " in part
    for png in ("explain_probe_vs_network", "explain_head_bias", "explain_interference"):
        assert (tmp_path / f"{png}.png").exists() and f"]({png}.png)" in part
    # min-ACC comes from the forgetting curves of the same probe run
    assert all(np.isfinite(r["min_acc"]) and 0 <= r["min_acc"] <= 1 for r in rows)
    pd = probes.load(tmp_path / "naive")
    assert pd["interference"].shape[:2] == (2 * 6, 2)  # tasks 2 and 3: all 6 of their batches (K = 20)


@pytest.mark.parametrize("preset", ["lenet-sequential", "mlp-bn-sequential", "mlp-dropout-sequential"])
def test_explanatory_probes_run_on_every_architecture(preset):
    from forgetlab import api

    config = api.make_config(
        preset, seeds=[0, 1], epochs=1, batch_size=16, set={"model.hidden": "16,8", "protocol.tasks": "[[0,1],[2,3]]"}
    )
    pc = PC.only("linear,head,interference,units,drift")
    rec = probes.Probes(pc)
    res = train(config, overlapping(), rec.hooks)
    pd = rec.data([{"seed": m.seed} for m in res.members], config.tasks)
    layers = pd.meta["interference_layers"]
    assert ("conv.0" in layers and "conv.1" in layers) == (preset == "lenet-sequential")
    assert ("norms.0" in layers) == (preset == "mlp-bn-sequential")
    assert pd["interference"].shape == (PC.interference_batches, 2, 3 * len(layers) + 4)
    assert np.isfinite(pd["interference"]).all() and np.isfinite(pd["head_end"][1]).all()
    assert pd["linear_correct"].shape == (2, 2, 2, 10) and pd["linear_correct"][1].sum() > 0
    np.testing.assert_allclose(pd["cka_h1"][1, :, 1], 1.0, rtol=1e-6)  # a representation against itself


def test_a_single_task_run_records_no_explanatory_arrays():
    from forgetlab import api

    config = api.make_config("mlp-concurrent", seeds=[0], epochs=1, batch_size=16, set={"model.hidden": "16,8"})
    rec = probes.Probes(probes.ProbeConfig(per_class=5, first=2, every=3, latent_per_class=2))
    train(config, overlapping(), rec.hooks)
    pd = rec.data([{"seed": 0}], config.tasks)
    assert "curve_correct" in pd
    assert not [
        k for k in pd.arrays if k.split("_")[0] in ("linear", "knn", "net", "head", "interference", "unit", "cka")
    ]


def test_explanatory_probes_run_on_a_user_module(toy):
    """A user's nn.Module (forgetlab.engine.modules) has no known head or hidden layer weights: those columns are
    NaN, every other measure is recorded."""
    from test_modules import _config

    config = _config(seeds=(0, 1))
    rec = probes.Probes(PC.only("linear,head,interference,units,drift"))
    train(config, toy, rec.hooks)
    pd = rec.data([{}, {}], config.tasks)
    assert np.isnan(pd["head_end"][1:, :, 3:]).all() and np.isfinite(pd["head_end"][1:, :, :3]).all()
    assert np.isnan(pd["unit_change_h1"]).all() and np.isfinite(pd["unit_rate_h1"]).all()
    assert np.isfinite(pd["interference"]).all() and pd["linear_correct"][-1].sum() > 0
