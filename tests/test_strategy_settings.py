"""Strategies bring their own settings: a strategy registered here, in the test file alone, runs from the
API and the CLI with its own hyperparameter; identities depend only on values that change numbers."""

import dataclasses
import json
from dataclasses import dataclass

import pytest
import torch

from forgetlab import api, cli
from forgetlab import config as cfg
from forgetlab.engine.training import train
from forgetlab.errors import ConfigError
from forgetlab.strategies import Strategy, register


@dataclass(frozen=True)
class ShrinkSettings:
    rate: float = 0.0  # each step adds rate * sum theta^2 to every member's loss


@register("test-shrink")
class Shrink(Strategy):
    """A weight penalty rate * ||theta||^2: trains differently from naive exactly when rate > 0."""

    Settings = ShrinkSettings
    adds_loss = True

    def loss(self, ctx, out, x, y):
        return self.cfg.rate * sum(p.pow(2).flatten(1).sum(1) for p in ctx.model.parameters())


TASKS = "[[0,1],[2,3]]"


def _config(**set_):
    values = {"protocol.tasks": TASKS, "train.epochs": 1, "train.batch_size": 16, **set_}
    return api.make_config("mlp-sequential", seeds=[0], set=values)


def test_a_new_strategy_runs_from_the_api_with_its_own_setting(toy):
    naive = train(_config(), toy).members[0]
    zero = train(_config(**{"strategy.name": "test-shrink"}), toy).members[0]
    strong = train(_config(**{"strategy.name": "test-shrink", "strategy.test-shrink.rate": "0.5"}), toy)
    assert strong.config.strategy.params == ShrinkSettings(rate=0.5)
    assert zero.acc_matrix == naive.acc_matrix  # rate 0 adds a zero penalty: naive's numbers through autograd
    assert strong.members[0].acc_matrix != naive.acc_matrix
    # the penalty pulls the weights towards 0: the trained network's weights are smaller
    norm = lambda res: float(sum(p.detach().pow(2).sum() for p in res.model.parameters()))  # noqa: E731
    assert norm(strong) < norm(train(_config(), toy))


