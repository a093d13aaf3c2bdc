"""Worker processes in sweep, compare and reproduce: the same numbers with one worker and with two."""

from __future__ import annotations

import json

import pytest
import torch

from forgetlab.workflows.sweep import sweep


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def records(out) -> dict:
    return {p.name: json.loads(p.read_text()) for p in sorted((out / "members").glob("*.json"))}


def test_a_sweep_stores_the_same_numbers_with_one_worker_and_with_two(tmp_path, mnist_dir):
    kw = dict(
        grid={"train.l1": [0, 0.5], "model.hidden": [[32], [16, 8]]},
        seeds=[0, 1],
        epochs=1,
        batch_size=1000,
        data_dir=str(mnist_dir),
        set={"protocol.tasks": "[[0],[1]]"},
        progress=False,
        log=lambda s: None,
    )
    one = sweep("mlp-sequential", out=tmp_path / "one", workers=1, **kw)
    two = sweep("mlp-sequential", out=tmp_path / "two", workers=2, **kw)
    assert one.trained == two.trained == 8 and len(one.plan.groups) == 2
    a, b = records(tmp_path / "one"), records(tmp_path / "two")
    assert a.keys() == b.keys() and len(a) == 8
    for k in a:  # bit for bit: each program runs the same code on one thread wherever it runs
        assert a[k]["tasks"] == b[k]["tasks"] and a[k]["acc_matrix"] == b[k]["acc_matrix"]


def test_a_sweep_with_two_workers_killed_with_sigkill_resumes_to_the_same_numbers(tmp_path, mnist_dir):
    import os
    import signal
    import subprocess
    import sys
    import time

    def cmd(out, workers):
        return [
            sys.executable,
            "-m",
            "forgetlab",
            "sweep",
            "mlp-sequential",
            "--set",
            "protocol.tasks=[[0],[1]]",
            "--epochs",
            "1",
            "--batch-size",
            "1000",
            "--grid",
            "train.l1=0,0.5,1",
            "--seeds",
            "0",
            "1",
            "--data-dir",
            str(mnist_dir),
            "--no-progress",
            "--group-size",
            "1",
            "--workers",
            str(workers),
            "--out",
            str(out),
        ]

    killed, env = tmp_path / "killed", {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd(killed, 2), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 240  # two fresh interpreters import torch first: slow on a busy machine
    while time.time() < deadline and not list((killed / "members").glob("*.json")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # the driver only: its workers die with it (parent-death signal)
    proc.wait()
    first = len(list((killed / "members").glob("*.json")))
    assert 1 <= first < 6, f"killed after {first} of 6 members"
    done = subprocess.run(cmd(killed, 2), capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0 and f"{first} of 6 stored, {6 - first} to train" in done.stderr, done.stderr
    one = subprocess.run(cmd(tmp_path / "one", 1), capture_output=True, text=True, timeout=300, env=env)
    assert one.returncode == 0, one.stderr
    a, b = records(killed), records(tmp_path / "one")
    assert a.keys() == b.keys() and len(a) == 6
    for k in a:
        assert (a[k]["tasks"], a[k]["acc_matrix"]) == (b[k]["tasks"], b[k]["acc_matrix"])
    assert (killed / "tasks.csv").read_text() == (tmp_path / "one" / "tasks.csv").read_text()
    assert not list((killed / "members").glob(".*"))


def test_reproduce_gives_the_same_report_numbers_with_one_worker_and_with_two(tmp_path, mnist_dir):
    import re

    import numpy as np

    from forgetlab import diagnostics as probes
    from forgetlab.workflows import reproduce as report

    pc = probes.ProbeConfig(per_class=8, first=5, every=50, latent_per_class=10)
    kw = dict(
        seeds=[0, 1],
        epochs=1,
        presets=["mlp-sequential", "mlp-l1-sequential", "mlp-bn-concurrent"],
        probe_config=pc,
        data_dir=str(mnist_dir),
        log=lambda s: None,
    )
    report.reproduce(out=tmp_path / "one", workers=1, **kw)
    report.reproduce(out=tmp_path / "two", workers=2, **kw)
    runs = sorted(p.name for p in (tmp_path / "one" / "runs").iterdir())
    assert runs == sorted(p.name for p in (tmp_path / "two" / "runs").iterdir()) and len(runs) == 3
    for name in runs:
        a, b = (json.loads((tmp_path / w / "runs" / name / "results.json").read_text()) for w in ("one", "two"))
        assert a["members"] == b["members"]
        with (
            np.load(tmp_path / "one" / "runs" / name / "probes.npz") as pa,
            np.load(tmp_path / "two" / "runs" / name / "probes.npz") as pb,
        ):
            assert pa.files == pb.files  # NaN marks what was not measured (e.g. head bias in the first task)
            assert all(np.array_equal(pa[k], pb[k], equal_nan=pa[k].dtype.kind == "f") for k in pa.files)

    def numbers(md: str) -> list[str]:  # the report without its table of timings
        return [ln for ln in md.splitlines() if not re.match(r"\| (training|probes|tsne|figures|report|total) ", ln)]

    one, two = ((tmp_path / w / "REPORT.md").read_text() for w in ("one", "two"))
    assert numbers(one) == numbers(two) and len(numbers(one)) > 50


def test_compare_gives_the_same_table_with_one_worker_and_with_two(tmp_path, mnist_dir, capsys):
    from forgetlab.cli import main

    def run(workers):
        out = tmp_path / f"w{workers}"
        code = main(
            [
                "compare",
                "mlp-sequential",
                "--strategies",
                "naive,lwf,si",
                "--seeds",
                "0",
                "1",
                "--data-dir",
                str(mnist_dir),
                "--set",
                "protocol.tasks=[[0,1],[2,3]]",
                "--set",
                "train.epochs=1",
                "--set",
                "train.batch_size=500",
                "--gap-steps",
                "5",
                "--no-progress",
                "--out",
                str(out),
                "--workers",
                str(workers),
            ]
        )
        assert code == 0, capsys.readouterr().err
        # every column but the last (training seconds)
        return [ln.rsplit(",", 1)[0] for ln in (out / "compare.csv").read_text().splitlines()]

    one, two = run(1), run(2)
    assert one == two and len(one) == 4 and one[0].startswith("strategy,seeds,avg_acc")
