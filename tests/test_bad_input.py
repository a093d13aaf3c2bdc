"""Every command against bad input: one line 'error: ...' naming the value and what would be valid, exit 2
(130 after Ctrl-C), no traceback, nothing half-written."""

from __future__ import annotations

import json

import pytest

from forgetlab import api, cli
from forgetlab.config import presets
from forgetlab.data import sources as data_sources
from forgetlab.outputs import results
from forgetlab.workflows import executors, summary

SCHEMA = results.SCHEMA_VERSION


def run_cli(capsys, argv):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, fragments):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.fixture(scope="module")
def good_run_dir(tmp_path_factory):
    """A real, complete run directory with probes (toy data); the cases below damage copies of it."""
    from conftest import synthetic

    out = tmp_path_factory.mktemp("good") / "run"
    api.run(
        "mlp-sequential",
        seeds=[0],
        epochs=1,
        out=out,
        progress=False,
        dataset=synthetic(),
        probes=True,
        set={"protocol.tasks": "[[0,1],[2,3]]"},
    )
    return out


@pytest.fixture(scope="module")
def good_run(good_run_dir):
    return json.loads((good_run_dir / "results.json").read_text())


def _damaged(good: dict) -> dict[str, str]:
    """results.json texts: each a way a file can be wrong."""

    def edit(fn):
        d = json.loads(json.dumps(good))
        fn(d)
        return json.dumps(d)

    return {
        "empty": "",
        "truncated": json.dumps(good)[:200],
        "binary": "\x00\x01\x02",
        "foreign-list": "[1, 2, 3]",
        "foreign-object": '{"epochs": 5, "loss": 0.1}',
        "newer-schema": edit(lambda d: d.update(schema=SCHEMA + 1)),
        "schema-string": edit(lambda d: d.update(schema="1")),
        "no-members": edit(lambda d: d.pop("members")),
        "members-not-list": edit(lambda d: d.update(members="all")),
        "seed-not-int": edit(lambda d: d["members"][0].update(seed="zero")),
        "hparam-nan": edit(lambda d: d["members"][0]["hparams"].update({"train.lr": float("nan")})),
        "task-unknown-key": edit(lambda d: d["members"][0]["tasks"][0].update(bogus=[1])),
        "task-field-not-list": edit(lambda d: d["members"][0]["tasks"][0].update(val_acc=0.5)),
        "acc-matrix-strings": edit(lambda d: d["members"][0].update(acc_matrix=[["a"]])),
        "status-unknown": edit(lambda d: d.update(status="running")),
        "config-unknown-key": edit(lambda d: d["config"]["train"].update(lrr=0.1)),
        "config-wrong-type": edit(lambda d: d["config"]["train"].update(lr="fast")),
        "config-inf": edit(lambda d: d["config"]["train"].update(lr=float("inf"))),
        "config-out-of-range": edit(lambda d: d["config"]["train"].update(epochs=-1)),
        "no-config": edit(lambda d: d.pop("config")),
    }


EXPECT = {  # case -> fragments of the one error line
    "empty": ["not valid JSON"],
    "truncated": ["not valid JSON"],
    "binary": ["not valid JSON"],
    "foreign-list": ["not a forgetlab file"],
    "foreign-object": ["not a forgetlab file"],
    "newer-schema": [f"schema {SCHEMA + 1}", "upgrade forgetlab"],
    "schema-string": ["no integer 'schema'"],
    "no-members": ["'members' list"],
    "members-not-list": ["'members' list"],
    "seed-not-int": ["integer 'seed'"],
    "hparam-nan": ["finite numbers"],
    "task-unknown-key": ["bogus"],
    "task-field-not-list": ["must be a list"],
    "acc-matrix-strings": ["acc_matrix"],
    "status-unknown": ["status"],
    "config-unknown-key": ["unknown config key 'train.lrr'"],
    "config-wrong-type": ["train.lr='fast'"],
    "config-inf": ["train.lr=inf is not a finite number"],
    "config-out-of-range": ["train.epochs=-1 must be >= 1"],
    "no-config": ["missing 'config'"],
}


@pytest.mark.parametrize("command", [["show"], ["show", "--table", "last"], ["plot"]])
@pytest.mark.parametrize("case", list(EXPECT))
def test_a_damaged_results_file(capsys, tmp_path, good_run, command, case):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(_damaged(good_run)[case])
    before = sorted(p.name for p in run_dir.iterdir())
    code, out, err = run_cli(capsys, [command[0], str(run_dir), *command[1:]])
    assert_one_line_error(code, err, [str(run_dir / "results.json"), *EXPECT[case]])
    assert out == "" and sorted(p.name for p in run_dir.iterdir()) == before  # nothing written


