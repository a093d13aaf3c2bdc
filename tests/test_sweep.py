"""Sweeps: planning, member identity, the store, resuming after SIGKILL, statistics, Ray."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from forgetlab import config as cfg
from forgetlab.cli import main
from forgetlab.config import presets
from forgetlab.workflows import summary
from forgetlab.workflows.sweep import Store, make_axis, make_plan, parse_grid, split_values, sweep

# a tiny sweep: 2 one-class tasks x 1 epoch, batch 1000 (6-7 steps per task), 2 lambdas x 2 seeds
TINY = {"protocol.tasks": "[[0],[1]]"}


def tiny_args(data) -> list[str]:
    return [
        "mlp-sequential",
        "--set",
        "protocol.tasks=[[0],[1]]",
        "--epochs",
        "1",
        "--batch-size",
        "1000",
        "--grid",
        "train.l1=0,0.5",
        "--seeds",
        "0",
        "1",
        "--data-dir",
        str(data),
        "--no-progress",
    ]


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS thread here and in the subprocesses: on a shared, busy 2-core machine two threads that
    wait for each other make these tiny runs several times slower and their timing erratic."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_sweep(out, data, **kw):
    return sweep(
        "mlp-sequential",
        grid={"train.l1": [0, 0.5]},
        seeds=kw.pop("seeds", [0, 1]),
        out=out,
        epochs=1,
        batch_size=1000,
        data_dir=str(data),
        set=TINY,
        progress=False,
        log=lambda s: None,
        **kw,
    )


def numbers(record: dict) -> tuple:
    return record["tasks"], record["acc_matrix"]


def assert_close(a, b, tol=1e-5):
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_close(x, y, tol)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_close(a[k], b[k], tol)
    elif isinstance(a, float):
        assert abs(a - b) <= tol, (a, b)
    else:
        assert a == b


# ---------------------------------------------------------------------------------------------
# Planning (no data needed)
# ---------------------------------------------------------------------------------------------


def test_grid_values_split_outside_brackets_and_convert():
    assert split_values("[256,128],[120,84]") == ["[256,128]", "[120,84]"]
    assert make_axis("model.hidden", "[256,128],[64]").values == ((256, 128), (64,))
    assert make_axis("train.l1", "0,0.1,2").values == (0.0, 0.1, 2.0)
    assert make_axis("protocol.tasks", "[[0,1],[2,3]],[[1,2]]").values == (((0, 1), (2, 3)), ((1, 2),))
    assert make_axis("model.norm", "none,batch").values == ("none", "batch")


def test_plan_groups_by_shape_and_batches_member_keys():
    base = presets.get("mlp-sequential")
    axes = parse_grid(["train.l1=0,0.1,1", "model.hidden=[120,84],[256,128]", "train.lr=0.01,0.05"])
    plan = make_plan(base, axes, seeds=[0, 1])
    assert len(plan.members) == 3 * 2 * 2 * 2
    assert [g.shape for g in plan.groups] == [(("model.hidden", (120, 84)),), (("model.hidden", (256, 128)),)]
    for g in plan.groups:
        assert len(g.members) == 12
        assert g.config.grid == (("train.l1", (0.0, 0.1, 1.0)), ("train.lr", (0.01, 0.05)))
        assert g.config.model.hidden == g.shape[0][1]
        assert len(cfg.members(g.config)) == 12  # the group is exactly its config's ensemble
    ids = [m.id for m in plan.members]
    assert len(set(ids)) == len(ids)
    for m in plan.members:  # the stored single-member config has the same identity
        assert cfg.member_identity(m.config, m.member) == m.id
        assert m.config.seeds == (m.seed,) and m.config.grid == ()
        assert cfg.get(m.config, "train.l1") == dict(m.point)["train.l1"]
    # only member-level keys and seeds: one program
    assert len(make_plan(base, parse_grid(["train.lr=0.01,0.1", "train.momentum=0,0.9"]), [0, 1, 2]).groups) == 1
    # epochs, batch size, optimizer, norm split groups
    split = make_plan(base, parse_grid(["train.epochs=1,2", "train.batch_size=32,64", "model.norm=none,batch"]))
    assert len(split.groups) == 8


def test_member_id_does_not_depend_on_the_other_members():
    base = presets.get("mlp-sequential")
    a = make_plan(base, parse_grid(["train.l1=0,0.1"]), seeds=[0, 1])
    b = make_plan(base, parse_grid(["train.l1=0.1,1", "model.hidden=[120,84],[64]"]), seeds=[1, 5])

    def pick(plan):
        return {
            m.id
            for m in plan.members
            if dict(m.point)["train.l1"] == 0.1
            and m.seed == 1
            and dict(m.point).get("model.hidden", (120, 84)) == (120, 84)
        }

    assert pick(a) == pick(b) and len(pick(a)) == 1
    # a preset's own grid becomes an axis
    plan = make_plan(presets.get("mlp-l1-concurrent"), seeds=[0, 1, 2])
    assert [a.key for a in plan.axes] == ["train.l1"] and len(plan.members) == 15 and len(plan.groups) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--grid", "train.nope=1,2"], "unknown grid key 'train.nope'"),
        (["--grid", "train.l1=a,b"], "train.l1='a' is not a valid float"),
        (["--grid", "train.epochs=1.5"], "train.epochs='1.5' is not a valid int"),
        (["--grid", "train.l1="], "grid train.l1 has no values"),
        (["--grid", "train.l1=-1"], "train.l1=-1"),
        (["--grid", "model.norm=group"], "model.norm='group' is not valid"),
        (["--grid", "seeds=1,2"], "cannot sweep 'seeds'"),
        (["--grid", "train.l1=1,1"], "repeats a value"),
        (["--grid", "train.l1"], "expected key=value"),
        (["--grid", "train.l1=1", "--grid", "train.l1=2"], "given twice"),
    ],
)
def test_bad_grid_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main(["sweep", "mlp-sequential", "--out", str(tmp_path / "s"), "--dry-run", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "s").exists()


def test_bad_summarize_and_resume_inputs(capsys, tmp_path):
    assert main(["summarize", str(tmp_path)]) == 2
    assert "sweep.json does not exist" in capsys.readouterr().err
    assert main(["sweep", "--resume", "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["sweep", "mlp-sequential", "--resume", "--out", str(tmp_path), "--seeds", "0"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_dry_run_prints_the_plan_only(capsys, tmp_path):
    assert (
        main(
            [
                "sweep",
                "mlp-sequential",
                "--grid",
                "train.l1=0,1",
                "--grid",
                "model.norm=none,layer",
                "--seeds",
                "0",
                "1",
                "--out",
                str(tmp_path / "s"),
                "--dry-run",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "8 members (2 train.l1 x 2 model.norm x 2 seeds) in 2 batched programs" in out
    assert "model.norm=layer" in out and "4 to train" in out
    assert not (tmp_path / "s").exists()


def test_ray_address_that_does_not_answer_fails_fast(capsys, tmp_path):
    pytest.importorskip("ray")
    t0 = time.perf_counter()
    code = main(
        ["sweep", *tiny_args(tmp_path), "--executor", "ray", "--address", "127.0.0.1:1", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "error: Ray address 127.0.0.1:1 does not answer" in err
    assert err.count("error:") == 1 and time.perf_counter() - t0 < 10


# ---------------------------------------------------------------------------------------------
# Statistics (no data needed)
# ---------------------------------------------------------------------------------------------


def test_summary_table_counts_finite_values_and_names_a_nan_seed():
    rows = [{"train.l1": 0.0, "seed": s, "final_val_loss": v} for s, v in enumerate([0.30, 0.32, math.nan])]
    rows.append({"train.l1": 1.0, "seed": 0, "final_val_loss": 0.5})
    stats = summary.config_stats(rows, ["train.l1"], ["final_val_loss"])
    assert (
        stats[0]["n"] == 3 and stats[0]["final_val_loss"]["n"] == 2 and stats[0]["final_val_loss"]["left_out"] == (2,)
    )
    lines = summary.stats_table(stats, ["final_val_loss"]).splitlines()
    assert "0.3100 ± 0.0141 [" in lines[1] and lines[1].endswith("(n = 2)")  # not n = 3 and the NaN dropped silently
    assert lines[2].split()[-1] == "0.5000"  # one seed: the value, no spread or interval
    assert lines[3] == "Not finite, left out (the seed diverged): train.l1=0 seed 2 in final_val_loss."


def test_describe_and_forgetting_against_hand_computation():
    d = summary.describe([0.2, 0.4, 0.6, math.nan])
    assert d["n"] == 3 and abs(d["mean"] - 0.4) < 1e-12 and abs(d["std"] - 0.2) < 1e-12
    half = 4.302653 * 0.2 / math.sqrt(3)
    assert abs(d["ci_high"] - (0.4 + half)) < 1e-5 and abs(d["ci_low"] - (0.4 - half)) < 1e-5
    R = [[0.9, 0.0, 0.0], [0.5, 0.95, 0.0], [0.1, 0.3, 0.99]]
    # forgetting: task 0: max(0.9, 0.5) - 0.1 = 0.8; task 1: 0.95 - 0.3 = 0.65
    assert abs(summary.METRICS["forgetting"]({"acc_matrix": R}) - 0.725) < 1e-12  # metrics.average_forgetting
    assert abs(summary._bwt(R) - ((0.1 - 0.9) + (0.3 - 0.95)) / 2) < 1e-12


def test_store_never_reads_a_partial_or_foreign_file(tmp_path):
    store = Store(tmp_path)
    (tmp_path / "members").mkdir()
    rec = {"schema": 1, "id": "abc", "status": "complete", "tasks": [], "acc_matrix": []}
    text = json.dumps(rec)
    store.put(rec)
    assert store.get("abc") == rec
    store.path("abc").write_text(text[: len(text) // 2])  # what a non-atomic writer killed mid-way leaves
    assert store.get("abc") is None
    store.path("xyz").write_text(text)  # a file whose id does not match its name
    assert store.get("xyz") is None and store.done(["abc", "xyz"]) == set()


# ---------------------------------------------------------------------------------------------
# Real training on MNIST
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grouped(tmp_path_factory, mnist_dir):
    """The tiny sweep, all 4 members in one program."""
    out = tmp_path_factory.mktemp("grouped")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the function-scoped one_thread
    try:
        res = tiny_sweep(out, mnist_dir)
    finally:
        torch.set_num_threads(before)
    assert res.trained == 4 and len(res.plan.groups) == 1
    return res


def test_member_trained_in_a_sweep_equals_it_trained_alone(grouped):
    from forgetlab import api

    by_id = {m.id: m for m in grouped.plan.members}
    rec = grouped.records()[3]  # l1=0.5, seed 1: the 4th member of its program
    alone = api.run(by_id[rec["id"]].config, save=False, progress=False)
    assert len(alone.members) == 1 and rec["config"]["seeds"] == [alone.members[0].seed] == [1]
    m = alone.members[0]
    # equal up to float rounding: a bmm over 4 members may take another BLAS kernel than over 1
    assert_close(numbers(rec), ([vars(t) for t in m.tasks], m.acc_matrix))
    assert rec["hparams"]["train.l1"] == 0.5 and rec["tasks"][-1]["sparsity_all"][-1] > 0.5


def test_stored_members_are_skipped_and_a_group_shrinks(grouped, tmp_path, mnist_dir):
    import shutil

    out = tmp_path / "s"
    shutil.copytree(grouped.out, out)
    gone = grouped.plan.members[2].id
    (out / "members" / f"{gone}.json").unlink()
    res = tiny_sweep(out, mnist_dir)
    assert (res.trained, res.reused) == (1, 3)
    assert_close(numbers(Store(out).get(gone)), numbers(Store(grouped.out).get(gone)))
    again = tiny_sweep(out, mnist_dir)
    assert (again.trained, again.reused) == (0, 4)


def test_summarize_prints_ci_and_writes_tables_and_plots(grouped, capsys):
    assert main(["summarize", str(grouped.out), "--metric", "final_sparsity", "--metric", "avg_acc"]) == 0
    text = capsys.readouterr().out
    recs = [r for r in grouped.records() if r["hparams"]["train.l1"] == 0.5]
    vals = [r["tasks"][-1]["sparsity_all"][-1] for r in recs]
    mean, sd = sum(vals) / 2, abs(vals[0] - vals[1]) / math.sqrt(2)
    half = 12.7062 * sd / math.sqrt(2)
    line = next(ln for ln in text.splitlines() if ln.startswith("train.l1=0.5 "))
    assert f"{mean:.4f} ± {sd:.4f} [{mean - half:.4f}, {mean + half:.4f}]" in line
    for ext in ("png", "pdf"):
        assert (grouped.out / "plots" / f"final_sparsity-vs-train.l1.{ext}").stat().st_size > 1000
    rows = (grouped.out / "tasks.csv").read_text().splitlines()
    assert rows[0].startswith("id,train.l1,seed,task,classes,") and len(rows) == 1 + 4 * 2
    assert len((grouped.out / "epochs.csv").read_text().splitlines()) == 1 + 4 * 2 * 1


def test_sweep_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path, mnist_dir):
    killed = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "forgetlab",
        "sweep",
        *tiny_args(mnist_dir),
        "--group-size",
        "1",
        "--out",
        str(killed),
        "--workers",
        "1",
    ]  # in this process; tests/test_workers.py kills a sweep with two workers
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and not list((killed / "members").glob("*.json")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = len(list((killed / "members").glob("*.json")))
    assert 1 <= first < 4, f"killed after {first} of 4 members"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert f"{first} of 4 stored, {4 - first} to train" in done.stderr
    reference = tiny_sweep(tmp_path / "reference", mnist_dir, group_size=1)  # the same sweep, never interrupted
    for m in reference.plan.members:
        assert numbers(Store(killed).get(m.id)) == numbers(Store(reference.out).get(m.id))
    assert (killed / "tasks.csv").read_text() == (reference.out / "tasks.csv").read_text()
    assert not list((killed / "members").glob(".*"))


def test_ray_executor_runs_groups_as_tasks(grouped, tmp_path, mnist_dir):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        res = tiny_sweep(tmp_path, mnist_dir, seeds=[0], executor="ray")
    finally:
        ray.shutdown()
    assert res.trained == 2
    for rec in res.records():  # one Ray worker thread vs two local ones: equal up to float rounding
        assert_close(numbers(rec), numbers(Store(grouped.out).get(rec["id"])))
