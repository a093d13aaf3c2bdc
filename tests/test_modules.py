"""User modules as ensemble members: each member against the same module run alone by plain PyTorch."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from forgetlab.api import make_config
from forgetlab.config import ModelConfig
from forgetlab.data import seeding
from forgetlab.data import sources as data_sources
from forgetlab.engine.modules import ModuleEnsemble, build, register, resolve
from forgetlab.engine.training import train
from forgetlab.errors import ConfigError
from user_modules.lenet import BatchNormMLP, DropoutMLP, LeNet
from user_modules.study_mlp import MLP

STUDY_MLP = f"{Path(__file__).parent / 'user_modules' / 'study_mlp.py'}:MLP"


def _alone(cls, seed, **kwargs):
    """The reference: the member built by plain PyTorch under its seed's init stream."""
    torch.manual_seed(seeding.stream_seed(seed, seeding.INIT))
    return cls(**kwargs)


def _member(ens: ModuleEnsemble, e: int, cls, **kwargs) -> torch.nn.Module:
    """Member e's current parameters and buffers loaded into a fresh plain module."""
    m = cls(**kwargs)
    state = {k.removeprefix("net."): v[e] for k, v in ens.state_dict().items()}
    m.load_state_dict(state)
    return m


def test_each_member_is_initialised_as_its_seed_builds_it_alone():
    ens = ModuleEnsemble(MLP, {}, [3, 7], 10, (784,), "cpu")
    ref = _alone(MLP, 7)
    for name, p in ref.named_parameters():
        torch.testing.assert_close(ens.state_dict()[f"net.{name}"][1], p, rtol=0, atol=0)
    alone = ModuleEnsemble(MLP, {}, [7], 10, (784,), "cpu")
    torch.testing.assert_close(alone.state_dict()["net.fc1.weight"][0], ens.state_dict()["net.fc1.weight"][1])


