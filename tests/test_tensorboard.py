"""--log tensorboard: the event files, read back with TensorBoard's own reader, hold what results.json holds."""

import json

import numpy as np
import pytest
import torch

from forgetlab.data import sources as data_sources

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from test_cli import run_cli  # noqa: E402


def _read(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_event_files_hold_the_run(tmp_path, toy, monkeypatch, capsys):
    monkeypatch.setattr(data_sources, "load_data", lambda config, device: toy)
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys,
        "run",
        "mlp-sequential",
        "--set",
        "protocol.tasks=[[0,1],[2,3]]",
        "--epochs",
        "2",
        "--seeds",
        "0",
        "1",
        "--grid",
        "train.lr=0.05,0.1",
        "--probes",
        "--log",
        "tensorboard",
        "--set",
        "train.batch_size=16",
        "--out",
        str(out),
        "--no-progress",
        "--table",
        "none",
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    tb = _read(out / "tensorboard")
    tags = tb.Tags()
    labels = [f"lr={m['hparams']['train.lr']:g},seed={m['seed']}" for m in res["members"]]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "sparsity_all"):
        series = [[v for t in m["tasks"] for v in t[key]] for m in res["members"]]  # 2 tasks x 2 epochs
        for label, want in zip(labels, series, strict=True):
            got = tb.Scalars(f"{key}/{label}")
            assert [e.step for e in got] == [0, 1, 2, 3]
            np.testing.assert_allclose([e.value for e in got], want, rtol=1e-6)
        np.testing.assert_allclose([e.value for e in tb.Scalars(f"{key}/mean")], np.mean(series, 0), rtol=1e-6)
    # weight and activation histograms per task and member
    hist = tb.Histograms(f"weights/fcs.0.weight/{labels[3]}")
    assert [h.step for h in hist] == [0, 1] and hist[0].histogram_value.num == 784 * 120
    state = torch.load(out / "weights.pt")["state_dict"]
    final = hist[-1].histogram_value  # after the last task: the saved weights
    assert final.sum == pytest.approx(float(state["fcs.0.weight"][3].double().sum()), rel=1e-5, abs=1e-6)
    assert final.sum_squares == pytest.approx(float(state["fcs.0.weight"][3].double().pow(2).sum()), rel=1e-5)
    act = tb.Histograms(f"activations/h2/{labels[0]}")
    assert len(act) == 2 and act[0].histogram_value.num == 10 * 20 * 84  # 20 per class of the synthetic eval split
    # the probe curves: forgetting (accuracy on each task) and the true class's probability, per probe point
    probes = np.load(out / "probes.npz")
    correct = probes["curve_correct"]  # [points, E, classes]
    task1 = correct[:, :, [0, 1]].sum(-1) / probes["probe_count"][[0, 1]].sum()
    got = tb.Scalars(f"forgetting/task 1/{labels[2]}")
    assert [e.step for e in got] == probes["point_step"].tolist()
    np.testing.assert_allclose([e.value for e in got], task1[:, 2], rtol=1e-6)
    assert "probability/class 3/mean" in tags["scalars"]
    # the projector: one embedding per hidden layer and task, with labels and sprites
    config = (out / "tensorboard" / "projector_config.pbtxt").read_text()
    assert config.count("embeddings {") == 4 and "sprite" in config
    meta = sorted((out / "tensorboard").glob("*/h2-task2/metadata.tsv"))
    labels_written = meta[0].read_text().split()
    assert len(labels_written) == 10 * 20 and sorted(set(labels_written)) == [str(c) for c in range(10)]
