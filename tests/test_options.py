"""One meaning per option: the options several commands share are declared once and read the same in each;
`forgetlab keys` lists what --set accepts; a strategy.NAME.FIELD value applies to strategy NAME alone."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from forgetlab import cli
from forgetlab import config as cfg
from forgetlab.cli.options import CONFIG_OPTIONS, OPTIONS, config_options
from forgetlab.errors import ConfigError
from forgetlab.workflows.compare import strategy_configs

FILE_SPEC = f"{Path(__file__).resolve().parent / 'user_modules' / 'half_replay.py'}:HalfReplay"
TRAINING = ("run", "sweep", "compare", "reproduce")


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _declared(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: a for a in p._actions for flag in a.option_strings}


def test_a_shared_option_is_declared_the_same_in_every_command_that_takes_it():
    seen: dict[str, set] = {}
    for p in _commands().values():
        for flag, a in _declared(p).items():
            if flag.lstrip("-") in OPTIONS:
                meaning = (type(a).__name__, a.dest, a.type, a.nargs, a.choices, a.const, repr(a.default), a.metavar)
                seen.setdefault(flag, set()).add(meaning)
    assert set(seen) == {f"--{n}" for n in OPTIONS}
    assert {flag: len(m) for flag, m in seen.items() if len(m) > 1} == {}


@pytest.mark.parametrize("command", TRAINING)
def test_every_training_command_takes_every_configuration_option(command):
    declared = _declared(_commands()[command])
    expected = set(CONFIG_OPTIONS) - ({"strategy"} if command in ("compare", "reproduce") else set())
    expected |= {"out", "threads", "no-progress"} | ({"workers"} if command != "run" else set())
    assert {n for n in OPTIONS if f"--{n}" in declared} == expected


def test_the_configuration_options_read_the_same_in_every_training_command():
    argv = ["--seeds", "0", "1", "--epochs", "2", "--lr", "0.05", "--batch-size", "32", "--device", "cpu"]
    argv += ["--data-dir", "d", "--config", "c.toml", "--set", "train.l1=0.1", "--plugin", "p.py"]
    positional = {"run": ["mlp-sequential"], "sweep": ["mlp-sequential"], "compare": ["mlp-sequential"]}
    positional["compare"] += ["--strategies", "naive"]
    read = {c: config_options(cli.parser().parse_args([c, *positional.get(c, []), *argv])) for c in TRAINING}
    expected = dict(seeds=[0, 1], epochs=2, lr=0.05, batch_size=32, device="cpu", data_dir="d")
    expected |= dict(config_file="c.toml", set=["train.l1=0.1"], plugins=["p.py"])
    assert all(options == expected for options in read.values()), read


def test_reproduce_seeds_are_the_seeds_themselves(monkeypatch):
    from forgetlab.workflows import reproduce as report

    with pytest.raises(ConfigError, match=r"seeds=3: give the seeds themselves, e.g. \[0, 1, 2\]"):
        report.reproduce(seeds=3)
    assert report.overrides({"config_file": "c.toml", "lr": 0.001, "batch_size": 32, "set": ["train.l1=1"]}) == [
        "--config c.toml",
        "train.batch_size=32",
        "train.lr=0.001",
        "train.l1=1",
    ]
    got = {}
    monkeypatch.setattr(report, "reproduce", lambda **kw: got.update(kw) or Path("r"))
    assert cli.main(["reproduce", "--seeds", "3", "4", "--lr", "0.001", "--no-progress"]) == 0
    assert got["seeds"] == [3, 4] and got["lr"] == 0.001 and got["out"] == "reproduce"


def test_keys_lists_every_key_with_its_type_and_default(capsys):
    assert cli.main(["keys"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:] if "  " in line}
    for key in cfg.valid_keys():
        assert key in rows, key
    assert rows["train.lr"][1:] == ["*", "float", "0.01"] and rows["model.hidden"][1:] == [
        "tuple[int,",
        "...]",
        "[120,84]",
    ]
    assert rows["strategy.er.memory"][1:] == ["int", "0"] and rows["data.root"][1:] == ["str", '""']
    assert cli.main(["keys", "--strategy", FILE_SPEC]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split() == ["strategy.half-replay.share", "float", "0.5"] for line in lines)
    assert not any(line.startswith("strategy.er.") for line in lines)


def test_run_help_says_where_the_keys_are(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    assert "'forgetlab keys'" in " ".join(capsys.readouterr().out.split())


# --- compare: a strategy.NAME.FIELD value applies to strategy NAME only ------------------------------------


def test_a_strategy_setting_goes_to_its_strategy_alone():
    tasks = "protocol.tasks=[[0,1],[2,3]]"
    configs = strategy_configs(
        "mlp-sequential", ["naive", "er"], {"seeds": [0], "set": [tasks, "strategy.er.memory=200"]}
    )
    plain = strategy_configs("mlp-sequential", ["naive"], {"seeds": [0], "set": [tasks]})["naive"]
    assert list(configs) == ["naive", "er"]
    assert cfg.identity(configs["naive"]) == cfg.identity(plain) and configs["naive"] == plain
    assert configs["er"].strategy.params.memory == 200 and configs["er"].protocol.tasks == ((0, 1), (2, 3))


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["strategy.derpp.memory=200"], "strategy 'derpp' is not compared here (--strategies naive,er)"),
        (["strategy.name=er"], "--set strategy.name"),
        (["strategy.nope.memory=1"], "strategy 'nope' is not compared here"),
    ],
)
def test_a_strategy_setting_of_no_compared_strategy_is_one_line(pairs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        strategy_configs("mlp-sequential", ["naive", "er"], {"set": ["strategy.er.memory=200", *pairs]})


def test_run_says_whose_setting_it_is(capsys):
    assert cli.main(["run", "mlp-sequential", "--set", "strategy.er.memory=200"]) == 2
    err = capsys.readouterr().err
    assert "strategy.er.memory applies to strategy 'er' only, and this config's strategy is 'naive'" in err


def test_sweep_takes_a_strategy_and_sweeps_its_setting(capsys):
    argv = ["sweep", "mlp-sequential", "--strategy", "er", "--grid", "strategy.er.memory=20,40", "--dry-run"]
    assert cli.main([*argv, "--seeds", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert "4 members (2 strategy.er.memory x 2 seeds) in 2 batched programs" in out
    assert "strategy.er.memory=20" in out and "strategy.er.memory=40" in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["keys", "--strategy", "nope"], "unknown strategy 'nope'; valid: naive"),
        (["keys", "--plugin", "nowhere.py"], "plugin 'nowhere.py': file nowhere.py does not exist"),
        (["presets", "--plugin", "no_such_module"], "importing no_such_module failed (ModuleNotFoundError"),
    ],
)
def test_keys_and_presets_with_a_bad_name_are_one_line(capsys, argv, fragment):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
