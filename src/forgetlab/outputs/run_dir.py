"""A run directory: created and proven writable before training starts, then every file of a finished
(or interrupted) run written by ``write``, each atomically, results.json last (its presence marks the run).

    RUN_DIR/metrics.csv     per member, task and epoch (the table of ``forgetlab show``)
    RUN_DIR/weights.pt      the trained ensemble's state and its members
    RUN_DIR/probes.npz      recorded diagnostics (with probes.json, their index), when probes ran
    RUN_DIR/results.json    the config, the status and every member's records
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from forgetlab.outputs.files import atomic_write, writable_dir


def choose(out: str | Path | None, name: str) -> Path:
    """``out``, or a new ``runs/NAME-TIMESTAMP`` (not created here)."""
    if out is not None:
        return Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, i = Path("runs") / f"{name}-{stamp}", 1
    while path.exists():
        path, i = Path("runs") / f"{name}-{stamp}-{i}", i + 1
    return path


def prepare(out: str | Path | None, name: str, option: str = "--out") -> Path:
    """``out``, or a new ``runs/NAME-TIMESTAMP``, created and proven writable (else one error line)."""
    return writable_dir(choose(out, name), option)


def write(run_dir: Path, results) -> None:
    """Every file of ``results`` (an outputs.results.Results) into ``run_dir``; results.json last."""
    import torch

    run_dir = Path(run_dir)
    atomic_write(run_dir / "metrics.csv", results.csv())
    if results.model is not None:
        buf = io.BytesIO()
        members = [{"seed": m.seed, "hparams": m.hparams} for m in results.members]
        torch.save({"members": members, "state_dict": results.model.state_dict()}, buf)
        atomic_write(run_dir / "weights.pt", buf.getvalue())
    if results.probes is not None:
        results.probes.save(run_dir)
    atomic_write(run_dir / "results.json", json.dumps(results.to_json(), indent=1))
    results.run_dir = run_dir
