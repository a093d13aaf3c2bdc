import pytest

from forgetlab import config as cfg
from forgetlab.api import make_config
from forgetlab.config import presets
from forgetlab.errors import ConfigError


def test_presets_cover_the_study():
    expected = {
        "mlp-concurrent",
        "mlp-sequential",
        "mlp-bn-concurrent",
        "mlp-bn-sequential",
        "mlp-ln-sequential",
        "mlp-dropout-sequential",
        "mlp-l1-concurrent",
        "mlp-l1-sequential",
        "lenet-concurrent",
        "lenet-sequential",
    }
    assert expected <= set(presets.PRESETS)
    c = presets.get("mlp-l1-concurrent")
    assert c.tasks == (tuple(range(10)),)
    assert dict(c.grid)["train.l1"] == (0.0, 0.001, 0.1, 1.0, 2.0)
    assert presets.get("mlp-dropout-sequential").model.dropout == 0.5
    assert presets.get("mlp-sequential").tasks == ((1, 2), (3, 4), (5, 6), (7, 8), (9, 0))


def test_defaults_are_the_documented_ones():
    t = presets.get("mlp-sequential").train
    assert (t.optimizer, t.lr, t.momentum, t.batch_size, t.epochs) == ("sgd", 0.01, 0.9, 64, 5)
    assert presets.get("mlp-sequential").seeds == (0, 1, 2, 3, 4)


def test_members_cross_grid_and_seeds_in_order():
    c = make_config("mlp-l1-sequential", seeds=[3, 4])
    ms = cfg.members(c)
    assert [(m.hparams["train.l1"], m.seed) for m in ms] == [(0.0, 3), (0.0, 4), (1.0, 3), (1.0, 4)]
    assert all(m.hparams["train.lr"] == 0.01 for m in ms)


def test_override_parses_types():
    c = make_config(
        "mlp-sequential",
        set=["model.hidden=256,128", "protocol.tasks=[[0,1],[2,3]]", "train.epochs=2", "data.download=false"],
    )
    assert c.model.hidden == (256, 128)
    assert c.protocol.tasks == ((0, 1), (2, 3))
    assert c.train.epochs == 2 and c.data.download is False


def test_config_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[train]\nlr = 0.05\n[model]\nnorm = "batch"\n[grid]\n"train.l1" = [0, 0.5]\n')
    c = make_config("mlp-sequential", config_file=p)
    assert c.train.lr == 0.05 and c.model.norm == "batch" and dict(c.grid)["train.l1"] == (0.0, 0.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"set": ["protocol.tasks=[[1,2],[2,3]]"]}, "class 2 appears in more than one task"),
        ({"set": ["protocol.tasks=[[1,11]]"]}, "class 11 is out of range"),
        ({"set": ["protocol.tasks=[[1],[]]"]}, "every task needs a class"),
        ({"set": ["train.l1=-0.1"]}, "L1 lambda must be >= 0"),
        ({"set": ["model.dropout=1.5"]}, "must be in [0, 1)"),
        ({"set": ["model.norm=group"]}, "choose one of: none, batch, layer"),
        ({"set": ["train.epochs=two"]}, "is not a valid int"),
        ({"set": ["train.nope=1"]}, "unknown config key 'train.nope'"),
        ({"grid": {"model.hidden": "1,2"}}, "cannot vary 'model.hidden'"),
        ({"grid": {"train.l1": "0,-1"}}, "L1 lambda must be >= 0"),
        ({"seeds": [1, 1]}, "distinct"),
    ],
)
def test_impossible_configs_are_named(kwargs, message):
    with pytest.raises(ConfigError) as e:
        make_config("mlp-sequential", **kwargs)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'mlp-seq'; valid: mlp-concurrent"):
        make_config("mlp-seq")


def test_identities_ignore_presentation_but_not_numbers():
    a = make_config("mlp-sequential", seeds=[1])
    b = cfg.override(cfg.override(a, "name", "other"), "device", "cpu")
    assert cfg.identity(a) == cfg.identity(b)
    assert cfg.identity(a) != cfg.identity(cfg.override(a, "train.lr", "0.02"))
    l1 = make_config("mlp-l1-sequential", seeds=[0, 1])
    m = cfg.members(l1)[1]  # l1 = 0, seed 1: the same member as plain mlp-sequential with seed 1
    assert cfg.member_identity(l1, m) == cfg.member_identity(a, cfg.members(a)[0])


def test_concurrent_permuted_mnist_is_one_task_of_every_permutation():
    from forgetlab import api

    c = api.make_config("buzzega2020-perm-mnist-500", set={"protocol.permuted": 3, "protocol.kind": "concurrent"})
    assert c.tasks == (tuple(range(30)),)
    assert len(api.make_config("buzzega2020-perm-mnist-500", set={"protocol.permuted": 3}).tasks) == 3
