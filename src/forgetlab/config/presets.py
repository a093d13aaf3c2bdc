"""Named configurations: one per experiment of the study (../shared/study/mnist-mlp-forgetting-study.md).

Shared defaults (RunConfig): plain SGD, momentum 0.9, learning rate 0.01, batch 64, 5 epochs per task,
the study's MLP 784-120-84-10, Split-MNIST tasks [1,2] [3,4] [5,6] [7,8] [9,0], seeds 0-4.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from forgetlab import config as cfg
from forgetlab import plugins
from forgetlab.config.registry import Registry
from forgetlab.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    settings: dict  # nested, as in a config file
    per_strategy: dict = field(default_factory=dict)  # strategy name -> dotted settings of that strategy
    # the report's figures of this experiment (report/section_figures.py defines each kind), and the
    # member groups (by label, e.g. "l1=1") that get per-group figures; empty: every group
    figures: tuple[str, ...] = ("latent",)
    figure_groups: tuple[str, ...] = ()

    def config(self, strategy: str | None = None) -> cfg.RunConfig:
        """The preset's config; with ``strategy``, that strategy and the preset's settings for it."""
        config = cfg.from_dict({"name": self.name, **self.settings}, cfg.RunConfig(seeds=DEFAULT_SEEDS))
        if strategy is not None:
            config = cfg.override(config, "strategy.name", strategy)
            for key, value in self.per_strategy.get(strategy, {}).items():
                config = cfg.override(config, key, value)
        return config


DEFAULT_SEEDS = (0, 1, 2, 3, 4)
PRESETS: Registry[Preset] = Registry("preset", group="presets")


def add(
    name: str,
    description: str,
    per_strategy: dict | None = None,
    *,
    figures: tuple[str, ...] = ("latent",),
    figure_groups: tuple[str, ...] = (),
    **settings,
) -> Preset:
    """Register a preset: ``settings`` are config sections as in a config file (``train={"epochs": 1}``),
    ``per_strategy`` maps a strategy name to dotted settings applied when that strategy runs. A plug-in
    adds its own presets this way (``--plugin my_presets.py``)."""
    preset = Preset(name, description, settings, per_strategy or {}, figures, figure_groups)
    PRESETS.register(name)(preset)
    return preset


def _adopt(name: str, obj) -> None:
    """An entry point of ``forgetlab.presets``: a Preset, or a dict of settings (a config file's sections,
    with an optional "description"), registered under the entry point's name."""
    if isinstance(obj, Preset):
        PRESETS.register(name)(obj if obj.name == name else dataclasses.replace(obj, name=name))
    elif isinstance(obj, dict):
        settings = dict(obj)
        add(name, str(settings.pop("description", f"preset {name} (entry point)")), **settings)
    else:
        raise ConfigError(f"preset {name!r}: {obj!r} is neither a forgetlab Preset nor a dict of settings")


plugins.set_adopter("presets", _adopt)


# what the study shows of a sequential run: forgetting curve, its onset, the relative weight updates,
# where the old classes' probability goes, the probability matrix
_SEQ_FIGURES = ("curve", "onset", "updates", "probs", "matrix")


CONCURRENT = {"kind": "concurrent"}

add(
    "mlp-concurrent",
    "MLP 784-120-84-10, all ten classes at once (the upper bound)",
    protocol=CONCURRENT,
    figures=("matrix", "latent"),
)
add(
    "mlp-sequential",
    "MLP on Split-MNIST [1,2] [3,4] [5,6] [7,8] [9,0], one shared head (the lower bound)",
    figures=_SEQ_FIGURES + ("latent_all_tasks",),
)
add(
    "mlp-bn-concurrent",
    "MLP with batch norm after each hidden layer, all classes at once",
    protocol=CONCURRENT,
    model={"norm": "batch"},
)
add(
    "mlp-bn-sequential",
    "MLP with batch norm on Split-MNIST",
    model={"norm": "batch"},
    figures=_SEQ_FIGURES + ("latent",),
)
add(
    "mlp-ln-sequential",
    "MLP with layer norm on Split-MNIST",
    model={"norm": "layer"},
    figures=("curve", "onset", "updates", "latent"),
)
add(
    "mlp-dropout-sequential",
    "MLP with dropout p=0.5 on both hidden layers, Split-MNIST",
    model={"dropout": 0.5},
    figures=("curve", "onset", "matrix", "latent_all_tasks"),
)
add(
    "mlp-l1-concurrent",
    "MLP with an L1 penalty on hidden activations, lambda in 0, 0.001, 0.1, 1, 2; all classes",
    protocol=CONCURRENT,
    grid={"train.l1": [0, 0.001, 0.1, 1, 2]},
    figures=("sparsity_vs_lambda", "latent_by_lambda"),
)
add(
    "mlp-l1-sequential",
    "MLP with an L1 penalty on hidden activations, lambda in 0, 1; Split-MNIST",
    grid={"train.l1": [0, 1]},
    figures=("sparsity_vs_task", "onset", "latent_by_lambda"),
    figure_groups=("l1=1",),
)  # lambda 0 is the plain MLP, drawn with mlp-sequential
add("lenet-concurrent", "LeNet-5 conv net, all ten classes at once", protocol=CONCURRENT, model={"arch": "lenet5"})
add(
    "lenet-sequential",
    "LeNet-5 conv net on Split-MNIST",
    model={"arch": "lenet5"},
    figures=("curve", "onset", "updates", "latent"),
)