@pytest.mark.parametrize("command", ["show", "plot", "summarize"])
@pytest.mark.parametrize(
    "where, fragments",
    [
        ("missing", ["does not exist"]),
        ("a-file", ["is a file, not a directory"]),
        ("empty-dir", ["does not exist"]),
    ],
)
def test_a_missing_file_or_empty_directory_where_a_directory_is_expected(capsys, tmp_path, command, where, fragments):
    path = tmp_path / where
    if where == "a-file":
        path.write_text("results")
    elif where == "empty-dir":
        path.mkdir()
    code, _, err = run_cli(capsys, [command, str(path)])
    what = "forgetlab sweep" if command == "summarize" else "forgetlab run"
    assert_one_line_error(code, err, [str(path), *fragments, what])


def test_a_results_file_without_probes_cannot_be_plotted(capsys, tmp_path, good_run):
    (tmp_path / "results.json").write_text(json.dumps(good_run))
    code, _, err = run_cli(capsys, ["plot", str(tmp_path)])
    assert_one_line_error(code, err, ["no probes.json/probes.npz", "--probes"])
    assert not (tmp_path / "figures").exists()


SWEEP_FILES = {
    "empty": ("", ["not valid JSON"]),
    "truncated": ('{"schema": 1, "name": "mlp-seq', ["not valid JSON"]),
    "foreign": ('{"members": []}', ["not a forgetlab file"]),
    "newer-schema": ('{"schema": 7, "base": {}, "axes": [], "seeds": [0], "members": []}', ["schema 7", "upgrade"]),
    "missing-keys": ('{"schema": 1, "name": "x"}', ["needs 'base', 'axes', 'seeds' and 'members'"]),
    "axes-wrong-type": ('{"schema": 1, "base": {}, "axes": [5], "seeds": [0], "members": []}', ["'axes'"]),
    "axis-unknown-key": (
        '{"schema": 1, "base": {}, "axes": [["train.lrr", [1]]], "seeds": [0], "members": []}',
        ["unknown config key 'train.lrr'"],
    ),
    "axis-non-finite": (
        '{"schema": 1, "base": {}, "axes": [["train.lr", [Infinity]]], "seeds": [0], "members": []}',
        ["not a finite number"],
    ),
    "base-out-of-range": (
        '{"schema": 1, "base": {"train": {"batch_size": 0}}, "axes": [], "seeds": [0], "members": []}',
        ["train.batch_size=0 must be >= 2"],
    ),
}


