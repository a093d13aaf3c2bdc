"""The command line, in-process: bad input gives one line and exit 2; runs write complete directories."""

import json

import pytest

from forgetlab import api, cli
from forgetlab.outputs.results import load


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0]


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["run", "mlp-sequential", "--set", "protocol.tasks=[[1,2],[2,3]]"], ["class 2 appears in more than one task"]),
        (["run", "mlp-sequential", "--set", "protocol.tasks=[[1,11]]"], ["class 11 is out of range", "0-9"]),
        (["run", "mlp-sequentail"], ["unknown preset 'mlp-sequentail'", "mlp-sequential"]),
        (["run", "mlp-l1-concurrent", "--grid", "train.l1=0,-1"], ["train.l1=-1", ">= 0"]),
        (["run", "mlp-sequential", "--set", "train.l1=-0.5"], ["train.l1=-0.5"]),
        (["run", "mlp-dropout-sequential", "--set", "model.dropout=1.5"], ["model.dropout=1.5", "[0, 1)"]),
        (["run", "mlp-sequential", "--seeds", "x"], ["invalid int value: 'x'"]),
        (["run", "mlp-sequential", "--device", "tpu"], ["invalid choice: 'tpu'"]),
        (["run", "mlp-sequential", "--bogus"], ["unrecognized arguments: --bogus"]),
        (["run", "mlp-sequential", "--set", "lr"], ["expected key=value"]),
        (["run", "mlp-sequential", "--config", "/nonexistent.toml"], ["cannot read config file /nonexistent.toml"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
        (["show", "/nonexistent-run"], ["/nonexistent-run/results.json does not exist"]),
    ],
)
def test_bad_input_is_one_line(capsys, argv, fragments):
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_missing_data_directory(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "run", "mlp-sequential", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")
    )
    assert_one_line_error(code, err, "data directory", "nowhere", "does not exist")


def test_corrupt_data_file(capsys, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (raw / name).write_bytes(b"\x00\x00\x08\x03garbage")
    code, _, err = run_cli(capsys, "run", "mlp-sequential", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "corrupt or truncated", str(raw))
    assert not (tmp_path / "o" / "results.json").exists()


def test_unwritable_output_directory(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "run", "mlp-sequential", "--out", str(blocker / "run"))
    assert_one_line_error(code, err, "cannot write to output directory", "a-file")


def test_presets_lists_every_preset_in_one_line_each(capsys):
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) >= 10 and lines[0].startswith("mlp-concurrent ")


def test_help_mentions_the_options(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for opt in ("--seeds", "--epochs", "--batch-size", "--lr", "--device", "--data-dir", "--out", "--set", "--config"):
        assert opt in out


def test_run_writes_a_complete_directory(tmp_path, toy):
    res = api.run(
        "mlp-sequential",
        seeds=[0, 1],
        epochs=1,
        out=tmp_path / "run",
        progress=False,
        dataset=toy,
        set={"protocol.tasks": "[[0,1],[2,3]]"},
    )
    data = json.loads((tmp_path / "run" / "results.json").read_text())
    assert data["status"] == "complete" and data["config"]["seeds"] == [0, 1]
    member = data["members"][1]
    assert member["seed"] == 1 and len(member["acc_matrix"]) == 2
    task = member["tasks"][1]
    assert task["classes"] == [2, 3]
    assert set(task) >= {"train_loss", "train_acc", "val_loss", "val_acc", "sparsity"}
    assert len(task["sparsity"][0]) == 2  # one value per hidden layer
    csv_lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("member,seed,") and len(csv_lines) == 1 + 2 * 2
    assert (tmp_path / "run" / "weights.pt").stat().st_size > 100_000
    again = load(tmp_path / "run")
    assert again.members[1].tasks[1].val_acc == res.members[1].tasks[1].val_acc
    assert "2,3" in again.table()


def test_ctrl_c_keeps_finished_epochs_and_says_so(tmp_path, toy, capsys, monkeypatch):
    from forgetlab import Hook

    class CtrlC(Hook):
        def after_step(self, ctx):
            if ctx.task == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="finished epochs saved in"):
        api.run(
            "mlp-sequential",
            seeds=[0],
            epochs=1,
            out=tmp_path / "r",
            progress=False,
            dataset=toy,
            hooks=[CtrlC()],
            set={"protocol.tasks": "[[0,1],[2,3]]"},
        )
    saved = load(tmp_path / "r")
    assert saved.status == "interrupted" and len(saved.members[0].tasks) == 1

    def interrupted(*a, **k):
        raise KeyboardInterrupt(f"interrupted; finished epochs saved in {tmp_path / 'r'}")

    monkeypatch.setattr(api, "run", interrupted)
    code, _, err = run_cli(capsys, "run", "mlp-sequential", "--out", str(tmp_path / "r2"))
    assert code == 130 and "finished epochs saved in" in err and "Traceback" not in err
