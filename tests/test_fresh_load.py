"""A run directory read back by a fresh process (forgetlab show / plot): nothing else imported first."""

import os
import subprocess
import sys
from pathlib import Path

from forgetlab import api

ROOT = Path(__file__).resolve().parents[1]


def test_show_in_a_fresh_process_reads_the_config_of_a_saved_run(tmp_path, toy):
    res = api.run(
        "mlp-sequential",
        dataset=toy,
        seeds=[0],
        out=tmp_path / "run",
        progress=False,
        set={"protocol.tasks": "[[0,1],[2,3]]", "train.iters": "2"},
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-m", "forgetlab", "show", str(tmp_path / "run"), "--table", "last"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert f"{res.members[0].tasks[-1].val_acc[-1]:.4f}" in out.stdout
