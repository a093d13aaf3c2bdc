"""Mammoth's network initialisation and input (model.init=xavier, data.normalize=false), which the
buzzega2020-* presets use."""

from __future__ import annotations

import math

import pytest
import torch

from forgetlab import api
from forgetlab import data as data_mod
from forgetlab.cli import main
from forgetlab.data import sources as data_sources
from forgetlab.data.seeding import INIT, generators
from forgetlab.engine.models import Linear
from forgetlab.engine.modules import build


def test_xavier_init_draws_weights_within_the_xavier_bound_with_zero_biases_per_member_seed():
    lin = Linear(784, 100, generators([0, 1], INIT), "cpu", "xavier").requires_grad_(False)
    bound = math.sqrt(6 / (784 + 100))
    assert lin.weight.shape == (2, 784, 100) and lin.bias.shape == (2, 1, 100)
    assert float(lin.weight.abs().max()) <= bound and float(lin.weight.abs().max()) > 0.99 * bound
    assert float(lin.bias.abs().max()) == 0.0
    # uniform on [-bound, bound]: variance bound^2 / 3
    assert float(lin.weight.var()) == pytest.approx(bound**2 / 3, rel=0.02)
    again = Linear(784, 100, generators([1], INIT), "cpu", "xavier")
    assert torch.equal(again.weight[0], lin.weight[1])  # a member's weights depend on its seed only
    torch_init = Linear(784, 100, generators([0], INIT), "cpu").requires_grad_(False)
    assert float(torch_init.bias.abs().max()) > 0 and float(torch_init.weight.abs().max()) <= 1 / 28


def test_unnormalized_undoes_the_standardisation_of_a_built_in_dataset():
    pixels = torch.tensor([[0.0, 0.5, 1.0]])
    split = data_mod.Split((pixels - 0.1307) / 0.3081, torch.tensor([3]))
    d = data_mod.Dataset("mnist", split, split, "test", image_shape=(3,))
    raw = data_mod.unnormalized(d, "mnist")
    assert torch.allclose(raw.train.x, pixels, atol=1e-7) and torch.equal(raw.eval.y, split.y)
    assert raw.n_classes == 10 and raw.image_shape == (3,)


def test_the_buzzega_presets_use_mammoths_init_and_input_and_the_study_presets_do_not():
    for name in ("buzzega2020-seq-mnist-200", "buzzega2020-perm-mnist-500"):
        c = api.presets.get(name, "er")
        assert (c.model.init, c.data.normalize) == ("xavier", False)
    c = api.presets.get("mlp-sequential")
    assert (c.model.init, c.data.normalize) == ("torch", True)


def test_model_init_reaches_the_built_network():
    c = api.make_config("buzzega2020-seq-mnist-500", seeds=[0], device="cpu")
    net = build(c.model, [0], torch.zeros(1), "cpu")
    assert all(float(lin.bias.detach().abs().max()) == 0 for lin in (*net.fcs, net.head))


@pytest.mark.parametrize(
    "setting, message",
    [
        (["--set", "model.init=he"], "model.init='he' is not valid; choose one of: torch, xavier"),
        (["--set", "data.normalize=false", "--set", "data.dataset=KMNIST"], "data.normalize=false needs a built-in"),
    ],
)
def test_bad_init_or_normalize_is_one_line(setting, message, tmp_path, capsys):
    assert main(["run", "mlp-sequential", "--out", str(tmp_path / "r"), *setting]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "r").exists()


def test_raw_pixels_of_permuted_mnist_are_one_copy_per_task(mnist_dir):
    c = api.make_config("buzzega2020-perm-mnist-500", data_dir=mnist_dir, device="cpu", set={"protocol.permuted": 2})
    d = data_sources.load_data(c, torch.device("cpu"))
    assert d.train.x.shape == (2 * 60000, 784) and d.n_classes == 20
    assert float(d.train.x.min()) >= -1e-6 and float(d.train.x.max()) <= 1 + 1e-6
    standard = data_sources.load_data(
        api.make_config("mlp-sequential", data_dir=mnist_dir, device="cpu"), torch.device("cpu")
    )
    assert torch.allclose(
        d.train.x[:60000].sort(1).values, (standard.train.x * 0.3081 + 0.1307).sort(1).values, atol=1e-6
    )
