"""Why mlp-l1-concurrent collapses at lambda = 2: per seed, validation accuracy per epoch, population sparsity
and dead hidden units (zero on every probe example: the Sparsity probe), under other settings on request.

    python benchmarks/l1_collapse.py --data-dir ../shared/data --seeds 10 --l1 1 2
    python benchmarks/l1_collapse.py --data-dir ../shared/data --seeds 5 --l1 0 1 2 --set train.optimizer=adam
    python benchmarks/l1_collapse.py --data-dir ../shared/data --seeds 5 --l1 0 1 2 --raw-pixels

``--raw-pixels`` undoes the (x - mean) / std normalisation (inputs in [0, 1], as a bare ToTensor() gives),
a diagnostic only: the study does not say how it scaled its inputs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from forgetlab import api
from forgetlab import diagnostics as probes
from forgetlab.data import Dataset, Split
from forgetlab.data import sources as data_sources
from forgetlab.engine.training import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--l1", type=float, nargs="+", default=[1.0, 2.0])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. train.lr=0.001")
    ap.add_argument("--raw-pixels", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    config = api.make_config(
        "mlp-l1-concurrent",
        seeds=list(range(a.seeds)),
        epochs=a.epochs,
        data_dir=a.data_dir,
        device="cpu",
        grid={"train.l1": a.l1},
        set=dict(s.split("=", 1) for s in a.set),
    )
    data = data_sources.load_data(config, "cpu")
    if a.raw_pixels:
        raw = lambda s: Split(s.x * 0.3081 + 0.1307, s.y)  # noqa: E731 - MNIST's mean and std (data.py)
        data = Dataset(data.name, raw(data.train), raw(data.eval), data.eval_split)
    rec = probes.Probes(probes.ProbeConfig(curves=False, updates=False, latent=False))
    t0 = time.perf_counter()
    res = train(config, data, rec.hooks)
    pd = rec.data([{"seed": m.seed} for m in res.members], config.tasks)
    t = config.train
    print(
        f"{t.optimizer} lr {t.lr} momentum {t.momentum}, batch {t.batch_size}, {t.epochs} epochs, "
        f"{'raw [0,1]' if a.raw_pixels else 'normalised'} pixels; {time.perf_counter() - t0:.0f} s"
    )
    print(
        "l1    seed  val acc per epoch                          sparsity  dead h1 (of 120) per epoch  dead h2 (of 84)"
    )
    for i, m in enumerate(res.members):
        rec_ = m.tasks[0]
        print(
            f"{m.hparams['train.l1']:<5} {m.seed:<5} {' '.join(f'{v:.3f}' for v in rec_.val_acc):<42} "
            f"{rec_.sparsity_all[-1]:.4f}    {str(pd['dead_units_h1'][:, i].tolist()):<27} "
            f"{pd['dead_units_h2'][:, i].tolist()}"
        )
    for lam in a.l1:
        ix = [i for i, m in enumerate(res.members) if m.hparams["train.l1"] == lam]
        acc = np.array([res.members[i].tasks[0].val_acc[-1] for i in ix])
        sp = np.array([res.members[i].tasks[0].sparsity_all[-1] for i in ix])
        sd = acc.std(ddof=1) if len(acc) > 1 else 0.0
        print(
            f"l1={lam}: val acc {acc.mean():.3f} ± {sd:.3f} (median {np.median(acc):.3f}; below 0.5 in "
            f"{int((acc < 0.5).sum())}/{len(acc)} seeds), sparsity {sp.mean():.4f}, dead layer-1 units after "
            f"epoch 1: {pd['dead_units_h1'][0, ix].tolist()}"
        )


if __name__ == "__main__":
    main()
