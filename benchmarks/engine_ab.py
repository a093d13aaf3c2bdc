"""A/B timing of the training engine: this tree against another commit, measured in the same run.

REF is checked out with ``git worktree add`` into a temporary folder; then each repeat times one training
run of each tree in its own subprocess, alternating (this tree, REF, this tree, REF, ...), so that a change
in the machine's load hits both alike. Data loading and a warm-up run are excluded from every timing.
Prints each run, the best of each tree (wall and process CPU seconds) and the ratio this / REF.

    python benchmarks/engine_ab.py --against main --data-dir ../shared/data [--repeat 5] [--epochs 1]
        [--preset mlp-sequential] [--strategy ewc] [--seeds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time, torch
from forgetlab import api
try:  # this tree's layout, and the flat one of trees before the layer folders
    from forgetlab.engine.training import train
    from forgetlab.data.sources import load_data
except ImportError:
    from forgetlab.training import train
    from forgetlab.api import load_data
preset, strategy, seeds, epochs, data_dir = json.loads(sys.argv[1])
config = api.make_config(preset, strategy=strategy, seeds=list(range(seeds)), epochs=epochs, data_dir=data_dir,
                         device="cpu")
data = load_data(config, torch.device("cpu"))
train(api.make_config(preset, strategy=strategy, seeds=[0], epochs=1, data_dir=data_dir, device="cpu"), data)
w0, c0 = time.perf_counter(), time.process_time()
train(config, data)
print(json.dumps([time.perf_counter() - w0, time.process_time() - c0]))
"""


def time_once(tree: Path, args: list) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)], env=env, capture_output=True, text=True, check=True
    ).stdout
    wall, cpu = json.loads(out.strip().splitlines()[-1])
    return wall, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--against", default="main", help="the commit to compare with (any git revision)")
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--repeat", type=int, default=5, help="runs of each tree; the best of them is compared")
    p.add_argument("--epochs", type=int, default=1, help="epochs per task")
    p.add_argument("--seeds", type=int, default=1, help="members trained as one program")
    p.add_argument("--preset", default="mlp-sequential")
    p.add_argument("--strategy", default=None)
    a = p.parse_args()
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    ref = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", a.against], capture_output=True, text=True, check=True
    ).stdout.strip()
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    print(
        f"{a.preset} strategy={a.strategy or 'naive'}, {a.seeds} seed(s), {a.epochs} epoch(s)/task; "
        f"this tree {head} vs {a.against} {ref}; {cpu_model}; OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    args = [a.preset, a.strategy, a.seeds, a.epochs, str(Path(a.data_dir).resolve())]
    with tempfile.TemporaryDirectory() as tmp:
        ref_tree = Path(tmp) / "ref"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(ref_tree), ref], check=True)
        try:
            runs: dict[str, list[tuple[float, float]]] = {"this": [], "ref": []}
            for r in range(a.repeat):
                for name, tree in (("this", ROOT), ("ref", ref_tree)):
                    runs[name].append(time_once(tree, args))
                    print(
                        f"  repeat {r + 1} {name:>4}: {runs[name][-1][0]:7.2f} s wall {runs[name][-1][1]:7.2f} s CPU",
                        flush=True,
                    )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref_tree)], check=True)
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in runs.items()}
    for name, label in (("this", f"this tree {head}"), ("ref", f"{a.against} {ref}")):
        print(f"{label:>24}: best {best[name][0]:7.2f} s wall {best[name][1]:7.2f} s CPU")
    spread = max(c for _, c in runs["ref"]) / best["ref"][1]
    print(
        f"ratio this / ref: {best['this'][0] / best['ref'][0]:.3f} wall, {best['this'][1] / best['ref'][1]:.3f} CPU "
        f"(run-to-run spread of ref, slowest / best CPU: {spread:.3f}); load average after "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
