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


# --- plug-ins in worker processes, --plugin, entry points, model.module from the working directory ----------

PLUGINS = str(HERE / "user_modules" / "toy_plugins.py")  # a dataset (toy-clusters) and a preset (toy-sequential)


def _members(path) -> list:
    import json

    return json.loads((path / "results.json").read_text())["members"]


def test_plugin_registers_a_preset_and_a_dataset_that_run_trains_on(tmp_path, capsys):
    assert cli.main(["presets", "--plugin", PLUGINS]) == 0
    assert any(line.startswith("toy-sequential ") for line in capsys.readouterr().out.splitlines())
    args = ["run", "toy-sequential", "--plugin", PLUGINS, "--seeds", "0", "--no-progress", "--table", "none"]
    assert cli.main([*args, "--out", str(tmp_path / "run")]) == 0
    res = load(tmp_path / "run")
    assert res.config.data.dataset == "toy-clusters" and res.config.plugins == (PLUGINS,)
    assert list(res.members[0].tasks[0].classes) == [0, 1] and len(res.members[0].acc_matrix) == 2
    # what the registered loader returns: 30 training and 10 evaluation examples of each of the ten classes
    from forgetlab.data import registry

    toy = registry.load("toy-clusters", tmp_path)
    assert len(toy.train) == 300 and len(toy.eval) == 100 and toy.name == "toy-clusters"


def test_compare_and_sweep_import_the_plugins_again_in_worker_processes(tmp_path, monkeypatch):
    """Two workers (fresh interpreters) must import the dataset and the strategy files before their jobs:
    the same numbers as one worker, which trains in this process."""
    monkeypatch.chdir(tmp_path)
    common = ["--plugin", PLUGINS, "--seeds", "0", "1", "--no-progress", "--set", "strategy.half-replay.memory=20"]
    for w in ("1", "2"):
        compare = ["compare", "toy-sequential", "--strategies", f"naive,{FILE_SPEC}", "--gap-steps", "2"]
        assert cli.main([*compare, *common, "--workers", w, "--out", f"cmp{w}"]) == 0
        sweep = ["sweep", "toy-sequential", "--strategy", FILE_SPEC, "--grid", "strategy.half-replay.share=0.25,0.5"]
        assert cli.main([*sweep, *common, "--workers", w, "--out", f"sw{w}"]) == 0
    for name in ("naive", "half-replay"):
        one, two = _members(tmp_path / "cmp1" / name), _members(tmp_path / "cmp2" / name)
        assert len(one) == 2 and one == two
    assert load(tmp_path / "cmp2" / "half-replay").config.strategy.params.memory == 20
    assert load(tmp_path / "cmp2" / "naive").config.strategy.name == "naive"
    stored = sorted(p.name for p in (tmp_path / "sw1" / "members").glob("*.json"))
    assert len(stored) == 4 and stored == sorted(p.name for p in (tmp_path / "sw2" / "members").glob("*.json"))
    for name in stored:
        a, b = ((tmp_path / f"sw{w}" / "members" / name).read_text() for w in "12")
        assert _acc(a) == _acc(b)


def _acc(record: str):
    import json

    data = json.loads(record)
    return data["acc_matrix"], data["tasks"]


ENTRY_PACKAGE = '''
import torch

from forgetlab.data import from_arrays
from forgetlab.strategies.base import Strategy


class Plain(Strategy):
    """Fine-tuning, registered by its entry point's name."""


PRESET = {"description": "a third-party preset", "train": {"epochs": 1, "lr": 0.05}}
PROBE = object()


def load(root, **options):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 784, generator=g), torch.arange(10).repeat(4)
    return from_arrays(x, y, x[:20], y[:20], name="third-party", **options)
'''
ENTRY_MODULE = '''
from forgetlab.strategies import register
from forgetlab.strategies.base import Strategy


@register("thirdparty-decorated")
class Decorated(Strategy):
    """Registered by its own decorator when the entry point's module is imported."""
'''
ENTRY_POINTS = """[forgetlab.strategies]
thirdparty-plain = fl_thirdparty:Plain
thirdparty-module = fl_thirdparty.decorated

[forgetlab.presets]
thirdparty-preset = fl_thirdparty:PRESET

[forgetlab.datasets]
thirdparty-data = fl_thirdparty:load

[forgetlab.diagnostics]
thirdparty-probe = fl_thirdparty:PROBE
"""