def test_a_new_strategy_runs_from_the_cli(tmp_path, capsys, mnist_dir):
    out = tmp_path / "run"
    code = cli.main(
        [
            "run",
            "mlp-sequential",
            "--strategy",
            "test-shrink",
            "--set",
            "strategy.test-shrink.rate=0.01",
            "--set",
            "protocol.tasks=[[0,1]]",
            "--set",
            "train.iters=3",
            "--seeds",
            "0",
            "--data-dir",
            str(mnist_dir),
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    saved = json.loads((out / "results.json").read_text())["config"]["strategy"]
    assert saved == {"name": "test-shrink", "test-shrink": {"rate": 0.01}}


@pytest.mark.parametrize(
    "key, fragments",
    [
        ("strategy.test-shrink.rat=1", ["unknown setting strategy.test-shrink.rat", "strategy.test-shrink.rate"]),
        ("strategy.lwf.alpha=1", ["applies to strategy 'lwf' only", "'test-shrink'", "strategy.test-shrink.rate"]),
        ("strategy.test-shrink.rate=abc", ["strategy.test-shrink.rate='abc' is not a valid float"]),
    ],
)
def test_bad_settings_give_one_line_listing_the_valid_keys(capsys, key, fragments):
    code = cli.main(["run", "mlp-sequential", "--strategy", "test-shrink", "--set", key])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    for f in fragments:
        assert f in err


# identities of configs as forgetlab computed them at a174be1 (before strategies owned their settings)
PINNED = [
    (("mlp-sequential", None, {}), "453b6b4e58a62304", "b5dd80267d136db2"),
    (("mlp-l1-concurrent", None, {}), "e309e78aaa6b3761", "3334c82a0871e506"),
    (("mlp-sequential", "ewc", {"strategy.ewc_lambda": "5"}), "23a9181d1714d4aa", "58fec2fd5c9d8e3e"),
    (("mlp-sequential", "ewc", {"strategy.ewc.lam": "5"}), "23a9181d1714d4aa", "58fec2fd5c9d8e3e"),
    # the preset now uses Mammoth's init and input; with forgetlab's, its identity is the one pinned then
    (
        ("buzzega2020-seq-mnist-500", "derpp", {"model.init": "torch", "data.normalize": "true"}),
        "0e9c58d97fb5e8b6",
        "151f72d4c9a245ae",
    ),
    (("mlp-permuted", "si", {}), "c581ad7942782e46", "0fe1e1a59a9c2b4d"),
]


@pytest.mark.parametrize("case, ident, member", PINNED)
def test_existing_identities_stay_the_same(case, ident, member):
    preset, strategy, set_ = case
    c = api.make_config(preset, strategy=strategy, set=set_)
    assert cfg.identity(c) == ident
    assert cfg.member_identity(c, cfg.members(c)[0]) == member


def test_download_and_root_are_not_in_identities():
    a = api.make_config("mlp-sequential")
    b = api.make_config("mlp-sequential", set={"data.download": "false", "data.root": "/elsewhere"})
    assert cfg.identity(a) == cfg.identity(b)
    assert cfg.member_identity(a, cfg.members(a)[0]) == cfg.member_identity(b, cfg.members(b)[0])


def test_a_new_field_at_its_default_or_a_new_strategy_changes_no_identity(monkeypatch):
    configs = [api.make_config("mlp-sequential", strategy=s) for s in ("naive", "ewc", "lwf")]
    configs.append(api.make_config("buzzega2020-seq-mnist-200", strategy="der"))
    before = [(cfg.identity(c), cfg.member_identity(c, cfg.members(c)[0])) for c in configs]

    @dataclass(frozen=True)
    class Wider(cfg.TrainConfig):
        warmup: int = 0  # a field added later, left at its default

    @dataclass(frozen=True)
    class Settings:
        depth: int = 3

    register("test-new-strategy")(type("New", (Strategy,), {"Settings": Settings}))
    monkeypatch.setitem(cfg.SECTIONS, "train", Wider)
    widened = [dataclasses.replace(c, train=Wider(**vars(c.train))) for c in configs]
    assert [(cfg.identity(c), cfg.member_identity(c, cfg.members(c)[0])) for c in widened] == before
    moved = dataclasses.replace(widened[0], train=Wider(**vars(configs[0].train), warmup=5))
    assert cfg.identity(moved) != before[0][0]  # off its default, the new field counts


def test_settings_round_trip_through_a_results_file_and_old_flat_files_still_load():
    c = api.make_config("buzzega2020-seq-mnist-200", strategy="derpp")
    assert cfg.from_dict(json.loads(json.dumps(cfg.to_dict(c)))) == c
    flat = {
        "name": "derpp",
        "memory": 200,
        "memory_per_class": 0,
        "replay_batch": 128,
        "ewc_lambda": 100.0,
        "ewc_gamma": 1.0,
        "fisher_samples": 0,
        "si_c": 1.0,
        "si_xi": 0.1,
        "lwf_alpha": 1.0,
        "lwf_temp": 2.0,
        "der_alpha": 0.2,
        "der_beta": 1.0,
    }  # a results.json written before strategies owned their settings
    old = cfg.from_dict({**cfg.to_dict(c), "strategy": flat})
    assert old.strategy == c.strategy
    with pytest.raises(ConfigError, match="not a setting of strategy 'derpp'"):
        cfg.from_dict({**cfg.to_dict(c), "strategy": {**flat, "si_c": 3.0}})


def test_mas_importance_is_the_mean_absolute_per_example_gradient(toy):
    """strategies.mas.importance against a slow reference: autograd example by example, member by member."""
    from types import SimpleNamespace

    from forgetlab.engine.models import build
    from forgetlab.strategies.mas import importance

    net = build(cfg.ModelConfig(hidden=(12, 7)), [0, 1], torch.zeros(2), "cpu")
    idx = torch.arange(0, 400, 23)
    omega = importance(SimpleNamespace(model=net, data=toy), idx, chunk=5)
    ref = [torch.zeros_like(p) for p in net.parameters()]
    for i in idx:
        net.zero_grad()
        net(toy.train.x[i].expand(2, 1, 784)).logits.pow(2).sum().backward()
        for r, p in zip(ref, net.parameters(), strict=True):
            r += p.grad.abs()
    for mine, slow in zip(omega, ref, strict=True):
        torch.testing.assert_close(mine, slow / len(idx), rtol=1e-5, atol=1e-7)


def test_mas_with_lambda_zero_is_naive_and_its_penalty_holds_weights_near_the_anchor(toy):
    runs = {lam: train(_config(**{"strategy.name": "mas", "strategy.mas.lam": lam}), toy) for lam in ("0", "1")}
    assert runs["0"].members[0].acc_matrix == train(_config(), toy).members[0].acc_matrix
    # with the penalty, the weights move less during the second task than without it
    first = train(_config(**{"protocol.tasks": "[[0,1]]"}), toy).model
    moved = {
        lam: sum(
            float((p - q).detach().pow(2).sum()) for p, q in zip(r.model.parameters(), first.parameters(), strict=True)
        )
        for lam, r in runs.items()
    }
    assert moved["1"] < moved["0"]
