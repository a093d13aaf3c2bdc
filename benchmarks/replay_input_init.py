"""A strategy under a Mammoth seq-mnist preset with Mammoth's input and initialisation: raw [0, 1] pixels
(Mammoth's seq-mnist applies ToTensor only) and Xavier-uniform weights with zero biases (Mammoth's
backbone/MNISTMLP.py), against forgetlab's normalised pixels and nn.Linear's default initialisation.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/replay_input_init.py er,der,derpp base,raw+xavier \
        [--preset buzzega2020-seq-mnist-200] [--data-dir ../shared/data]

Variants: base, raw, xavier, raw+xavier. Prints the final average accuracy in % per seed (0-4), mean ± std.
"""

import argparse
import dataclasses
import math
import statistics
import time

import torch

from forgetlab import api
from forgetlab import data as data_mod
from forgetlab.config import presets
from forgetlab.data import sources as data_sources
from forgetlab.engine.hooks import Hook

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class Xavier(Hook):
    """Before task 1: every linear layer's weights Xavier-uniform (each member from its own seed), biases 0."""

    def before_task(self, ctx):
        if ctx.task:
            return
        with torch.no_grad():
            for lin in [*ctx.model.fcs, ctx.model.head]:
                _, fan_in, fan_out = lin.weight.shape
                a = math.sqrt(6.0 / (fan_in + fan_out))
                gens = [torch.Generator().manual_seed(1000 + m.seed) for m in ctx.members]
                lin.weight.copy_(torch.stack([torch.rand(fan_in, fan_out, generator=g) * 2 * a - a for g in gens]))
                lin.bias.zero_()


def raw(d: data_mod.Dataset) -> data_mod.Dataset:
    """The same images as [0, 1] pixels: the normalisation undone."""

    def undo(split):
        return data_mod.Split(split.x * MNIST_STD + MNIST_MEAN, split.y)

    return dataclasses.replace(d, train=undo(d.train), eval=undo(d.eval))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("strategies")
    p.add_argument("variants")
    p.add_argument("--preset", default="buzzega2020-seq-mnist-200")
    p.add_argument("--data-dir", default="../shared/data")
    a = p.parse_args()
    torch.set_num_threads(1)
    for s in a.strategies.split(","):
        for v in a.variants.split(","):
            config = api.make_config(presets.get(a.preset, s), seeds=[0, 1, 2, 3, 4], data_dir=a.data_dir)
            d = data_sources.load_data(config, torch.device("cpu"))
            t0 = time.perf_counter()
            res = api.run(
                config,
                save=False,
                progress=False,
                dataset=raw(d) if "raw" in v else d,
                hooks=[Xavier()] if "xavier" in v else [],
            )
            accs = [100 * statistics.fmean(m.acc_matrix[-1]) for m in res.members]
            print(
                f"{s:6s} {v:12s} {statistics.fmean(accs):6.2f} ± {statistics.stdev(accs):5.2f}  "
                f"{time.perf_counter() - t0:6.1f} s  " + " ".join(f"{x:.2f}" for x in accs),
                flush=True,
            )


if __name__ == "__main__":
    main()