@pytest.mark.parametrize("command", [["summarize"], ["sweep", "--resume", "--out"]])
@pytest.mark.parametrize("case", list(SWEEP_FILES))
def test_a_damaged_sweep_file(capsys, tmp_path, command, case):
    text, fragments = SWEEP_FILES[case]
    (tmp_path / "sweep.json").write_text(text)
    code, out, err = run_cli(capsys, [*command, str(tmp_path)])
    assert_one_line_error(code, err, fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.json"]  # no tables, no members folder


CONFIG_FILES = {  # name -> (text, fragments)
    "empty.json": ("", ["not valid json"]),
    "truncated.json": ('{"train": {"lr": 0.', ["not valid json"]),
    "list.json": ("[1, 2]", ["must hold a table/object"]),
    "truncated.toml": ("[train\nlr = 0.1", ["not valid toml"]),
    "unknown-key.json": ('{"train": {"lrr": 0.1}}', ["unknown config key 'train.lrr'"]),
    "unknown-section.toml": ("[trian]\nlr = 0.1\n", ["unknown config key"]),
    "wrong-type.json": ('{"train": {"epochs": "five"}}', ["train.epochs='five'", "int"]),
    "nan.json": ('{"train": {"lr": NaN}}', ["train.lr=nan"]),
    "inf.toml": ("[train]\nmomentum = inf\n", ["train.momentum=inf is not a finite number"]),
    "negative.json": ('{"train": {"weight_decay": -1}}', ["train.weight_decay=-1 must be >= 0"]),
    "out-of-range.toml": ("[model]\ndropout = 1.0\n", ["model.dropout=1", "[0, 1)"]),
    "bad-class.json": ('{"protocol": {"tasks": [[0, 12]]}}', ["class 12 is out of range", "0-9"]),
    "bad-grid.json": ('{"grid": {"model.hidden": [1, 2]}}', ["cannot vary 'model.hidden'"]),
}


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("name", list(CONFIG_FILES))
def test_a_bad_config_file(capsys, tmp_path, command, name):
    text, fragments = CONFIG_FILES[name]
    (tmp_path / name).write_text(text)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, [command, "mlp-sequential", "--config", str(tmp_path / name), "--out", str(out)])
    assert_one_line_error(code, err, fragments)
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["run", "mlp-sequential", "--lr", "inf"], ["train.lr=inf is not a finite number"]),
        (["run", "mlp-sequential", "--lr", "nan"], ["train.lr=nan is not a finite number"]),
        (["run", "mlp-sequential", "--lr", "-0.1"], ["train.lr=-0.1 must be > 0"]),
        (["run", "mlp-sequential", "--epochs", "0"], ["train.epochs=0 must be >= 1"]),
        (["run", "mlp-sequential", "--batch-size", "1"], ["train.batch_size=1 must be >= 2"]),
        (["run", "mlp-sequential", "--seeds", "0", "0"], ["seeds=[0, 0] must be distinct non-negative"]),
        (["run", "mlp-sequential", "--seeds", "-1"], ["seeds=[-1]"]),
        (["run", "mlp-sequential", "--set", "train.momentum=1"], ["train.momentum=1 must be in [0, 1)"]),
        (["run", "mlp-sequential", "--set", "data.holdout_fraction=0"], ["data.holdout_fraction=0 must be in (0, 1)"]),
        (["run", "mlp-sequential", "--set", "model.hidden=[]"], ["model.hidden=[]"]),
        (["run", "mlp-sequential", "--set", "protocol.tasks=[[]]"], ["every task needs a class"]),
        (["run", "mlp-sequential", "--set", "train.bogus=1"], ["unknown config key 'train.bogus'"]),
        (["run", "mlp-sequential", "--set", "train.epochs=2.5"], ["train.epochs='2.5' is not a valid int"]),
        (["run", "mlp-sequential", "--grid", "train.l1=0,inf"], ["train.l1='inf' is not a finite number"]),
        (["run", "mlp-sequential", "--strategy", "nope"], ["unknown strategy 'nope'", "naive"]),
        (["run", "mlp-sequential", "--table", "some"], ["invalid choice: 'some'"]),
        (["run"], ["PRESET"]),
        (["show"], ["RUN_DIR"]),
        (["plot"], ["RUN_DIR"]),
        (["plot", "x", "--latent-tasks", "first"], ["invalid choice: 'first'"]),
        (["summarize"], ["SWEEP_DIR"]),
        (["summarize", "x", "--err", "sem"], ["invalid choice: 'sem'"]),
        (["sweep", "mlp-sequential", "--grid", "train.lr=nan", "--dry-run"], ["train.lr='nan' is not a finite number"]),
        (["sweep", "mlp-sequential", "--grid", "seeds=1,2", "--dry-run"], ["cannot sweep 'seeds'"]),
        (["sweep", "mlp-sequential", "--grid", "train.lr=0.1", "--grid", "train.lr=0.2", "--dry-run"], ["given twice"]),
        (["sweep", "mlp-sequential", "--threads", "0", "--dry-run"], ["--threads 0 must be >= 1"]),
        (["sweep"], ["give a PRESET, or --resume --out"]),
        (["sweep", "mlp-sequential", "--executor", "slurm"], ["invalid choice: 'slurm'"]),
        (["compare", "mlp-sequential"], ["--strategies"]),
        (["compare", "mlp-sequential", "--strategies", ","], ["names no strategy", "naive"]),
        (["compare", "mlp-sequential", "--strategies", "naive,nope"], ["unknown strategy 'nope'"]),
        (["compare", "mlp-sequentail", "--strategies", "naive"], ["unknown preset 'mlp-sequentail'"]),
        (["compare", "mlp-sequential", "--strategies", "naive", "--seeds", "1", "1"], ["seeds=[1, 1]"]),
        (["reproduce", "--seeds", "-1"], ["seeds=[-1]"]),
        (["reproduce", "--seeds", "two"], ["invalid int value: 'two'"]),
        (["reproduce", "--device", "tpu"], ["invalid choice: 'tpu'"]),
        (["reproduce", "--threads", "0"], ["--threads 0 must be >= 1"]),
        (["reproduce", "--workers", "0"], ["--workers 0 must be >= 1"]),
        (["reproduce", "--epochs", "0"], ["train.epochs=0 must be >= 1"]),
        (["reproduce", "--data-dir", "nowhere"], ["data directory nowhere does not exist"]),
        (["compare", "mlp-sequential", "--strategies", "naive", "--gap-steps", "-1"], ["--gap-steps -1 must be >= 0"]),
        (["compare", "mlp-sequential", "--strategies", "naive", "--workers", "0"], ["--workers 0 must be >= 1"]),
        (
            ["compare", "mlp-sequential", "--strategies", "naive", "--data-dir", "nowhere"],
            ["data directory nowhere does not exist"],
        ),
        (["sweep", "mlp-sequential", "--workers", "0"], ["--workers 0 must be >= 1"]),
        (["presets", "extra"], ["unrecognized arguments: extra"]),
        (["run", "mlp-sequential", "--epochs"], ["expected one argument"]),
    ],
)
def test_bad_options(capsys, tmp_path, monkeypatch, argv, fragments):
    monkeypatch.chdir(tmp_path)  # nothing may appear in the working directory either
    code, out, err = run_cli(capsys, argv)
    assert_one_line_error(code, err, fragments)
    assert out == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "mlp-sequential", "--out", "{blocker}/run"],
        ["run", "mlp-sequential", "--out", "{blocker}"],
        ["sweep", "mlp-sequential", "--epochs", "1", "--out", "{blocker}/sweep", "--no-progress"],
        ["compare", "mlp-sequential", "--strategies", "naive", "--out", "{blocker}/cmp"],
        ["reproduce", "--out", "{blocker}/rep"],
    ],
)
def test_an_output_under_a_file_is_refused_before_any_work(capsys, tmp_path, argv, mnist_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    argv = [a.replace("{blocker}", str(blocker)) for a in argv] + ["--data-dir", str(mnist_dir)]
    code, _, err = run_cli(capsys, argv)
    assert_one_line_error(code, err, ["a-file", "--out"])
    assert blocker.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_plot_out_under_a_file(capsys, tmp_path, good_run_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, ["plot", str(good_run_dir), "--out", str(blocker / "figs")])
    assert_one_line_error(code, err, ["cannot write to output directory", "a-file"])
    assert not (good_run_dir / "figures").exists()


# --- Ctrl-C: exit 130, one line, what finished is kept ------------------------------------------


def _interrupt(*a, **k):
    raise KeyboardInterrupt


class _InterruptedPresets(dict):
    def items(self):
        raise KeyboardInterrupt


@pytest.mark.parametrize(
    "argv, target",
    [
        (["run", "mlp-sequential"], (api, "run")),
        (["show", "r"], (results, "load")),
        (["plot", "r"], (results, "load")),
        (["summarize", "s"], (summary, "summarize")),
        (
            ["sweep", "mlp-sequential", "--epochs", "1", "--out", "s", "--no-progress", "--workers", "1"],
            (executors, "train_group"),
        ),
        (["compare", "mlp-sequential", "--strategies", "naive", "--out", "c", "--workers", "1"], (api, "run")),
        (["reproduce", "--out", "rep", "--workers", "1"], (api, "run")),
        (["presets"], (presets, "PRESETS", _InterruptedPresets(a=1))),
    ],
)
def test_ctrl_c_is_exit_130_and_one_line(capsys, tmp_path, monkeypatch, mnist_dir, argv, target):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(*target[:2], target[2] if len(target) > 2 else _interrupt)
    if argv[0] in ("run", "sweep", "compare", "reproduce"):
        argv = [*argv, "--data-dir", str(mnist_dir)]
    code, out, err = run_cli(capsys, argv)
    assert code == 130, err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("interrupted") and "Traceback" not in err


@pytest.mark.parametrize("value, expect", [("cpu", "cpu"), ("", None), ("tpu", "error")])
def test_forgetlab_device_picks_the_device_of_auto(monkeypatch, value, expect):
    import torch

    monkeypatch.setenv("FORGETLAB_DEVICE", value)
    if expect == "error":
        with pytest.raises(results.ForgetlabError, match="FORGETLAB_DEVICE='tpu' is not valid; set it to cpu or cuda"):
            data_sources.resolve_device("auto")
        return
    want = expect or ("cuda" if torch.cuda.is_available() else "cpu")
    assert data_sources.resolve_device("auto") == torch.device(want) and data_sources.resolve_device(
        "cpu"
    ) == torch.device("cpu")


def test_csv_rows_with_different_keys_keep_every_column():
    text = results.rows_to_csv([{"a": 1, "h1": 0.5}, {"a": 2, "h1": 0.25, "h2": 0.75}])
    assert text.splitlines() == ["a,h1,h2", "1,0.5,", "2,0.25,0.75"]


def test_show_and_plot_work_in_a_fresh_process(good_run_dir, tmp_path):
    """A saved config names its strategy: reading it must register the strategies first (a new process
    has imported none of them)."""
    import subprocess
    import sys

    for argv in (["show", str(good_run_dir), "--table", "last"], ["plot", str(good_run_dir), "--out", str(tmp_path)]):
        out = subprocess.run([sys.executable, "-m", "forgetlab", *argv], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and "error" not in out.stderr, out.stderr
    assert (
        "mlp-sequential"
        in subprocess.run(
            [sys.executable, "-m", "forgetlab", "show", str(good_run_dir)], capture_output=True, text=True, timeout=300
        ).stdout
    )
    assert list(tmp_path.glob("*.png"))
