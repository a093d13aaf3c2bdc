"""forgetlab's strategies against Avalanche 0.6's own, under one protocol, with the published figures beside.

Protocol (Buzzega et al. 2020, Mammoth's seq-mnist / perm-mnist): the MLP 784-100-100-10 with Mammoth's
initialisation (Xavier-uniform weights, zero biases) in both libraries, plain SGD, batch 10 (P-MNIST: 128),
one epoch per task, each strategy's learning rate, replay batch and coefficients from Mammoth's best-args
table (forgetlab's buzzega2020-* presets), the same MNIST tensors (pixels in [0, 1], as Mammoth's) and the
same class order, buffer 500. Both
libraries train the same seeds; forgetlab trains them as one batched program, Avalanche one after the
other. Scores are the final accuracy averaged over tasks, in %, mean ± std over seeds:

- class-il: every output unit competes (S-MNIST, 5 tasks of 2 classes);
- task-il: the same class-incremental training, scored with the logits (iCaRL: the nearest-mean
  scores) of other tasks' classes masked, as Mammoth's evaluate() scores its Task-IL column;
- pmnist-domain-il: Permuted MNIST, 20 tasks sharing the 10 output units.

    OMP_NUM_THREADS=1 PYTHONPATH=src /path/to/avalanche-venv/bin/python benchmarks/parity_avalanche.py \
        --data-dir ../shared/data --protocol class-il,task-il --seeds 0 1 2

Needs the optional extra ``parity`` (avalanche-lib; its GEM also needs quadprog). Not part of CI.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

from forgetlab import api
from forgetlab.config import presets
from forgetlab.data import sources as data_sources
from forgetlab.engine.hooks import Hook

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ("class-il", "task-il", "pmnist-domain-il")
# forgetlab name -> (published row in the reference table, whether it uses the buffer)
PUBLISHED_ROW = {
    "naive": ("SGD (naive)", False),
    "joint": ("JOINT", False),
    "online-ewc": ("oEWC", False),
    "si": ("SI", False),
    "lwf": ("LwF", False),
    "er": ("ER", True),
    "agem": ("A-GEM", True),
    "gem": ("GEM", True),
    "icarl": ("iCaRL", True),
    "der": ("DER", True),
    "derpp": ("DER++", True),
}
STRATEGIES = tuple(PUBLISHED_ROW)


# --- the published table ------------------------------------------------------------------------


def published(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    """(buffer, method) -> column -> figure, read from the reference file's Markdown table."""
    rows, header = {}, None
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or all(set(c) <= {"-", ":"} for c in cells):  # the |---| rule
            continue
        if header is None:
            header = cells
            continue
        rows[(cells[0], cells[1])] = dict(zip(header[2:], cells[2:], strict=True))
    return rows


def published_figure(table, strategy: str, buffer: int, protocol: str) -> str:
    row, buffered = PUBLISHED_ROW[strategy]
    column = {"class-il": "S-MNIST Class-IL", "task-il": "S-MNIST Task-IL", "pmnist-domain-il": "P-MNIST Domain-IL"}[
        protocol
    ]
    return table.get((str(buffer) if buffered else "-", row), {}).get(column, "-")


# --- scoring the final network ------------------------------------------------------------------


def per_task_accuracy(scores: torch.Tensor, y: torch.Tensor, tasks, unit_of=None, masked=False) -> list[float]:
    """Accuracy on each task's test examples from scores [N, U]; ``masked``: only the task's units compete."""
    accs = []
    for task in tasks:
        sel = torch.isin(y, torch.tensor(task))
        s, t = scores[sel], y[sel]
        if unit_of is not None:
            t = unit_of[t]
        if masked:
            keep = torch.full((s.shape[1],), float("-inf"))
            keep[list(task)] = 0
            s = s + keep
        accs.append(float((s.argmax(1) == t).float().mean()))
    return accs


class FinalScores(Hook):
    """At the end of the last task, the scores forgetlab predicts with (the strategy's classifier where it
    has one) on the whole test set: [E, N, U]."""

    def __init__(self):
        self.scores = None

    @torch.no_grad()
    def after_task(self, ctx):
        if ctx.task != len(ctx.config.tasks) - 1:
            return
        was = ctx.model.training
        ctx.model.eval()
        x = ctx.data.eval.x
        out = ctx.model(x)
        scores = ctx.predict(out, x) if ctx.predict is not None else None
        self.scores = out.logits if scores is None else scores
        ctx.model.train(was)


# --- forgetlab ----------------------------------------------------------------------------------


def preset_for(protocol: str, buffer: int) -> str:
    return f"buzzega2020-perm-mnist-{buffer}" if protocol == "pmnist-domain-il" else f"buzzega2020-seq-mnist-{buffer}"


