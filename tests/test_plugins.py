"""Components from outside the package: a strategy from a file or a module, run from the shell and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgetlab import api, cli
from forgetlab import config as cfg
from forgetlab.errors import ConfigError
from forgetlab.outputs.results import load
from forgetlab.strategies import STRATEGIES

HERE = Path(__file__).resolve().parent
FILE_SPEC = f"{HERE / 'user_modules' / 'half_replay.py'}:HalfReplay"


def test_a_strategy_from_a_file_is_registered_under_its_name_and_recorded_as_a_plugin():
    config = api.make_config("mlp-sequential", strategy=FILE_SPEC, set={"strategy.half-replay.memory": 40})
    assert config.strategy.name == "half-replay" and config.strategy.params.memory == 40
    assert config.plugins == (str(HERE / "user_modules" / "half_replay.py"),)
    assert "half-replay" in STRATEGIES
    again = cfg.from_dict(cfg.to_dict(config))  # what a worker or `forgetlab show` reads back
    assert again == config and cfg.identity(again) == cfg.identity(config)


def test_the_cli_runs_a_strategy_from_a_file_and_show_reads_the_run_back(toy, tmp_path, monkeypatch, capsys):
    from forgetlab.data import sources as data_sources

    monkeypatch.setattr(data_sources, "load_data", lambda config, device: toy)
    out = tmp_path / "run"
    args = [
        "run",
        "mlp-sequential",
        "--strategy",
        FILE_SPEC,
        "--seeds",
        "0",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--set",
        "protocol.tasks=[[0,1],[2,3]]",
        "--set",
        "strategy.half-replay.memory=20",
        "--set",
        "strategy.half-replay.share=0.25",
        "--no-progress",
        "--table",
        "none",
        "--out",
        str(out),
    ]
    assert cli.main(args) == 0
    res = load(out)
    assert res.config.strategy.name == "half-replay" and res.config.strategy.params.share == 0.25
    assert len(res.members[0].acc_matrix) == 2


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nope.py:X", "does not exist"),
        (f"{HERE / 'user_modules' / 'half_replay.py'}:Missing", "has no attribute 'Missing'"),
        ("no_such_package.mod:X", "importing no_such_package.mod failed"),
        (f"{HERE / 'user_modules' / 'half_replay.py'}:HalfSettings", "is not a forgetlab.strategies.Strategy"),
    ],
)
def test_a_bad_strategy_spec_is_one_line(spec, message):
    with pytest.raises(ConfigError, match=message):
        api.make_config("mlp-sequential", strategy=spec)


def test_a_module_spec_is_found_from_the_working_directory(monkeypatch, tmp_path):
    pkg = tmp_path / "mystrategies"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "plain.py").write_text(
        "from forgetlab.strategies.base import Strategy\n\nclass PlainFineTuning(Strategy):\n    pass\n"
    )
    monkeypatch.chdir(tmp_path)
    config = api.make_config("mlp-sequential", strategy="mystrategies.plain:PlainFineTuning")
    assert config.strategy.name == "PlainFineTuning" and config.plugins == ("mystrategies.plain",)