# ---------------------------------------------------------------------------------------------
# Benchmarks beyond the study (scenarios.py): Split-Fashion-MNIST, Permuted-MNIST, task/domain-IL
# ---------------------------------------------------------------------------------------------

add(
    "mlp-split-fashion",
    "MLP on Split-Fashion-MNIST (class pairs 0-1 ... 8-9), class-incremental",
    data={"dataset": "fashion-mnist"},
    protocol={"tasks": [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]},
)
add(
    "mlp-permuted",
    "MLP 2x400 on Permuted-MNIST, 10 tasks, domain-incremental (10 shared output units)",
    model={"hidden": [400, 400]},
    protocol={"permuted": 10, "scenario": "domain"},
    train={"epochs": 1},
)
add(
    "mlp-split-task-il",
    "MLP on Split-MNIST, task-incremental (task id given: logits masked to the task)",
    protocol={"scenario": "task"},
)
add(
    "mlp-split-domain-il",
    "MLP on Split-MNIST, domain-incremental (each task's pair on the same 2 units)",
    protocol={"scenario": "domain"},
)

# ---------------------------------------------------------------------------------------------
# Published protocols
# ---------------------------------------------------------------------------------------------

SPLIT_MNIST_PAIRS = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]

# (a) van de Ven, Tuytelaars & Tolias 2022, "Three types of incremental learning", Nature Machine
# Intelligence 4:1185-1197; hyperparameters from the defaults of their code, GMvandeVen/continual-learning
# (param_values.py: splitMNIST -> 2000 iterations per context, lr 0.001, batch 128, 400 units; class
# scenario -> ewc_lambda 1e9, si_c 5000; budget 100 examples per class). Adam betas (0.9, 0.999).
# Their EWC penalty is lambda * 1/2 * sum F (theta - theta*)^2, the same convention as ours.
add(
    "vandeven2022-split-mnist",
    "van de Ven et al. 2022 'Three types of incremental learning': class-IL Split-MNIST, MLP 2x400, Adam "
    "lr 0.001, batch 128, 2000 iterations per task, memory 100 per class",
    model={"hidden": [400, 400]},
    protocol={"tasks": SPLIT_MNIST_PAIRS},
    train={"optimizer": "adam", "lr": 0.001, "momentum": 0.9, "batch_size": 128, "iters": 2000},
    per_strategy={
        "ewc": {"strategy.ewc.lam": 1e9},
        "online-ewc": {"strategy.online-ewc.lam": 1e9},
        "si": {"strategy.si.c": 5000, "strategy.si.xi": 0.1},
        **{name: {f"strategy.{name}.memory_per_class": 100} for name in ("er", "agem", "icarl")},
    },
)


def _mammoth(buffer: int, fixed: dict, best: dict) -> dict:
    """Per-strategy settings of Mammoth's utils/best_args.py for one dataset and buffer size (``fixed``: the
    strategies without a buffer; ``best``: strategy -> (lr, replay minibatch[, alpha[, beta]]), gem: (lr,
    gamma)), and what Mammoth's models/*.py do beyond them (aimagelab/mammoth, commit 7ab9db9):

    - ewc_on's penalty is e_lambda * sum F (theta - theta*)^2 (no 1/2): our lam = 2 * e_lambda;
    - lwf adds wd_reg * sum(theta^2) to the loss, whose gradient is 2 * wd_reg * theta: weight_decay = 2 * wd_reg;
    - si clips every gradient value to 1 before the step;
    - icarl averages its binary cross-entropy over the seen classes and uses raw (unnormalised) features;
    - gem's margin is best_args' gamma; agem and agem_r share their settings.
    """
    out = {name: dict(settings) for name, settings in fixed.items()}
    for name, (lr, *rest) in best.items():
        if name == "gem":
            out[name] = {"train.lr": lr, "strategy.gem.margin": rest[0]}
            continue
        mb, *ab = rest
        out[name] = {"train.lr": lr, f"strategy.{name}.replay_batch": mb}
        if ab:
            out[name][f"strategy.{name}.alpha"] = ab[0]
        if len(ab) > 1:
            out[name][f"strategy.{name}.beta"] = ab[1]
    out["agem-r"] = {k.replace("strategy.agem.", "strategy.agem-r."): v for k, v in out["agem"].items()}
    for name in ("er", "agem", "agem-r", "gem", "der", "derpp", "icarl"):
        if name in out:
            out[name][f"strategy.{name}.memory"] = buffer
    return out


# Mammoth's MNIST network and input: backbone/MNISTMLP.py initialises every linear layer Xavier-uniform with
# zero biases, and its MNIST datasets apply ToTensor only (pixels in [0, 1], no standardisation). Both move
# results: naive on P-MNIST 33.0 with forgetlab's defaults, 39.9 with these, 40.70 published (docs/strategies.md).
_MAMMOTH_MLP = {"hidden": [100, 100], "init": "xavier"}
_MAMMOTH_INPUT = {"normalize": False}


