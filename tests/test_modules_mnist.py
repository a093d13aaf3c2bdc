"""User modules on real MNIST: the study's MLP pasted into a file learns what the built-in MLP learns, and a
LeNet-like module with replay lands where the built-in LeNet-5 does (3 seeds each, short runs)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from forgetlab import api, cli
from user_modules.lenet import LeNet
from user_modules.study_mlp import MLP

pytestmark = pytest.mark.mnist
STUDY_MLP = Path(__file__).parent / "user_modules" / "study_mlp.py"
SEEDS = [0, 1, 2]


def final_acc(res) -> np.ndarray:
    return np.array([m.tasks[-1].val_acc[-1] for m in res.members])


def assert_within_seed_noise(a: np.ndarray, b: np.ndarray, floor: float) -> None:
    """Means differ by at most 3 standard errors of their difference (or ``floor``, when both spreads are tiny)."""
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert abs(a.mean() - b.mean()) <= max(3 * se, floor), (a, b)


def test_the_study_mlp_from_a_file_learns_what_the_built_in_mlp_learns(mnist_dir, tmp_path, capsys):
    common = dict(seeds=SEEDS, epochs=1, data_dir=mnist_dir, progress=False)
    builtin = api.run("mlp-concurrent", save=False, **common)
    from_api = api.run("mlp-concurrent", model=MLP, save=False, **common)
    assert_within_seed_noise(final_acc(builtin), final_acc(from_api), floor=0.005)
    assert final_acc(from_api).min() > 0.94

    out = tmp_path / "cli"
    code = cli.main(
        [
            "run",
            "mlp-concurrent",
            "--set",
            f"model.module={STUDY_MLP}:MLP",
            "--seeds",
            "0",
            "1",
            "2",
            "--epochs",
            "1",
            "--data-dir",
            str(mnist_dir),
            "--out",
            str(out),
            "--no-progress",
            "--table",
            "none",
        ]
    )
    assert code == 0, capsys.readouterr().err
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["model"]["module"] == f"{STUDY_MLP}:MLP"
    cli_acc = np.array([m["tasks"][-1]["val_acc"][-1] for m in res["members"]])
    np.testing.assert_allclose(cli_acc, final_acc(from_api), atol=1e-6)  # the same members, the same numbers


@pytest.mark.parametrize("strategy", ["er", "derpp"])
def test_a_lenet_like_module_with_replay_lands_where_the_built_in_lenet_does(mnist_dir, strategy):
    # short: 100 steps per task, evaluated on a 5% hold-out of the training set
    set_ = {
        f"strategy.{strategy}.memory": "200",
        "train.iters": "100",
        "data.eval_split": "holdout",
        "data.holdout_fraction": "0.05",
    }
    common = dict(seeds=SEEDS, data_dir=mnist_dir, progress=False, save=False, strategy=strategy)
    builtin = api.run("lenet-sequential", set=set_, **common)
    user = api.run("lenet-sequential", model=LeNet, set={**set_, "model.module_input": "image"}, **common)
    assert len(user.members[0].tasks) == 5 and user.model.hidden_units == (120, 84)
    assert_within_seed_noise(final_acc(builtin), final_acc(user), floor=0.02)
    assert final_acc(user).min() > 0.5  # far above the 0.2 of forgetting everything but the last task