def test_entry_points_of_an_installed_package_are_found_by_name(tmp_path, monkeypatch):
    """A package on sys.path with a *.dist-info holding entry_points.txt, as pip install --target leaves it."""
    import sys

    import torch

    from forgetlab import plugins
    from forgetlab.config.presets import PRESETS
    from forgetlab.config.strategy import STRATEGY_SETTINGS
    from forgetlab.data import DATASETS
    from forgetlab.data import sources as data_sources

    site = tmp_path / "site"
    (site / "fl_thirdparty").mkdir(parents=True)
    (site / "fl_thirdparty" / "__init__.py").write_text(ENTRY_PACKAGE)
    (site / "fl_thirdparty" / "decorated.py").write_text(ENTRY_MODULE)
    dist = site / "fl_thirdparty-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fl-thirdparty\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_LOADED_GROUPS", set())  # as in a fresh process
    for registry in (STRATEGIES, STRATEGY_SETTINGS, PRESETS, DATASETS):  # what this test registers goes again
        monkeypatch.setattr(registry, "_items", dict(registry._items))
    seen = []
    monkeypatch.setitem(plugins._ADOPTERS, "diagnostics", lambda name, obj: seen.append((name, obj)))

    assert "thirdparty-plain" in STRATEGIES and "thirdparty-decorated" in STRATEGIES
    assert STRATEGIES["thirdparty-plain"] is sys.modules["fl_thirdparty"].Plain
    assert PRESETS["thirdparty-preset"].description == "a third-party preset"
    config = api.make_config(
        "thirdparty-preset", strategy="thirdparty-plain", seeds=[0], set={"data.dataset": "thirdparty-data"}
    )
    assert (config.strategy.name, config.train.epochs, config.train.lr) == ("thirdparty-plain", 1, 0.05)
    data = data_sources.load_data(config, torch.device("cpu"))
    assert data.name == "third-party" and len(data.train) == 40 and data.n_classes == 10
    plugins.load_entry_points("diagnostics")
    assert seen == [("thirdparty-probe", sys.modules["fl_thirdparty"].PROBE)]


SMALL_NET = """
import torch.nn as nn
import torch.nn.functional as F


class Small(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.fc1, self.head = nn.Linear(784, 16), nn.Linear(16, n_classes)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return self.head(h), h
"""


def test_model_module_from_the_working_directory_needs_no_pythonpath(tmp_path, monkeypatch, toy):
    """The console script does not put the working directory on sys.path; model.module=package.module:Class
    is found there anyway, and trains the same numbers as the same class named by its file."""
    import os
    import sys

    from forgetlab.data import sources as data_sources

    (tmp_path / "mynets").mkdir()
    (tmp_path / "mynets" / "__init__.py").write_text("")
    (tmp_path / "mynets" / "nets.py").write_text(SMALL_NET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", os.getcwd())])
    monkeypatch.setattr(data_sources, "load_data", lambda config, device: toy)
    base = ["run", "mlp-sequential", "--seeds", "0", "1", "--epochs", "1", "--no-progress", "--table", "none"]
    base += ["--set", "protocol.tasks=[[0,1],[2,3]]"]
    for name, spec in (("module", "mynets.nets:Small"), ("file", "mynets/nets.py:Small")):
        assert cli.main([*base, "--set", f"model.module={spec}", "--out", name]) == 0
    assert load(tmp_path / "module").config.model.module == "mynets.nets:Small"
    assert _members(tmp_path / "module") == _members(tmp_path / "file")
    assert os.getcwd() not in sys.path
