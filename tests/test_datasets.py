"""Any labelled data: arrays, .npz files and torchvision datasets by name; every bad input is one line."""

import json

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from forgetlab import api, data
from forgetlab.data import sources as data_sources
from forgetlab.errors import DataError, ForgetlabError
from test_cli import assert_one_line_error, run_cli

rng = np.random.default_rng(0)


def arrays(n=40, shape=(28, 28), classes=4, dtype=np.uint8):
    x = rng.integers(0, 256, (n, *shape)).astype(dtype)
    y = np.arange(n) % classes
    return x, y, x[: n // 2].copy(), y[: n // 2].copy()


def _with(index, value):
    a = list(arrays())
    a[index] = value
    return a


def _nan():
    x = arrays()[0].astype(np.float32)
    x[3, 4, 5] = np.nan
    return x


BAD = [
    (_with(0, [[1, 2]]), "x_train is a list; give a NumPy array or a torch tensor"),
    (_with(1, np.arange(40) * 0.5), "y_train has dtype torch.float64; labels must be integers"),
    (_with(1, np.zeros((40, 2), dtype=np.int64)), "y_train has shape [40, 2]; labels must be one integer per example"),
    (_with(3, np.arange(20) - 1), "y_test holds label -1; labels must be integers >= 0"),
    (_with(1, np.arange(39) % 4), "x_train has 40 examples but y_train has 39 labels"),
    (_with(0, _nan()), "x_train holds 1 non-finite values (NaN or inf)"),
    (
        _with(2, np.zeros((20, 32, 32), dtype=np.uint8)),
        "x_test examples have shape [32, 32] but x_train's have [28, 28]",
    ),
    (_with(0, np.zeros((40, 1, 2, 3, 4))), "examples of shape [1, 2, 3, 4]: give [N, features]"),
    (_with(0, np.array(["a"] * 40)), "x_train has dtype <U1; give numbers"),
    (_with(2, np.zeros((0, 28, 28))), "x_test has shape [0, 28, 28]; give at least one example"),
]


@pytest.mark.parametrize("given, message", BAD)
def test_bad_arrays_are_one_line(given, message):
    with pytest.raises(DataError) as e:
        data.from_arrays(*given)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_images_keep_their_shape_and_are_standardised():
    ds = data.from_arrays(*arrays(shape=(3, 8, 8), classes=5))
    assert ds.image_shape == (3, 8, 8) and ds.n_classes == 5 and ds.train.x.shape == (40, 192)
    assert abs(float(ds.train.x.mean())) < 1e-5 and abs(float(ds.train.x.std()) - 1) < 1e-4
    flat = data.from_arrays(*(torch.as_tensor(a) for a in arrays(shape=(6,), dtype=np.float32)))
    assert flat.image_shape == (6,) and flat.train.x.shape == (40, 6)
    gray = data.from_arrays(*arrays(shape=(5, 7)))
    assert gray.image_shape == (1, 5, 7)


def test_float_inputs_are_used_as_given():
    x, y, xt, yt = arrays(shape=(6,), dtype=np.float32)
    ds = data.from_arrays(x, y, xt, yt)
    assert torch.equal(ds.train.x, torch.from_numpy(x)) and torch.equal(ds.eval.y, torch.from_numpy(yt))


def test_a_class_the_data_lacks_is_one_line():
    ds = data.from_arrays(*arrays(classes=4))
    data.check_tasks(ds, ((0, 1), (2, 3)))
    with pytest.raises(DataError, match=r"class 5 is out of range; arrays has classes 0-3"):
        data.check_tasks(ds, ((0, 1), (5,)))
    x, y, xt, yt = arrays(classes=4)
    with pytest.raises(DataError, match="class 3 has no evaluation examples in arrays"):
        data.check_tasks(data.from_arrays(x, y, xt, np.where(yt == 3, 0, yt)), ((0, 1), (2, 3)))


@pytest.mark.parametrize(
    "content, fragment",
    [
        (None, "does not exist"),
        ({"x_train": np.zeros((4, 3)), "y_train": np.zeros(4, dtype=int)}, "lacks array 'x_test'"),
        (
            {
                "x_train": np.array([{}] * 4, dtype=object),
                "y_train": np.zeros(4, dtype=int),
                "x_test": np.zeros((2, 3)),
                "y_test": np.zeros(2, dtype=int),
            },
            "is not a readable .npz of numeric arrays",
        ),
        ("garbage", "is not a readable .npz"),
    ],
)
def test_bad_npz_files_are_one_line_on_the_cli(capsys, tmp_path, content, fragment):
    path = tmp_path / "my.npz"
    if isinstance(content, dict):
        np.savez(path, **content)
    elif content:
        path.write_text(content)
    code, _, err = run_cli(capsys, "run", "mlp-sequential", "--set", f"data.path={path}", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, f"data.path={path}", fragment)


def test_an_npz_run_from_the_cli(capsys, tmp_path):
    x, y, xt, yt = arrays(n=60, classes=4)
    np.savez(tmp_path / "my.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    code, _, err = run_cli(
        capsys,
        "run",
        "mlp-sequential",
        "--set",
        f"data.path={tmp_path / 'my.npz'}",
        "--set",
        "protocol.tasks=[[0,1],[2,3]]",
        "--epochs",
        "1",
        "--seeds",
        "0",
        "1",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
        "--table",
        "none",
    )
    assert code == 0, err
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["config"]["data"]["path"] == str(tmp_path / "my.npz")
    assert len(res["members"][0]["acc_matrix"]) == 2 and len(res["members"][0]["acc_matrix"][0]) == 2
    code, _, err = run_cli(
        capsys, "run", "mlp-sequential", "--set", f"data.path={tmp_path / 'my.npz'}", "--out", str(tmp_path / "r2")
    )
    assert_one_line_error(code, err, "protocol.tasks: class 4 is out of range; my has classes 0-3")


def test_torchvision_names(tmp_path, monkeypatch):
    with pytest.raises(
        ForgetlabError, match="data.dataset='Nope' is neither mnist nor fashion-mnist nor a torchvision"
    ):
        api.make_config("mlp-sequential", set={"data.dataset": "Nope"})
    config = api.make_config(
        "mlp-sequential", data_dir=tmp_path, set={"data.dataset": "KMNIST", "data.download": "false"}
    )
    with pytest.raises(DataError, match=r"KMNIST not found under .* \(data.download=false\) \(RuntimeError"):
        data_sources.load_data(config, torch.device("cpu"))

    class Fake(tvd.VisionDataset):  # CIFAR's layout: uint8 [N, H, W, C] in .data, a list in .targets
        def __init__(self, root, train=True, download=False):
            super().__init__(root)
            n = 30 if train else 10
            self.data = np.full((n, 6, 6, 3), 7, dtype=np.uint8) + np.arange(3, dtype=np.uint8)
            self.targets = [i % 3 for i in range(n)]

    monkeypatch.setattr(tvd, "FakeCIFAR", Fake, raising=False)
    ds = data.load_torchvision("FakeCIFAR", tmp_path)
    assert ds.image_shape == (3, 6, 6) and ds.n_classes == 3 and len(ds.train) == 30 and len(ds.eval) == 10
    first = ds.train.x[0].view(3, 6, 6)
    assert first[0].unique().numel() == 1 and first[0, 0, 0] < first[1, 0, 0] < first[2, 0, 0]  # channels first


@pytest.mark.mnist
@pytest.mark.parametrize("name, builtin", [("MNIST", "mnist"), ("FashionMNIST", "fashion-mnist")])
def test_the_shipped_datasets_by_torchvision_name_equal_the_built_in_loader(mnist_dir, name, builtin):
    ours = data.load_torchvision(name, mnist_dir, download=False)
    ref = data.load(builtin, mnist_dir, download=False)
    assert ours.n_classes == 10 and ours.image_shape == (1, 28, 28)
    assert torch.equal(ours.train.y, ref.train.y) and torch.equal(ours.eval.y, ref.eval.y)
    # the built-in loader uses the published mean and std (4 digits); ours computes them from the data
    torch.testing.assert_close(ours.train.x, ref.train.x, rtol=0, atol=2e-3)
