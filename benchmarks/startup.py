"""Start-up cost of `forgetlab run mlp-sequential --seeds 0` as a whole process: wall time minus the training
time the run itself reports, for one or more source trees, interleaved, median of --repeat.

    python benchmarks/startup.py --data-dir ../shared/data --tree src [--tree /other/checkout/src] [--repeat 3]

What remains outside training: interpreter and imports, loading the data, the untrained network's
evaluation, writing the run directory, exiting. Prints wall and CPU (user + system) times, the CPU model
and the load average.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def one(tree: str, data_dir: str, out: str) -> tuple[float, float, float]:
    env = {**os.environ, "PYTHONPATH": tree, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "forgetlab",
        "run",
        "mlp-sequential",
        "--seeds",
        "0",
        "--data-dir",
        data_dir,
        "--table",
        "last",
        "--no-progress",
        "--out",
        out,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    m = re.search(r"([\d.]+) s of training", proc.stderr)
    if proc.returncode or not m:
        sys.exit(f"error: {tree}: exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return wall, float(m.group(1)), cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--tree", action="append", required=True, help="a src folder holding the forgetlab package")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if ln.startswith("Model name")
        ),
        "unknown",
    )
    print(f"CPU: {model}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    runs: dict[str, list[tuple[float, float, float]]] = {t: [] for t in a.tree}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeat):
            for t in a.tree if i % 2 == 0 else a.tree[::-1]:
                runs[t].append(one(t, a.data_dir, f"{tmp}/{len(runs[t])}-{abs(hash(t))}"))
                wall, train, cpu = runs[t][-1]
                print(
                    f"  {t}: wall {wall:.2f} s, CPU {cpu:.2f} s, training {train:.2f} s, outside training "
                    f"{wall - train:.2f} s; load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    for t, rs in runs.items():
        print(
            f"{t}: median wall {statistics.median(r[0] for r in rs):.2f} s, CPU "
            f"{statistics.median(r[2] for r in rs):.2f} s, "
            f"outside training {statistics.median(r[0] - r[1] for r in rs):.2f} s"
        )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
