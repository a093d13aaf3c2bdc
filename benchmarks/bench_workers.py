"""Worker processes against one process: a 20-member sweep (L1 lambda in 0, 0.001, 0.1, 1, 2 x seeds 0-3 of
mlp-sequential, cut into 4 programs of 5 members by --group-size 5), `forgetlab sweep --workers 1` against
`--workers 2`, each a whole process into a fresh store, interleaved, median of --repeat.

    python benchmarks/bench_workers.py --data-dir ../shared/data [--epochs 5] [--repeat 3]

Prints wall and CPU (user + system, the process and its workers) times, the ratio, the CPU model and the
load average, and checks that both stored the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sweep(data_dir: str, epochs: int, workers: int, out: Path) -> tuple[float, float]:
    cmd = [
        sys.executable,
        "-m",
        "forgetlab",
        "sweep",
        "mlp-sequential",
        "--grid",
        "train.l1=0,0.001,0.1,1,2",
        "--seeds",
        "0",
        "1",
        "2",
        "3",
        "--epochs",
        str(epochs),
        "--group-size",
        "5",
        "--data-dir",
        data_dir,
        "--no-progress",
        "--workers",
        str(workers),
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"error: workers {workers}: exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def numbers(out: Path) -> dict:
    return {
        p.name: (r["tasks"], r["acc_matrix"])
        for p in sorted((out / "members").glob("*.json"))
        for r in [json.loads(p.read_text())]
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--epochs", type=int, default=5)
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
    print(
        f"CPU: {model}, {os.cpu_count()} cores; {a.epochs} epochs per task; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeat):
            for w in (1, 2) if i % 2 == 0 else (2, 1):
                times[w].append(sweep(a.data_dir, a.epochs, w, Path(tmp) / f"w{w}-{i}"))
                print(
                    f"  round {i + 1}: {w} worker(s) {times[w][-1][0]:6.1f} s wall, {times[w][-1][1]:6.1f} s CPU; "
                    f"load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
        same = all(numbers(Path(tmp) / f"w1-{i}") == numbers(Path(tmp) / f"w2-{i}") for i in range(a.repeat))
    one, two = (statistics.median(t[0] for t in times[w]) for w in (1, 2))
    print(
        f"median wall of {a.repeat}: 1 worker {one:.1f} s, 2 workers {two:.1f} s: {one / two:.2f}x "
        f"(target >= 1.6x); stored numbers identical: {same}"
    )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