@pytest.mark.parametrize("cls, shape", [(MLP, (784,)), (LeNet, (1, 28, 28)), (BatchNormMLP, (784,))])
def test_forward_equals_each_member_run_alone(cls, shape):
    ens = ModuleEnsemble(cls, {}, [0, 1, 2], 10, shape, "cpu").eval()
    x = torch.randn(5, 784)
    out = ens(x)  # one shared batch
    per = ens(x.expand(3, 5, 784) + torch.arange(3.0).view(3, 1, 1))  # a batch per member
    for e in range(3):
        m = _member(ens, e, cls).eval()
        logits, hidden = m(x.view(5, *shape))
        hidden = hidden if isinstance(hidden, list) else [hidden]
        torch.testing.assert_close(out.logits[e], logits, rtol=1e-5, atol=1e-5)
        for h_ens, h in zip(out.hidden, hidden, strict=True):
            torch.testing.assert_close(h_ens[e], h.flatten(1), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(per.logits[e], m((x + e).view(5, *shape))[0], rtol=1e-5, atol=1e-5)


def test_batch_norm_running_statistics_are_kept_per_member():
    ens = ModuleEnsemble(BatchNormMLP, {}, [0, 1], 10, (784,), "cpu").train()
    refs = [_member(ens, e, BatchNormMLP).train() for e in range(2)]
    for _step in range(3):
        x = torch.randn(2, 16, 784)
        out = ens(x)
        for e, ref in enumerate(refs):
            torch.testing.assert_close(out.logits[e], ref(x[e])[0], rtol=1e-5, atol=1e-5)
    state = ens.state_dict()
    for e, ref in enumerate(refs):
        torch.testing.assert_close(state["net.bn1.running_mean"][e], ref.bn1.running_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(state["net.bn2.running_var"][e], ref.bn2.running_var, rtol=1e-5, atol=1e-6)
        assert int(state["net.bn1.num_batches_tracked"][e]) == 3


def test_dropout_masks_differ_between_members_and_repeat_with_the_seeds():
    x = torch.randn(64, 784).expand(2, 64, 784)
    twins = ModuleEnsemble(DropoutMLP, {"p": 0.5}, [0, 0], 10, (784,), "cpu").train()  # identical weights
    first = twins(x).logits
    assert not torch.allclose(first[0], first[1])  # so only their dropout masks differ
    torch.testing.assert_close(
        ModuleEnsemble(DropoutMLP, {"p": 0.5}, [0, 0], 10, (784,), "cpu").train()(x).logits, first
    )  # the same seeds draw the same masks
    ref = _member(twins, 0, DropoutMLP).eval()
    torch.testing.assert_close(twins.eval()(x[0]).logits[1], ref(x[0]), rtol=1e-5, atol=1e-5)  # eval: no dropout


def _config(seeds=(0,), **set_):
    values = {
        "protocol.tasks": "[[0,1],[2,3],[4,5]]",
        "train.epochs": 2,
        "train.batch_size": 16,
        "train.lr": 0.1,
        "model.module": STUDY_MLP,
        **set_,
    }
    return make_config("mlp-sequential", seeds=list(seeds), set={k: str(v) for k, v in values.items()})


@pytest.mark.parametrize("strategy", ["naive", "er", "derpp", "ewc", "lwf"])
def test_training_each_member_gets_the_numbers_it_gets_alone(toy, strategy):
    extra = {"strategy.name": strategy, **({f"strategy.{strategy}.memory": 30} if strategy in ("er", "derpp") else {})}
    together = train(_config(seeds=(5, 6), **extra), toy)
    alone = train(_config(seeds=(6,), **extra), toy)
    a, b = together.members[1], alone.members[0]
    torch.testing.assert_close(torch.tensor(a.acc_matrix), torch.tensor(b.acc_matrix), rtol=0, atol=1e-6)
    assert a.tasks[-1].train_loss == pytest.approx(b.tasks[-1].train_loss, rel=1e-4)
    assert a.tasks[-1].sparsity_all == pytest.approx(b.tasks[-1].sparsity_all, abs=1e-6)


def test_one_sgd_step_equals_torch_optim_on_the_member_alone(toy):
    config = _config(seeds=(4,), **{"protocol.kind": "concurrent", "train.epochs": 1, "train.momentum": 0.0})
    config = make_config(config, set={"train.iters": "1"})
    res = train(config, toy)
    ref = _alone(MLP, 4)
    g = seeding.generators([4], seeding.SHUFFLE)[0]
    idx = toy.train.indices_of(config.tasks[0])[
        torch.randperm(len(toy.train.indices_of(config.tasks[0])), generator=g)[:16]
    ]
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    F.cross_entropy(ref(toy.train.x[idx])[0], toy.train.y[idx]).backward()
    opt.step()
    got = res.model.state_dict()
    for name, p in ref.named_parameters():
        torch.testing.assert_close(got[f"net.{name}"][0], p, rtol=1e-5, atol=1e-6)


def test_a_class_given_from_python_is_found_by_its_spec():
    spec = register(LeNet)
    assert spec.endswith(":LeNet") and resolve(spec) is LeNet
    assert resolve(STUDY_MLP).__name__ == "MLP" and resolve("user_modules.lenet:LeNet") is LeNet


@pytest.mark.parametrize(
    "module, set_, fragment",
    [
        ("nope", {}, "expected package.module:ClassName"),
        ("user_modules/missing.py:MLP", {}, "does not exist"),
        ("user_modules.lenet:Nothing", {}, "has no attribute 'Nothing'"),
        ("no_such_package.x:Net", {}, "importing no_such_package.x failed (ModuleNotFoundError"),
        (STUDY_MLP, {"model.module_args": '{"n_classes": 7}'}, "logits of shape [2, 7]"),
        (STUDY_MLP, {"model.module_args": '{"width": 7}'}, "unexpected keyword argument 'width'"),
        (STUDY_MLP, {"model.module_args": "[1]"}, "must be a JSON object"),
        (STUDY_MLP, {"model.module_input": "image"}, "forward on a batch of shape [2, 1, 28, 28] failed"),
        ("user_modules.lenet:LeNet", {}, "forward on a batch of shape [2, 784] failed"),
    ],
)
def test_a_bad_module_is_one_line(module, set_, fragment):
    cfg = ModelConfig(module=module, **{k.split(".")[1]: v for k, v in set_.items()})
    with pytest.raises(ConfigError) as e:
        build(cfg, [0], torch.zeros(1), "cpu", 10, (1, 28, 28))
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_built_in_options_are_refused_with_a_module(toy):
    for key, value in (("model.norm", "batch"), ("model.init", "xavier")):
        with pytest.raises(ConfigError, match="put normalisation, dropout and initialisation in your module"):
            train(_config(**{key: value}), toy)
    with pytest.raises(ConfigError, match="put dropout in your module"):
        train(make_config(_config(), grid={"model.dropout": "0,0.5"}), toy)
    with pytest.raises(ConfigError, match="model.module_input='pixels' is not valid; choose one of: flat, image"):
        train(_config(**{"model.module_input": "pixels"}), toy)
    with pytest.raises(ConfigError, match="returns only logits"):
        train(_config(**{"model.module": "user_modules.lenet:DropoutMLP", "train.l1": 0.1}), toy)


class TinyConv(torch.nn.Module):
    """Any channel count and image size: one convolution, global pooling, a head."""

    def __init__(self, channels=3, n_classes=3):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, 4, 3, padding=1)
        self.head = torch.nn.Linear(4, n_classes)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.head(h.mean((2, 3))), h


def test_colour_images_of_any_size_reach_a_module_and_the_built_in_mlp_flattens_them():
    from forgetlab import api, data

    g = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    x = torch.rand(90, 3, 10, 12, generator=g) + y.view(-1, 1, 1, 1).float() * torch.tensor([1.0, 0, -1]).view(
        1, 3, 1, 1
    )
    ds = data.from_arrays(x, y, x[:30], y[:30])
    common = dict(
        dataset=ds,
        seeds=[0, 1],
        epochs=10,
        lr=0.1,
        batch_size=10,
        save=False,
        progress=False,
        set={"protocol.kind": "concurrent", "protocol.tasks": "[[0],[1],[2]]"},
    )
    res = api.run(
        "mlp-sequential", model=TinyConv, **{**common, "set": {**common["set"], "model.module_input": "image"}}
    )
    assert res.model.hidden_units == (4 * 10 * 12,)
    assert min(m.tasks[-1].val_acc[-1] for m in res.members) > 0.9  # the colour of a class is learnable
    builtin = api.run("mlp-sequential", **{**common, "lr": 0.03})
    assert builtin.model.fcs[0].weight.shape == (2, 3 * 10 * 12, 120)
    assert min(m.tasks[-1].val_acc[-1] for m in builtin.members) > 0.9


def test_the_cli_runs_a_module_file_and_a_wrong_output_shape_is_one_line(capsys, tmp_path, monkeypatch):
    from test_cli import assert_one_line_error, run_cli

    monkeypatch.setattr(data_sources, "load_data", lambda config, device: __import__("conftest").synthetic())
    base = [
        "run",
        "mlp-sequential",
        "--set",
        f"model.module={STUDY_MLP}",
        "--epochs",
        "1",
        "--seeds",
        "0",
        "--no-progress",
        "--table",
        "none",
    ]
    code, _, err = run_cli(capsys, *base, "--out", str(tmp_path / "ok"))
    assert code == 0, err
    assert (tmp_path / "ok" / "weights.pt").exists()
    code, _, err = run_cli(capsys, *base, "--set", 'model.module_args={"n_classes": 5}', "--out", str(tmp_path / "bad"))
    assert_one_line_error(code, err, "logits of shape [2, 5]", "needs [2, 10]")


def test_functional_call_on_the_ensemble_uses_the_given_parameters():
    """LwF's frozen network and EWC's per-example gradients call the ensemble with other parameters."""
    from torch.func import functional_call

    ens = ModuleEnsemble(MLP, {}, [0, 1], 10, (784,), "cpu").eval()
    x = torch.randn(4, 784)
    theta = {n: p.detach() * 2 for n, p in ens.named_parameters()}
    got = functional_call(ens, theta, (x,)).logits
    ref = _member(ens, 1, MLP)
    ref.load_state_dict({k.removeprefix("net."): v[1] for k, v in theta.items()})
    torch.testing.assert_close(got[1], ref(x)[0], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got[1], ens(x).logits[1])
