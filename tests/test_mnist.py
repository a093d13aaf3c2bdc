from itertools import pairwise

"""The study's numbers on real MNIST (../shared/data or FORGETLAB_DATA): seconds each, so they run in CI.

Study values: ../shared/study/mnist-mlp-forgetting-study.md.
"""

import statistics

import pytest

from forgetlab import api

pytestmark = pytest.mark.mnist
STUDY_SEQUENTIAL_VAL_ACC = [0.9962, 0.4859, 0.3144, 0.2521, 0.1985]


def _run(preset, mnist_dir, **kw):
    return api.run(preset, data_dir=mnist_dir, save=False, progress=False, **kw)


def _mean_final(res, t, key="val_acc"):
    return statistics.fmean(getattr(m.tasks[t], key)[-1] for m in res.members)


def test_mlp_sequential_reproduces_the_study(mnist_dir):
    res = _run("mlp-sequential", mnist_dir, seeds=[0, 1, 2, 3, 4])
    ours = [_mean_final(res, t) for t in range(5)]
    assert ours == pytest.approx(STUDY_SEQUENTIAL_VAL_ACC, abs=0.02)
    sparsity = [_mean_final(res, t, "sparsity_all") for t in range(5)]
    assert 0.40 < sparsity[0] < 0.60 and sparsity[-1] > 0.80  # study: 0.50 rising to 0.90
    assert sparsity[-1] > sparsity[2] > sparsity[0]
    R = res.members[0].acc_matrix
    assert R[4][4] > 0.99 and max(R[4][:4]) < 0.05  # the last task is known, the earlier ones are gone


def test_concurrent_upper_bounds(mnist_dir):
    plain = _run("mlp-concurrent", mnist_dir, seeds=[0, 1, 2])
    assert _mean_final(plain, 0) >= 0.96  # study: 0.9646
    bn = _run("mlp-bn-concurrent", mnist_dir, seeds=[0, 1, 2])
    assert _mean_final(bn, 0) >= 0.97  # study: 0.9782


def test_l1_sparsity_rises_with_lambda_and_accuracy_falls_at_one(mnist_dir):
    res = _run("mlp-l1-concurrent", mnist_dir, seeds=[0, 1])
    by_l1 = {}
    for m in res.members:
        by_l1.setdefault(m.hparams["train.l1"], []).append(m.tasks[0])
    sparsity = {l1: statistics.fmean(t.sparsity_all[-1] for t in ts) for l1, ts in by_l1.items()}
    acc = {l1: statistics.fmean(t.val_acc[-1] for t in ts) for l1, ts in by_l1.items()}
    lambdas = sorted(sparsity)
    assert lambdas == [0.0, 0.001, 0.1, 1.0, 2.0]
    assert all(sparsity[a] < sparsity[b] for a, b in pairwise(lambdas))
    assert 0.45 < sparsity[0.0] < 0.65 and sparsity[2.0] > 0.88  # study: 0.54 -> 0.93
    assert acc[1.0] < acc[0.0] - 0.005 and acc[2.0] < acc[1.0]  # study: 0.97 -> 0.95 -> 0.91


def test_real_files_truncated_give_one_line(mnist_dir, tmp_path, capsys):
    from forgetlab import cli

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mnist_dir / "MNIST" / "raw").iterdir():
        data = f.read_bytes()
        (raw / f.name).write_bytes(data[: len(data) // 2] if f.name.startswith("train-images") else data)
    code = cli.main(["run", "mlp-sequential", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "corrupt or truncated" in err
