"""Cost of the probes: mlp-sequential (5 tasks x 5 epochs, batch 64) trained without probes, with the
study's probes (curves, updates, sparsity, latent), with the explanatory ones only (linear, head,
interference, units, drift) and with all of them (the default).

Measured side by side in one process on the same resident data (loading excluded), alternating the four
runs in each repeat; prints the times and the ratios (targets on the 2-core CPU: all probes <= 1.5x, the
explanatory probes <= 25% of the training time, alone or on top of the study's).

    python benchmarks/bench_probes.py --data-dir ../shared/data [--seeds 3] [--epochs 5] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from forgetlab import api
from forgetlab import diagnostics as probes
from forgetlab.data import sources as data_sources
from forgetlab.engine.training import train


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
    config = api.make_config(
        a.preset, seeds=list(range(a.seeds)), epochs=a.epochs, data_dir=a.data_dir, device=a.device
    )
    data = data_sources.load_data(config, data_sources.resolve_device(config.device))
    study = probes.ProbeConfig().only("curves,updates,sparsity,latent")
    explain = probes.ProbeConfig().only("linear,head,interference,units,drift")
    kinds = {
        "without probes": None,
        "study's probes": study,
        "explanatory only": explain,
        "all (default)": probes.ProbeConfig(),
    }
    wall = {k: [] for k in kinds}
    cpu = {k: [] for k in kinds}
    inside = {k: [] for k in kinds}
    for _ in range(a.repeat):
        for name, pc in kinds.items():
            rec = probes.Probes(pc) if pc is not None else None
            t0, c0 = time.perf_counter(), time.process_time()
            train(config, data, rec.hooks if rec else ())
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            inside[name].append(rec.seconds if rec else 0.0)
    print(
        f"{a.preset}, {a.seeds} seeds, {a.epochs} epochs/task, {torch.get_num_threads()} thread(s) "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), {data.train.x.device}, "
        f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}, best of {a.repeat}"
    )
    base, base_cpu = min(wall["without probes"]), min(cpu["without probes"])
    for name in kinds:
        w, c = min(wall[name]), min(cpu[name])
        print(
            f"{name:<17} {w:7.2f} s wall  {c:7.2f} s CPU  inside probe hooks {min(inside[name]):5.2f} s  "
            f"ratio {w / base:5.2f}x wall {c / base_cpu:5.2f}x CPU"
        )
    extra, extra_cpu = (
        min(wall["all (default)"]) - min(wall["study's probes"]),
        min(cpu["all (default)"]) - min(cpu["study's probes"]),
    )
    print(
        f"explanatory probes on top of the study's: +{extra:.2f} s wall = {extra / base:.0%} of training, "
        f"+{extra_cpu:.2f} s CPU = {extra_cpu / base_cpu:.0%}"
    )
    print("targets: all probes <= 1.5x; the explanatory probes <= 25% of training (alone or on top)")


if __name__ == "__main__":
    main()