def run_forgetlab(strategy: str, protocol: str, buffer: int, seeds, data_dir) -> tuple[dict, float]:
    """{"class-il"|"task-il"|"pmnist-domain-il": [score per seed]} and the wall time of the batched run."""
    config = presets.get(preset_for(protocol, buffer), strategy)
    sets = {}
    if strategy == "joint":  # Mammoth's and Avalanche's joint: one epoch over every task's data at once
        config = presets.get(preset_for(protocol, buffer), "naive")
        sets = {"protocol.kind": "concurrent"}
    final = FinalScores()
    t0 = time.perf_counter()
    res = api.run(
        config, seeds=list(seeds), data_dir=data_dir, device="cpu", save=False, progress=False, hooks=[final], set=sets
    )
    wall = time.perf_counter() - t0
    data = data_sources.load_data(res.config, torch.device("cpu"))
    tasks = presets.get(preset_for(protocol, buffer)).tasks
    y = data.eval.y
    out = {}
    for e in range(len(res.members)):
        if protocol == "pmnist-domain-il":
            out.setdefault(protocol, []).append(100 * statistics.fmean(res.members[e].acc_matrix[-1]))
            continue
        out.setdefault("class-il", []).append(100 * statistics.fmean(per_task_accuracy(final.scores[e], y, tasks)))
        out.setdefault("task-il", []).append(
            100 * statistics.fmean(per_task_accuracy(final.scores[e], y, tasks, masked=True))
        )
    return out, wall


# --- Avalanche ----------------------------------------------------------------------------------


