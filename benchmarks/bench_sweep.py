"""Sweep speed: 20 members (L1 lambda in 0, 0.001, 0.1, 1, 2 x seeds 0-3) of the mlp-sequential protocol
(5 tasks x 5 epochs, batch 64, validation every epoch), side by side in one process:

  sweep        forgetlab sweep: the 20 members as one batched program, results written to a member store
  one by one   the same 20 members, each trained alone by the same engine

Prints both times, their ratio (target on the 2-core CPU: >= 5x), the achieved GFLOP/s of each against
this machine's float32 matrix-multiply peak, measured here with a large torch.mm (target: the sweep at
>= 40% of it), and the highest ratio that peak allows. Model FLOPs are counted analytically
(benchmarks/work.py). Data loading is excluded from every timing.

    python benchmarks/bench_sweep.py --data-dir ../shared/data [--epochs 5] [--threads N] [--profile]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

import forgetlab
from forgetlab import api
from forgetlab.data import sources as data_sources
from forgetlab.engine.training import steps_per_epoch, train
from forgetlab.workflows.sweep import make_axis, make_plan, run_plan
from work import matmul_peak, protocol_flops

LAMBDAS = [0, 0.001, 0.1, 1, 2]
SEEDS = [0, 1, 2, 3]


def profile_sweep(config, data, steps: int = 300) -> None:
    """Where a batched step's time goes: torch.profiler over the first steps of the 20-member program."""
    from torch.profiler import ProfilerActivity, profile

    from forgetlab.engine.hooks import Hook

    class Stop(Hook):
        def after_step(self, ctx):
            if ctx.step >= steps:
                raise KeyboardInterrupt  # train() returns what finished

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(config, data, hooks=[Stop()])
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--epochs", type=int, default=5, help="epochs per task (default 5, the study's)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--profile", action="store_true", help="also profile 300 steps of the batched program")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    base = api.make_config("mlp-sequential", seeds=SEEDS, epochs=a.epochs, data_dir=a.data_dir, device="cpu")
    plan = make_plan(base, [make_axis("train.l1", LAMBDAS)])
    assert len(plan.members) == 20 and len(plan.groups) == 1
    data = data_sources.load_data(base, torch.device("cpu"))  # cached for the sweep's own load_data: not timed
    print(
        f"forgetlab {forgetlab.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"mlp-sequential, 5 tasks x {a.epochs} epochs, batch 64, validation every epoch"
    )
    peak = matmul_peak()
    print(f"float32 matmul peak (2048^3 torch.mm, best of 10): {peak:.1f} GFLOP/s", flush=True)
    train(plan.members[0].config, data)  # warm-up

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = run_plan(plan, out, progress=False, log=lambda s: None)
        t_sweep = time.perf_counter() - t0
        assert res.trained == 20
    flops = protocol_flops(base, data) * len(plan.members)
    steps = sum(steps_per_epoch(len(data.train.indices_of(t)), 64) for t in base.tasks) * a.epochs
    print(f"model work: {flops / 1e12:.2f} TFLOP for 20 members ({steps} steps each)")
    print(
        f"  sweep, 20 members in 1 program   {t_sweep:8.1f} s  {flops / t_sweep / 1e9:6.1f} GFLOP/s "
        f"({100 * flops / t_sweep / 1e9 / peak:.0f}% of peak)",
        flush=True,
    )
    t0 = time.perf_counter()
    for m in plan.members:
        train(m.config, data)
    t_single = time.perf_counter() - t0
    print(
        f"  20 members one by one            {t_single:8.1f} s  {flops / t_single / 1e9:6.1f} GFLOP/s "
        f"({100 * flops / t_single / 1e9 / peak:.0f}% of peak)"
    )
    print(
        f"sweep speed-up over one by one: {t_single / t_sweep:.2f}x (target >= 5x); "
        f"sweep at {100 * flops / t_sweep / 1e9 / peak:.0f}% of the matmul peak (target >= 40%)"
    )
    print(
        f"ceiling: a program at 100% of the peak would be {t_single / (flops / peak / 1e9):.2f}x faster than "
        f"one by one, since one member alone already runs at {100 * flops / t_single / 1e9 / peak:.0f}% of it"
    )
    if a.profile:
        profile_sweep(plan.groups[0].config, data)


if __name__ == "__main__":
    main()
