"""What a new user hits first: a missing optional dependency names the extra to install; a failed download
or run leaves no empty folders; a failed write (disk full) is one error line with nothing half-written."""

from __future__ import annotations

import errno
import os
import sys

import pytest

from forgetlab import api, cli
from forgetlab.errors import ForgetlabError

TASKS = "protocol.tasks=[[0,1],[2,3]]"


def one_line(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def files_under(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# --- optional dependencies ----------------------------------------------------------------------------


def test_to_pandas_without_pandas_names_the_extra(monkeypatch, toy):
    res = api.run("mlp-sequential", seeds=[0], epochs=1, dataset=toy, save=False, progress=False, set=[TASKS])
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(
        ForgetlabError, match=r"Results.to_pandas\(\) needs the pandas package: pip install 'forgetlab\[pandas\]'"
    ):
        res.to_pandas()
    assert len(res.rows()) == 2  # one row per task of the one epoch: what to_pandas would hold


def test_tensorboard_without_tensorboard_is_one_line_and_leaves_no_run_directory(monkeypatch, tmp_path, toy, capsys):
    from forgetlab.data import sources as data_sources

    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setattr(data_sources, "load_data", lambda config, device: toy)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["run", "mlp-sequential", "--set", TASKS, "--epochs", "1", "--log", "tensorboard", "--no-progress"])
    assert "--log tensorboard needs the tensorboard package: pip install 'forgetlab[tensorboard]'" in one_line(
        capsys, code
    )
    assert files_under(tmp_path) == []  # neither runs/ nor runs/mlp-sequential-TIMESTAMP


def test_ray_executor_without_ray_names_the_extra(monkeypatch):
    from forgetlab.workflows import executors

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ForgetlabError, match=r"--executor ray needs the ray package: pip install 'forgetlab\[ray\]'"):
        executors.run_ray([], lambda group, result: None)


def test_a_sweep_without_pyarrow_writes_the_csv_tables_and_says_how_to_get_parquet(monkeypatch, tmp_path, toy):
    from forgetlab.data import sources as data_sources
    from forgetlab.workflows import summary
    from forgetlab.workflows.sweep import sweep

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.setattr(data_sources, "load_data", lambda config, device: toy)
    lines: list[str] = []
    kw = dict(grid={"train.l1": [0, 0.1]}, seeds=[0], epochs=1, set=[TASKS], progress=False, log=lines.append)
    sweep("mlp-sequential", out=tmp_path / "s", **kw)
    assert summary.PARQUET_NOTE in lines and "pip install 'forgetlab[parquet]'" in summary.PARQUET_NOTE
    assert sorted(p.name for p in (tmp_path / "s").glob("*s.*")) == ["epochs.csv", "members.csv", "tasks.csv"]
    assert len((tmp_path / "s" / "members.csv").read_text().splitlines()) == 3  # a header and two members


# --- a failed download or run leaves no empty folders --------------------------------------------------


def _offline(folder: str):
    """A torchvision dataset class whose download fails after making its folders, as torchvision's do."""
    import torchvision.datasets as tvd

    class Offline(tvd.VisionDataset):
        def __init__(self, root, *args, **kwargs):
            os.makedirs(os.path.join(root, folder, "raw"), exist_ok=True)
            raise OSError(errno.ENETUNREACH, "Network is unreachable")

    return Offline


@pytest.mark.parametrize(
    "argv, cls, folder",
    [
        ([], "MNIST", "MNIST"),
        (["--set", "data.dataset=KMNIST", "--set", "protocol.tasks=[[0,1],[2,3]]"], "KMNIST", "KMNIST"),
    ],
)
def test_a_failed_download_leaves_no_empty_folders(monkeypatch, tmp_path, capsys, argv, cls, folder):
    import torchvision.datasets as tvd

    monkeypatch.delenv("FORGETLAB_DATA", raising=False)
    monkeypatch.setattr(tvd, cls, _offline(folder))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    code = cli.main(["run", "mlp-sequential", *argv, "--no-progress"])  # data in ./data, which does not exist
    assert "download failed" in one_line(capsys, code)
    assert files_under(tmp_path) == ["elsewhere"]  # no data/, data/MNIST/raw, runs/ nor a run directory
    (tmp_path / "data" / "mine").mkdir(parents=True)  # a data folder that exists keeps what was there
    code = cli.main(["run", "mlp-sequential", *argv, "--data-dir", "data", "--no-progress"])
    assert "download failed" in one_line(capsys, code)
    assert files_under(tmp_path) == ["data", "data/mine", "elsewhere"]


# --- a failed write: one line, exit status 2, nothing half-written ------------------------------------


def _disk_full(monkeypatch):
    def replace(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", replace)


def test_a_run_that_cannot_write_its_files_is_one_line_and_leaves_nothing(monkeypatch, tmp_path, toy, capsys):
    from forgetlab.data import sources as data_sources

    monkeypatch.setattr(data_sources, "load_data", lambda config, device: toy)
    _disk_full(monkeypatch)
    argv = ["run", "mlp-sequential", "--set", TASKS, "--epochs", "1", "--no-progress", "--table", "none"]
    line = one_line(capsys, cli.main([*argv, "--out", str(tmp_path / "runs" / "r")]))
    assert f"cannot write {tmp_path / 'runs' / 'r' / 'metrics.csv'} (No space left on device)" in line
    assert files_under(tmp_path) == []  # no temporary file, no empty run directory


def test_plot_that_cannot_write_a_figure_is_one_line_and_leaves_nothing(monkeypatch, tmp_path, toy, capsys):
    run_dir = tmp_path / "run"
    api.run("mlp-sequential", seeds=[0], epochs=1, dataset=toy, out=run_dir, progress=False, probes=True, set=[TASKS])
    before = files_under(run_dir)
    _disk_full(monkeypatch)
    line = one_line(capsys, cli.main(["plot", str(run_dir), "--latent-tasks", "last"]))
    assert f"cannot write {run_dir / 'figures'}" in line and "(No space left on device)" in line
    assert files_under(run_dir) == before  # no figures/ folder, no temporary file