def avalanche_strategy(strategy: str, buffer: int, protocol: str, n_tasks: int, device="cpu"):
    """Avalanche's own strategy with the preset's settings (Mammoth's best args), and its model."""
    from avalanche.training import supervised as S
    from avalanche.training.plugins import EvaluationPlugin

    config = presets.get(preset_for(protocol, buffer), "naive" if strategy == "joint" else strategy)
    s, t = config.strategy.params, config.train
    features = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU())
    head = nn.Linear(100, 10)
    model = nn.Sequential(features, head)
    if config.model.init == "xavier":  # the preset's (Mammoth's) initialisation, as forgetlab's model.init
        for layer in (m for m in model.modules() if isinstance(m, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    opt = torch.optim.SGD(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    common = dict(
        optimizer=opt,
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=t.batch_size,
        train_epochs=1,
        eval_mb_size=1000,
        device=device,
        evaluator=EvaluationPlugin(loggers=[]),
    )
    per_task = buffer // n_tasks
    if strategy == "naive":
        return S.Naive(model=model, **common)
    if strategy == "joint":
        return S.JointTraining(model=model, **common)
    if strategy == "online-ewc":  # Avalanche's penalty has no 1/2: its lambda is Mammoth's e_lambda
        return S.EWC(model=model, ewc_lambda=s.lam / 2, mode="online", decay_factor=s.gamma, **common)
    if strategy == "si":
        return S.SynapticIntelligence(model=model, si_lambda=s.c, eps=s.xi, **common)
    if strategy == "lwf":
        return S.LwF(model=model, alpha=s.alpha, temperature=s.temp, **common)
    if strategy == "er":
        from avalanche.training.plugins import ReplayPlugin

        common["plugins"] = [ReplayPlugin(mem_size=s.memory, batch_size_mem=s.replay_batch or t.batch_size)]
        return S.Naive(model=model, **common)
    if strategy == "agem":
        return S.AGEM(model=model, patterns_per_exp=per_task, sample_size=s.replay_batch, **common)
    if strategy == "gem":
        return S.GEM(model=model, patterns_per_exp=per_task, memory_strength=s.margin, **common)
    if strategy == "icarl":
        del common["criterion"]
        return S.ICaRL(
            feature_extractor=features,
            classifier=head,
            memory_size=s.memory,
            buffer_transform=None,
            fixed_memory=True,
            **common,
        )
    if strategy in ("der", "derpp"):
        beta = s.beta if strategy == "derpp" else 0.0
        return S.DER(model=model, mem_size=s.memory, batch_size_mem=s.replay_batch, alpha=s.alpha, beta=beta, **common)
    raise ValueError(strategy)


def avalanche_benchmark(data, tasks, domain: bool):
    """Split-MNIST as Avalanche's class-incremental scenario (its iCaRL reads n_classes_per_exp), P-MNIST as
    one experience per permutation; both from forgetlab's resident tensors (the same normalised pixels)."""
    if not domain:
        from avalanche.benchmarks import nc_benchmark
        from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as dataset

        return nc_benchmark(
            dataset(data.train.x, data.train.y),
            dataset(data.eval.x, data.eval.y),
            n_experiences=len(tasks),
            task_labels=False,
            fixed_class_order=[c for task in tasks for c in task],
        )
    from avalanche.benchmarks import tensors_benchmark

    def parts(split):
        return [(split.x[sel], split.y[sel] % 10) for sel in (torch.isin(split.y, torch.tensor(t)) for t in tasks)]

    return tensors_benchmark(parts(data.train), parts(data.eval), task_labels=[0] * len(tasks))


def run_avalanche(strategy: str, protocol: str, buffer: int, seed: int, data_dir) -> tuple[dict, float]:
    from avalanche.training.determinism.rng_manager import RNGManager

    config = presets.get(preset_for(protocol, buffer), "naive")
    data = data_sources.load_data(api.make_config(config, data_dir=data_dir, device="cpu"), torch.device("cpu"))
    tasks = config.tasks
    domain = protocol == "pmnist-domain-il"
    RNGManager.set_random_seeds(seed)
    torch.manual_seed(seed)
    bench = avalanche_benchmark(data, tasks, domain)
    strat = avalanche_strategy(strategy, buffer, protocol, len(tasks))
    t0 = time.perf_counter()
    if strategy == "joint":
        strat.train(bench.train_stream)
    else:
        for exp in bench.train_stream:
            strat.train(exp)
    strat.model.eval()
    with torch.no_grad():
        scores = torch.cat([strat.model(data.eval.x[i : i + 2000]) for i in range(0, len(data.eval.x), 2000)])
    wall = time.perf_counter() - t0
    y = data.eval.y
    if domain:
        unit_of = torch.arange(int(y.max()) + 1) % 10
        return {protocol: [100 * statistics.fmean(per_task_accuracy(scores, y, tasks, unit_of=unit_of))]}, wall
    return {
        "class-il": [100 * statistics.fmean(per_task_accuracy(scores, y, tasks))],
        "task-il": [100 * statistics.fmean(per_task_accuracy(scores, y, tasks, masked=True))],
    }, wall


# --- the table ----------------------------------------------------------------------------------


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {sd:.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--references", default=str(ROOT.parent / "shared" / "references" / "buzzega2020-mammoth-table.md"))
    p.add_argument(
        "--protocol",
        default="class-il,task-il",
        help=f"comma-separated, of {', '.join(PROTOCOLS)}; class-il and task-il share their training",
    )
    p.add_argument("--strategies", default=",".join(STRATEGIES), help=f"comma-separated, of {', '.join(STRATEGIES)}")
    p.add_argument(
        "--avalanche", default=None, help="comma-separated strategies Avalanche runs too (default: all of --strategies)"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--buffer", type=int, default=500)
    a = p.parse_args(argv)
    protocols = [x for x in a.protocol.split(",") if x]
    strategies = [x for x in a.strategies.split(",") if x]
    bad = [x for x in protocols if x not in PROTOCOLS] + [x for x in strategies if x not in STRATEGIES]
    if bad:
        print(
            f"error: unknown protocol or strategy {bad[0]!r}; protocols: {', '.join(PROTOCOLS)}; "
            f"strategies: {', '.join(STRATEGIES)}",
            file=sys.stderr,
        )
        return 2
    if "pmnist-domain-il" in protocols and len(protocols) > 1:
        print("error: --protocol pmnist-domain-il trains differently; run it on its own", file=sys.stderr)
        return 2
    with_avalanche = strategies if a.avalanche is None else [x for x in a.avalanche.split(",") if x]
    table = published(Path(a.references))
    train_as = protocols[0]
    results = {}
    for name in strategies:
        print(f"[{time.strftime('%H:%M:%S')}] forgetlab {name}: seeds {a.seeds} as one batched run", flush=True)
        ours, t_ours = run_forgetlab(name, train_as, a.buffer, a.seeds, a.data_dir)
        theirs, t_theirs = {}, 0.0
        if name in with_avalanche:
            for seed in a.seeds:
                print(f"[{time.strftime('%H:%M:%S')}] avalanche {name}: seed {seed}", flush=True)
                try:
                    scores, wall = run_avalanche(name, train_as, a.buffer, seed, a.data_dir)
                except Exception as e:  # noqa: BLE001 - one strategy's failure is reported in the table
                    print(f"    avalanche {name} failed: {type(e).__name__}: {e}", flush=True)
                    theirs, t_theirs = {}, float("nan")
                    break
                t_theirs += wall
                for k, v in scores.items():
                    theirs.setdefault(k, []).extend(v)
        results[name] = (ours, t_ours, theirs, t_theirs if name in with_avalanche else None)
        print(
            f"    forgetlab {fmt(ours[train_as])} ({t_ours:.1f} s); avalanche "
            f"{fmt(theirs.get(train_as, []))} ({t_theirs:.1f} s)",
            flush=True,
        )
        for protocol in protocols:
            print(
                f"    {protocol} per seed: forgetlab {[round(v, 2) for v in ours.get(protocol, [])]}, avalanche "
                f"{[round(v, 2) for v in theirs.get(protocol, [])]}",
                flush=True,
            )
    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; seeds {a.seeds}; buffer {a.buffer}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    for protocol in protocols:
        print(f"\n{protocol}: final accuracy averaged over tasks, %, mean ± std over seeds")
        print(
            "| strategy | forgetlab | Avalanche | published | forgetlab s (seeds batched) | "
            "Avalanche s (sum over seeds) |"
        )
        print("|---|---|---|---|---|---|")
        for name, (ours, t_ours, theirs, t_theirs) in results.items():
            t_av = "-" if t_theirs is None else f"{t_theirs:.1f}"
            print(
                f"| {name} | {fmt(ours.get(protocol, []))} | {fmt(theirs.get(protocol, []))} | "
                f"{published_figure(table, name, a.buffer, protocol)} | {t_ours:.1f} | {t_av} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
