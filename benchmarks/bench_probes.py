"""Cost of the default probes: mlp-sequential (5 tasks x 5 epochs, batch 64) trained with and without them.

Measured side by side in one process on the same resident data (loading excluded), alternating
without/with for each repeat; prints both times and the ratio (target on the 2-core CPU: <= 1.5x).

    python benchmarks/bench_probes.py --data-dir ../shared/data [--seeds 3] [--epochs 5] [--repeat 1]
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from forgetlab import api, probes
from forgetlab.training import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--preset", default="mlp-sequential")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    config = api.make_config(a.preset, seeds=list(range(a.seeds)), epochs=a.epochs, data_dir=a.data_dir,
                             device=a.device)
    data = api.load_data(config, api.resolve_device(config.device))
    plain, probed, inside, plain_cpu, probed_cpu = [], [], [], [], []
    for _ in range(a.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        train(config, data)
        plain.append(time.perf_counter() - t0)
        plain_cpu.append(time.process_time() - c0)
        rec = probes.Probes()  # the default settings
        t0, c0 = time.perf_counter(), time.process_time()
        train(config, data, rec.hooks)
        probed.append(time.perf_counter() - t0)
        probed_cpu.append(time.process_time() - c0)
        inside.append(rec.seconds)
    p, q = min(plain), min(probed)
    print(f"{a.preset}, {a.seeds} seeds, {a.epochs} epochs/task, {torch.get_num_threads()} thread(s) "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), {data.train.x.device}, "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}, best of {a.repeat}")
    print(f"without probes  {p:7.2f} s wall  {min(plain_cpu):7.2f} s CPU")
    print(f"with probes     {q:7.2f} s wall  {min(probed_cpu):7.2f} s CPU   (inside probe hooks {min(inside):.2f} s wall)")
    print(f"ratio           {q / p:7.2f}x wall {min(probed_cpu) / min(plain_cpu):6.2f}x CPU  (target <= 1.5x)")


if __name__ == "__main__":
    main()