def _add_mammoth(dataset: str, scenario: str, batch: int, fixed: dict, best: dict, protocol: dict) -> None:
    """One buzzega2020-<dataset>-<buffer> preset per buffer of ``best``: Mammoth's MLP and input, plain SGD,
    one epoch per task, the strategies' settings from its best-args (``fixed`` and ``best``, see _mammoth)."""
    for buffer, settings in best.items():
        add(
            f"buzzega2020-{dataset}-{buffer}",
            f"Buzzega et al. 2020 DER (Mammoth {dataset}): {scenario}, MLP 2x100, SGD, batch {batch}, "
            f"1 epoch per task, buffer {buffer}",
            per_strategy=_mammoth(buffer, fixed, settings),
            model=_MAMMOTH_MLP,
            data=_MAMMOTH_INPUT,
            protocol=protocol,
            train={"optimizer": "sgd", "momentum": 0.0, "batch_size": batch, "epochs": 1},
        )


# (b) Buzzega, Boschini, Porrello, Abati & Calderara 2020, "Dark Experience for General Continual
# Learning: a Strong, Simple Baseline" (NeurIPS), code aimagelab/mammoth: seq-mnist = Split-MNIST pairs
# 0-1 ... 8-9, MLP 784-100-100-10, SGD without momentum, batch 10, one epoch per task; learning rates,
# replay minibatch sizes and coefficients from utils/best_args.py ('seq-mnist').
_SEQ_MNIST_FIXED = {
    "naive": {"train.lr": 0.03},
    "joint": {"train.lr": 0.03},
    "online-ewc": {"train.lr": 0.03, "strategy.online-ewc.lam": 180.0, "strategy.online-ewc.gamma": 1.0},
    "ewc": {"train.lr": 0.03, "strategy.ewc.lam": 180.0},
    "si": {"train.lr": 0.1, "strategy.si.c": 1.0, "strategy.si.xi": 0.9, "strategy.si.clip": 1.0},
    "lwf": {"train.lr": 0.03, "strategy.lwf.alpha": 1.0, "strategy.lwf.temp": 2.0, "train.weight_decay": 2 * 0.0005},
    "agem": {"train.lr": 0.1, "strategy.agem.replay_batch": 128},
    "icarl": {"train.lr": 0.1, "strategy.icarl.bce": "mean", "strategy.icarl.normalize": False},
}
_SEQ_MNIST_BEST = {
    200: {"er": (0.01, 10), "der": (0.03, 10, 0.2), "derpp": (0.03, 128, 0.2, 1.0), "gem": (0.01, 1.0)},
    500: {"er": (0.1, 10), "der": (0.03, 128, 1.0), "derpp": (0.03, 10, 1.0, 0.5), "gem": (0.03, 0.5)},
    5120: {"er": (0.1, 10), "der": (0.1, 128, 0.5), "derpp": (0.1, 64, 0.2, 0.5), "gem": (0.1, 1.0)},
}
_add_mammoth("seq-mnist", "class-IL Split-MNIST", 10, _SEQ_MNIST_FIXED, _SEQ_MNIST_BEST, {"tasks": SPLIT_MNIST_PAIRS})

# Mammoth's perm-mnist: 20 tasks of all ten digits under fixed pixel permutations, domain-incremental (the
# ten output units are shared), the same MLP, SGD, batch 128, one epoch per task ('perm-mnist' best args).
# Mammoth permutes every task; here task 1 sees the original images (scenarios.permutations).
_PERM_MNIST_FIXED = {
    "naive": {"train.lr": 0.2},
    "joint": {"train.lr": 0.2},
    "online-ewc": {"train.lr": 0.1, "strategy.online-ewc.lam": 1.4, "strategy.online-ewc.gamma": 1.0},
    "si": {"train.lr": 0.1, "strategy.si.c": 0.5, "strategy.si.xi": 1.0, "strategy.si.clip": 1.0},
    "agem": {"train.lr": 0.1, "strategy.agem.replay_batch": 128},
}
_PERM_MNIST_BEST = {
    200: {"er": (0.2, 128), "der": (0.2, 128, 1.0), "derpp": (0.1, 128, 1.0, 1.0), "gem": (0.1, 0.5)},
    500: {"er": (0.2, 128), "der": (0.2, 128, 1.0), "derpp": (0.2, 128, 1.0, 0.5), "gem": (0.1, 0.5)},
    5120: {"er": (0.2, 128), "der": (0.2, 128, 0.5), "derpp": (0.2, 128, 0.5, 1.0), "gem": (0.1, 0.5)},
}
_add_mammoth(
    "perm-mnist",
    "domain-IL Permuted-MNIST, 20 tasks",
    128,
    _PERM_MNIST_FIXED,
    _PERM_MNIST_BEST,
    {"permuted": 20, "scenario": "domain"},
)


def get(name: str, strategy: str | None = None) -> cfg.RunConfig:
    return PRESETS[name].config(strategy)
