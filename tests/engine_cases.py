"""Short runs of every study preset and every strategy, whose numbers the engine must keep to the last bit.

Each case trains 2 seeds on a fixed subset of the real data (the first 3000 training and 1000 evaluation
examples), so the whole set takes a few seconds. ``tests/test_engine_regression.py`` compares a fresh run
of each case with ``tests/engine_expected.json``, which this script writes:

    OMP_NUM_THREADS=1 PYTHONPATH=src python tests/engine_cases.py /work/shared/data tests/engine_expected.json [CASES]

The last bits of a float sum depend on the CPU's kernels (AVX2 or AVX-512, the vendor's library paths), so
the file holds one set of numbers per CPU signature (``cpu_signature``: vendor and torch's CPU capability);
this script writes the current CPU's set and keeps the others. Regenerate it only from a commit whose
numbers are the reference (a change of semantics, never a refactor); CASES (comma-separated names)
recomputes only those and keeps every other case as the file has it.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch

from forgetlab import api
from forgetlab import config as cfg
from forgetlab.data import Dataset, Split
from forgetlab.data import sources as data_sources
from forgetlab.engine.training import train

N_TRAIN, N_EVAL = 3000, 1000
SHORT = {"train.epochs": 2}
MEMORY = {"strategy.memory": 60}

# name -> (preset, strategy or None, settings)
CASES: dict[str, tuple[str, str | None, dict]] = {
    **{
        p: (p, None, SHORT)
        for p in (
            "mlp-concurrent",
            "mlp-sequential",
            "mlp-bn-concurrent",
            "mlp-bn-sequential",
            "mlp-ln-sequential",
            "mlp-dropout-sequential",
            "mlp-l1-concurrent",
            "mlp-l1-sequential",
            "mlp-split-fashion",
            "mlp-split-task-il",
            "mlp-split-domain-il",
            "lenet-concurrent",
            "lenet-sequential",
        )
    },
    "mlp-permuted": ("mlp-permuted", None, {"protocol.permuted": 3}),
    **{f"seq-{s}": ("mlp-sequential", s, SHORT) for s in ("naive", "joint", "cumulative", "ewc", "si", "lwf")},
    "seq-online-ewc": ("mlp-sequential", "online-ewc", SHORT | {"strategy.ewc_lambda": 10, "strategy.ewc_gamma": 0.8}),
    **{f"seq-{s}": ("mlp-sequential", s, SHORT | MEMORY) for s in ("er", "agem", "der", "derpp", "icarl")},
    "seq-kwta": ("mlp-sequential", "kwta", SHORT | {"model.kwta": "30,20", "model.kwta_boost": 1.0}),
    "seq-bn-ewc": ("mlp-bn-sequential", "ewc", SHORT | {"strategy.fisher_samples": 200}),
    "seq-task-il-lwf": ("mlp-split-task-il", "lwf", SHORT),
    "seq-domain-si": ("mlp-split-domain-il", "si", SHORT),
    **{f"vandeven-{s}": ("vandeven2022-split-mnist", s, {"train.iters": 6}) for s in ("ewc", "si")},
    **{
        f"vandeven-{s}": ("vandeven2022-split-mnist", s, {"train.iters": 6, "strategy.memory_per_class": 8})
        for s in ("er", "icarl")
    },
    **{f"buzzega-{s}": ("buzzega2020-seq-mnist-200", s, {}) for s in ("der", "derpp", "er", "agem")},
    "buzzega-perm-er": ("buzzega2020-perm-mnist-500", "er", {"protocol.permuted": 3}),
}


def subset(data: Dataset) -> Dataset:
    def head(split: Split, n: int) -> Split:
        return Split(split.x[:n].clone(), split.y[:n].clone())

    return Dataset(
        data.name, head(data.train, N_TRAIN), head(data.eval, N_EVAL), data.eval_split, data.n_classes, data.image_shape
    )


def config_of(name: str, data_dir) -> cfg.RunConfig:
    preset, strategy, settings = CASES[name]
    return api.make_config(
        preset,
        strategy=strategy,
        seeds=[0, 1],
        data_dir=data_dir,
        device="cpu",
        set={k: str(v) for k, v in settings.items()},
    )


def dataset_of(config: cfg.RunConfig) -> Dataset:
    base = api.make_config(
        "mlp-sequential",
        data_dir=config.data.root,
        device="cpu",
        set={"data.dataset": config.data.dataset, "data.normalize": config.data.normalize},
    )
    data = subset(data_sources.load_data(base, torch.device("cpu")))
    if config.protocol.permuted:
        from forgetlab.data.scenarios import permuted

        data = permuted(data, config.protocol.permuted, config.protocol.permutation_seed)
    return data


def cpu_signature() -> str:
    """The CPU's vendor and the instruction set torch's kernels use here, e.g. "AuthenticAMD AVX2"."""
    vendor = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            vendor = next((line.split(":", 1)[1].strip() for line in f if line.startswith("vendor_id")), vendor)
    except OSError:
        pass
    return f"{vendor} {torch.backends.cpu.get_cpu_capability()}"


def run_case(name: str, data_dir) -> dict:
    """The case's numbers: every member's records and accuracy matrices, and the config's identities."""
    config = config_of(name, data_dir)
    res = train(config, dataset_of(config)).to_json()
    return {
        "identity": cfg.identity(config),
        "member_identities": [cfg.member_identity(config, m) for m in cfg.members(config)],
        "status": res["status"],
        "members": res["members"],
    }


def main(data_dir: str, out: str, only: str = "") -> None:
    torch.set_num_threads(1)
    names = only.split(",") if only else list(CASES)
    pinned = json.loads(Path(out).read_text()) if Path(out).exists() else {}
    signature = cpu_signature()
    expected = pinned.get(signature, {}) if only else {}
    expected.update({name: run_case(name, data_dir) for name in names})
    pinned[signature] = {name: expected[name] for name in CASES}
    Path(out).write_text(json.dumps(pinned, indent=0) + "\n")
    print(f"{len(CASES)} cases for {signature} -> {out}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
